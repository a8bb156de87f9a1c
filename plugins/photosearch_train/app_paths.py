"""The app's folders as the core defines them (photosearch.paths), for the trainer: one place
to change when the core's paths move."""

from __future__ import annotations

from photosearch.paths import default_models_dir

__all__ = ["default_models_dir"]
