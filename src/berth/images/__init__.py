"""Local images: content-addressed blobs, unpacked layer snapshots, and the image/tag index.

Public surface: `ImageStore` (see its module docstring for the vocabulary and write protocol),
the `Image` record it returns, and `ImageUser` for `ImageStore.delete`'s `users` callback;
`apply_changes` (the `--change` instructions of import/commit) and `apply_xattrs` (a tar member's
extended attributes onto a file) for the engine's archive code.
"""

from berth.images._changes import apply_changes
from berth.images._extract import apply_xattrs
from berth.images.store import Image, ImageStore, ImageUser

__all__ = ["Image", "ImageStore", "ImageUser", "apply_changes", "apply_xattrs"]
