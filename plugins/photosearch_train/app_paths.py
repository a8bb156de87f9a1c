"""The app's folders as the core defines them, for the trainer (one place to change when the
core's paths module moves).

``default_models_dir`` belongs to ``photosearch.paths`` (issue 16); a core that predates that
module still defines it in ``photosearch.library``, which the trainer should not otherwise need.
"""

from __future__ import annotations

try:
    from photosearch.paths import default_models_dir
except ImportError:  # a core without photosearch.paths
    from photosearch.library import default_models_dir

__all__ = ["default_models_dir"]
