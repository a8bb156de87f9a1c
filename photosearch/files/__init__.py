"""Photo files on disk: walking folders, opening and decoding photos.

Owns: walking and hashing (scanning); decoding and model preprocessing (imaging); opening a
photo file safely (photo_files); camera RAW files (raw_images); decoding in worker processes
under limits (decode_pool); name_words; places; perceptual_hash.
Nothing here writes to a photo. May import photosearch.models (a bundle's
preprocessing spec) and the base.
"""
