"""Keeping the catalog and the vectors in step with the photo folders.

Owns: walking every library folder (folder_scan); applying what is on disk to the catalog
(reconcile); encoding pending photos into the vector store (encode); folder events to settled
batches (watching); progress reporting (progress); words; extractors; text_reading; hash_fill.
May import files, the stores (catalog, models, vectors) and the base; not search, not
the library.
"""
