"""The vector store: an HNSW graph per model, a cache of the catalog.

Owns: the hnswlib graphs (store); checks on a saved graph before hnswlib reads it
(graph_integrity); crash-safe file replacement (atomic_write); vector_file.
May import the base (errors, paths) only.
"""
