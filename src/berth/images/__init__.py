"""Local images: content-addressed blobs, unpacked layer snapshots, and the image/tag index.

Public surface: `ImageStore` (see its module docstring for the vocabulary and write protocol),
the `Image` record it returns, and `ImageUser` for `ImageStore.delete`'s `users` callback.
"""

from berth.images.store import Image, ImageStore, ImageUser

__all__ = ["Image", "ImageStore", "ImageUser"]
