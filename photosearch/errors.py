"""Exceptions the core raises; only the CLI and GUI turn them into messages or exit codes."""


class PhotosearchError(Exception):
    """Base class: every error the core raises on purpose carries a readable message."""


class UnsupportedImage(PhotosearchError):
    """A file could not be decoded as a photo (corrupt, truncated, not an image, too large)."""


class BundleError(PhotosearchError):
    """A model bundle is missing files, has a bad config, or fails its checksum."""


class ModelNotFound(PhotosearchError):
    """No installed or buildable model bundle has the requested name."""


class ModelBuildError(PhotosearchError):
    """A model plugin could not build a bundle it was asked for (a missing build dependency,
    a name it does not offer, a failure while converting)."""


class ModelMismatch(PhotosearchError):
    """Vectors on disk were made by a different model than the one asked to read them."""


class LibraryLocked(PhotosearchError):
    """Another process is writing to this library right now."""


class NotAPhotoFile(UnsupportedImage):
    """The path is not something to read as a photo: a FIFO or device, a file far larger than
    any photo, or one whose first bytes match no image format. Refused before reading it."""


class DecodeRefused(UnsupportedImage):
    """Decoding would need more memory or time than the configured limits allow."""


class InvalidQuery(PhotosearchError):
    """A search request that cannot be run as given (bad count, unreadable text, ...)."""


class EmptyQuery(InvalidQuery):
    """A search with nothing to search for: no text (or only spaces, or only negative terms)
    and no example photo."""
