from photosearch.search import SearchQuery


def test_index_and_search_colours(library, photo_dir):
    library.add_folder(photo_dir)
    report = library.index()
    assert report.encoding.encoded == 5
    results = library.search(SearchQuery(text="red", k=3))
    assert results[0].path.endswith("red.jpg")
    results = library.search(SearchQuery(text="blue", k=3))
    assert results[0].path.endswith("blue.jpg")
    again = library.index()
    assert again.encoding.encoded == 0
