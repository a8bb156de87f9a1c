"""Exceptions the core raises; only the CLI and GUI turn them into messages or exit codes."""


class PhotosearchError(Exception):
    """Base class: every error the core raises on purpose carries a readable message."""


class UnsupportedImage(PhotosearchError):
    """A file could not be decoded as a photo (corrupt, truncated, not an image, too large)."""


class BundleError(PhotosearchError):
    """A model bundle is missing files, has a bad config, or fails its checksum."""


class ModelNotFound(PhotosearchError):
    """No installed or buildable model bundle has the requested name."""


class ModelMismatch(PhotosearchError):
    """Vectors on disk were made by a different model than the one asked to read them."""


class LibraryLocked(PhotosearchError):
    """Another process is writing to this library right now."""
