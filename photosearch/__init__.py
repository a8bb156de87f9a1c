"""photosearch: find your own photos by typing what is in them, offline."""

__version__ = "0.1.0"
