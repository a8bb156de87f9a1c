"""Search: from a typed query (or a liked photo) to ranked photos.

Owns: query parsing, the query vector and ranking (query); how good the matches are
(match_strength); re-ranking by a bigger model (rerank); the timeline (timeline); places; dates;
fusion; duplicates; ranking.
May import files, the stores (catalog, models, vectors) and the base; not indexing,
not the library (rerank's type hints are the one listed exception).
"""
