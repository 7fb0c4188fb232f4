"""Reading real photographs: one loader per source, each a pure chain read → grey → crop → resize.

Every source returns grey images on [0, 1], float32, shape (size, size):

``celeba``
    The paper's recipe (SCIENCE.md §4), for the aligned-and-cropped CelebA images
    (``img_align_celeba/*.jpg``, 218×178): crop rows 29:−29 and columns 9:−9 to the central
    160×160, then bicubic resize to ``size``. An image that is not 218×178 is skipped and
    counted (``wrong_shape``), never silently cropped elsewhere.
``lsun``
    LSUN scenes (e.g. bedrooms). LSUN ships as LMDB databases; gahb-bench does not depend on
    ``lmdb``, so ``--src`` is the folder written by LSUN's own exporter (``python data.py export
    …``, one ``.webp`` per image) or any folder of LSUN images. Each image is centre-cropped to
    its largest central square (the short side), then bicubic-resized to ``size``; this is the
    usual LSUN preprocessing (e.g. the DDPM and guided-diffusion data loaders).
``folder``
    Any images under a folder, recursively (png, jpg, jpeg, bmp, tif, tiff, webp; case-insensitive);
    same centre square crop and resize as ``lsun``.

Grey level = mean of R, G, B (SCIENCE.md §4); alpha is dropped; palette and 1-bit images are
expanded to RGB first; 16-bit grey images ("I;16", "I") are divided by 65535. The resize is
Pillow's bicubic filter (a = −0.5) on the float grey image, which widens the kernel by the
downscaling factor (anti-aliased); bicubic overshoot is clipped back to [0, 1].
Files that Pillow cannot decode (corrupt, truncated, not an image, unsupported mode) raise
:class:`UnreadableImage`, which the caller counts and skips.

File order is deterministic: relative paths (POSIX separators) sorted as strings.

References: Liu et al., "Deep learning face attributes in the wild", ICCV 2015 (CelebA);
Yu et al., "LSUN", arXiv 1506.03365; Kadkhodaie et al., ICLR 2024 (the crop).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

#: File extensions read by every source (compared lower-case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

#: Shape of an aligned CelebA image and the paper's crop of it (rows 29:−29, cols 9:−9).
CELEBA_SHAPE = (218, 178)
CELEBA_CROP = (slice(29, -29), slice(9, -9))

SOURCES = ("celeba", "lsun", "folder")


class UnreadableImage(Exception):
    """A file that cannot be turned into an image; ``reason`` is a short tag for the counts."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def list_images(src: str | os.PathLike) -> list[str]:
    """Relative paths (POSIX, sorted) of every file under ``src`` with an image extension.

    Hidden files and folders (names starting with '.') are ignored.
    """
    root = Path(src)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(root)
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append((rel_dir / name).as_posix())
    return sorted(found)


def read_grey(path: str | os.PathLike) -> np.ndarray:
    """Decode one file to grey float32 on [0, 1], shape (H, W): the mean of R, G and B.

    Raises :class:`UnreadableImage` when the file cannot be decoded completely.
    """
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()  # decode now: a truncated file fails here, not later
            if im.mode in ("I;16", "I;16L", "I;16B", "I"):
                return np.clip(np.asarray(im, dtype=np.float32) / 65535.0, 0.0, 1.0)
            if im.mode == "F":
                raise UnreadableImage("unsupported", f"{path}: floating-point images have no known range")
            rgb = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except UnreadableImage:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError…
        raise UnreadableImage("unreadable", f"{path}: {type(exc).__name__}: {exc}") from None
    # (R + G + B) / (3·255): the integer sum is exact; summing planes beats a strided mean
    total = rgb[..., 0].astype(np.float32)
    total += rgb[..., 1]
    total += rgb[..., 2]
    return total / np.float32(765.0)


def celeba_crop(image: np.ndarray) -> np.ndarray:
    """The paper's CelebA crop: ``image[29:-29, 9:-9]``, a 218×178 image → its central 160×160."""
    image = np.asarray(image)
    if image.shape[:2] != CELEBA_SHAPE:
        raise ValueError(f"celeba_crop expects a {CELEBA_SHAPE[0]}x{CELEBA_SHAPE[1]} image, got shape {image.shape}")
    return image[CELEBA_CROP]


def centre_square(image: np.ndarray) -> np.ndarray:
    """The largest central square of a (H, W, …) image; an odd margin leaves the extra pixel at the end."""
    image = np.asarray(image)
    if image.ndim < 2 or min(image.shape[:2]) < 1:
        raise ValueError(f"centre_square expects an image of shape (H, W, ...), got {image.shape}")
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[top:top + side, left:left + side]


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Bicubic resize of a grey (H, W) image to (size, size), float32 clipped to [0, 1].

    Pillow's bicubic (Keys, a = −0.5) in floating point ("F" mode); when shrinking, the kernel
    support grows with the scale factor, so the result is anti-aliased. Returns a copy when the
    image already has the requested size.
    """
    from PIL import Image

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"resize_square expects a grey (H, W) image, got shape {image.shape}")
    size = int(size)
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    if image.shape == (size, size):
        return image.copy()
    out = Image.fromarray(image).resize((size, size), resample=Image.Resampling.BICUBIC)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


def _celeba(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape != CELEBA_SHAPE:
        raise UnreadableImage("wrong_shape",
                              f"not an aligned CelebA image: shape {image.shape}, expected {CELEBA_SHAPE}")
    return resize_square(celeba_crop(image), size)


def _square(image: np.ndarray, size: int) -> np.ndarray:
    return resize_square(centre_square(image), size)


#: source name → (grey image, size) → (size, size) image
TRANSFORMS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "celeba": _celeba,
    "lsun": _square,
    "folder": _square,
}


def load_image(path: str | os.PathLike, source: str, size: int) -> np.ndarray:
    """Read one file and apply ``source``'s crop and resize: (size, size) float32 on [0, 1].

    Raises :class:`UnreadableImage` (with ``reason`` "unreadable", "unsupported" or
    "wrong_shape") for a file that cannot become an image of this source.
    """
    if source not in TRANSFORMS:
        raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    return TRANSFORMS[source](read_grey(path), int(size))
