"""One search from query to results: the query vector (search), the model's ranking re-ranked
by a bigger model when one is set (rerank), fused with the words photos carry (fusion), and
near-duplicates folded into one result each (duplicates).

This module sits above those four so none of them imports another's caller; the facade's
``Library.search`` is one call to ``run_search``.
"""

from __future__ import annotations

from functools import partial

from photosearch.catalog import Catalog
from photosearch.search.duplicates import search_folded
from photosearch.search.fusion import fused_search
from photosearch.search.query import (
    QueryModel,
    ResultReranker,
    SearchQuery,
    SearchResult,
    allowed_ids,
    build_results,
    prepare_query,
    search_vector,
)


def run_search(
    catalog: Catalog,
    model: QueryModel,
    query: SearchQuery,
    *,
    saved_model: str,
    reranker: ResultReranker | None = None,
) -> list[SearchResult]:
    """Rank photos for a query: text (with negative terms), a liked photo, or both, within
    the query's filters. ``saved_model`` is the library's recorded model, named in the hint
    when ``model`` has no vectors yet. Raises EmptyQuery when there is nothing to search by,
    ModelMismatch when the library has only other models' vectors."""
    prepared = prepare_query(catalog, model, query)
    if not prepared.text_only:
        reranker = None  # re-ranking and word fusion apply to text searches only

    def ranked(depth: int) -> list[SearchResult]:
        """The model's top ``depth`` (more when the re-ranker reads deeper), re-ranked."""
        k = max(depth, reranker.depth) if reranker else depth
        results = search_vector(
            catalog, model, prepared.vector, k, query, prepared.exclude, saved_model=saved_model
        )
        return reranker.rerank(prepared.texts, results) if reranker else results

    allowed = allowed_ids(catalog, query) if query.has_filters else None

    def found(depth: int) -> list[SearchResult]:
        if not prepared.text_only:
            return ranked(depth)[:depth]
        return fused_search(
            catalog.reading,
            prepared.positive,
            depth,
            ranked,
            partial(build_results, catalog),
            allowed=allowed,
            exclude=prepared.exclude,
            store=model.store,
            vector=prepared.vector,
        )

    if query.all_copies:
        return found(query.k)
    return search_folded(found, query.k, query.k, catalog, model.store, prepared.exclude)
