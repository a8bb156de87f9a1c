"""The facade the front ends use, and the orchestration behind it.

Owns: Library, the facade: folders, index, search, status (facade); its update steps, the two
the watcher shares and a full index run (indexer); the active model (encoder, store, identity)
(active_model); the reports the facade returns (reports); per-library settings (settings); the
open vector sets (model_sets); switching models as catalog facts (model_switch); catalog repair
(repair); the one-writer lock (locking); moving photos to the platform trash on a confirmed
request (trash); the long-running folder watcher (watch_service); retrieval evaluation on a
captions file (evaluation); reading the text in photos (text).
May import the jobs (indexing, search), files, the stores (catalog, models, vectors)
and the base (errors, paths); never the front ends.
"""

from photosearch.library.facade import Library

__all__ = ["Library"]
