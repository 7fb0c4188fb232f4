"""Prepared datasets: real photographs read once, cleaned, and stored as a Zarr v3 array.

``prepare_dataset("celeba", "/data/img_align_celeba")`` (the CLI: ``gahb data prepare celeba
--src DIR``) reads every image of the source in sorted order (:mod:`gahb_bench.data.sources`),
skips and counts the files that cannot be decoded, removes near-duplicates
(:mod:`gahb_bench.data.dedup`, SCIENCE.md §2) and writes ``<data_root>/<name>.zarr``:

``images``
    (n_kept, size, size) float32 on [0, 1], grey, in source order; chunks of 64 images.
``files``
    (n_kept,) variable-length UTF-8: the source path of each kept image, relative to ``src``.
``duplicate_files``, ``duplicate_of``
    for each removed near-duplicate: its path, and the path of the kept image it matches.
attrs
    ``gahb_prepared`` (format version), ``source``, ``src`` (absolute), ``size``, ``counts``
    (read, skipped_unreadable, skipped_unsupported, skipped_wrong_shape, decoded,
    removed_duplicates, kept), ``dedup`` (threshold, pool, pairs_compared, pairs_found),
    ``skipped`` (the first 1000 skipped files and why), ``gahb_bench_version``,
    ``created`` (UTC), ``extensions``.

Memory is bounded: images stream through in batches (written to a scratch array in the same store,
then compacted), and the pair search of the duplicate removal works in tiles; only the n×pool²
float32 features (1.6 kB per image at pool 20: 320 MB for 2·10⁵ images) are held for all images.
The store is built under a hidden temporary name and renamed into place when complete, so an
interrupted run never leaves a half-written dataset under the real name.

The data root is ``$GAHB_DATA_ROOT`` when set, else ``./gahb-data`` (git ignores it).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from gahb_bench.data import dedup, sources
from gahb_bench.errors import DataError
from gahb_bench.provenance import now

#: Format version of a prepared store; bump when the layout changes.
FORMAT_VERSION = 1
DATA_ROOT_ENV = "GAHB_DATA_ROOT"
DEFAULT_DATA_ROOT = "gahb-data"
DEFAULT_MAX_MEMORY = 1 << 30  # 1 GiB of working memory, besides the n×pool² features
CHUNK_IMAGES = 64
MAX_SKIPPED_LISTED = 1000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where prepared datasets live: ``root`` if given, else ``$GAHB_DATA_ROOT``, else ./gahb-data."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT)


def dataset_path(name: str, root: str | os.PathLike | None = None) -> Path:
    """The store of dataset ``name``: ``<data_root>/<name>.zarr``."""
    return data_root(root) / f"{name}.zarr"


def prepare_command(name: str) -> str:
    """The CLI command that prepares dataset ``name`` (for error messages)."""
    if name in sources.SOURCES and name != "folder":
        return f"gahb data prepare {name} --src DIR"
    return f"gahb data prepare folder --src DIR --name {name}"


def _budget(size: int, pool: int, max_memory_bytes: int) -> tuple[int, int]:
    """Split the working memory: (images per batch, bytes for the dedup tiles)."""
    if int(max_memory_bytes) < 1 << 20:
        raise DataError(f"max_memory_bytes must be at least 1 MiB, got {max_memory_bytes}")
    # per image in a batch: the float32 image, its float64 copy for pooling, the pooled rows;
    # decode buffers are per worker thread, not per image, and small next to a batch
    per_image = 12 * size * size + 8 * pool * (size + pool)
    batch = int(max(1, min(4096, (int(max_memory_bytes) // 4) // per_image)))
    if batch >= CHUNK_IMAGES:
        batch = batch // CHUNK_IMAGES * CHUNK_IMAGES  # whole chunks per append
    return batch, int(max_memory_bytes) // 2


def _decode(path: Path, source: str, size: int) -> tuple[np.ndarray | None, str | None, str | None]:
    try:
        return sources.load_image(path, source, size), None, None
    except sources.UnreadableImage as exc:
        return None, exc.reason, str(exc)


def prepare_dataset(source: str, src: str | os.PathLike, data_root: str | os.PathLike | None = None,
                    name: str | None = None, size: int = 80, threshold: float = 0.95, pool: int = 20,
                    max_memory_bytes: int = DEFAULT_MAX_MEMORY, overwrite: bool = False,
                    progress: bool = True, workers: int | None = None) -> dict[str, Any]:
    """Read, clean and store the images of ``src`` as dataset ``name``; return a summary.

    Parameters
    ----------
    source : "celeba", "lsun" or "folder" (crop and resize rules of :mod:`.sources`).
    src : the folder of source images (searched recursively).
    data_root : where to write; default :func:`data_root`.
    name : dataset name (default: ``source``); the store is ``<data_root>/<name>.zarr``.
    size : side of the stored images in pixels (the paper: 80).
    threshold : |corr| above which two images are near-duplicates (the paper: 0.95).
    pool : side of the average-pooled images the correlation is computed on (the paper: 20).
    max_memory_bytes : working memory for image batches and the pair search (the n×pool²
        features come on top).
    overwrite : replace an existing dataset of the same name instead of raising DataError.
    progress : show tqdm bars on stderr (only when stderr is a terminal).
    workers : threads decoding images (Pillow releases the GIL; default min(8, CPUs)); the
        result does not depend on it.

    Returns
    -------
    dict with ``name``, ``path``, ``source``, ``src``, ``size``, the ``counts`` and the
    ``dedup`` statistics stored in the attrs, and ``seconds``.

    Raises
    ------
    DataError : unknown source, missing ``src``, no image files, no decodable image, or an
        existing dataset without ``overwrite``.
    """
    import zarr
    from tqdm.auto import tqdm

    from gahb_bench import __version__

    start = time.perf_counter()
    if source not in sources.SOURCES:
        raise DataError(f"unknown source {source!r}; choose one of {', '.join(sources.SOURCES)}")
    name = source if name is None else str(name)
    if not _NAME.match(name):
        raise DataError(f"dataset name {name!r} is invalid: use letters, digits, '-', '_' or '.'")
    workers = min(8, os.cpu_count() or 1) if workers is None else workers
    size, pool, workers = int(size), int(pool), int(workers)
    if size < 4:
        raise DataError(f"size must be at least 4 pixels, got {size}")
    if not 0.0 < float(threshold) <= 1.0:
        raise DataError(f"threshold must be in (0, 1], got {threshold}")
    if pool < 2:
        raise DataError(f"pool must be at least 2, got {pool}")
    if workers < 1:
        raise DataError(f"workers must be at least 1, got {workers}")
    src_path = Path(src).expanduser()
    if not src_path.is_dir():
        raise DataError(f"source folder {src_path} does not exist or is not a folder")
    target = dataset_path(name, data_root)
    if target.exists() and not overwrite:
        raise DataError(f"dataset {name!r} already exists at {target}; pass --overwrite to prepare it again")
    files = sources.list_images(src_path)
    if not files:
        raise DataError(f"no image files ({', '.join(sources.IMAGE_EXTENSIONS)}) under {src_path}")

    batch, dedup_bytes = _budget(size, pool, max_memory_bytes)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.parent / f".{name}.zarr.partial-{os.getpid()}"
    if scratch.exists():
        shutil.rmtree(scratch)
    bar_off = True if not progress else None  # None: tqdm draws only on a terminal
    try:
        group = zarr.open_group(scratch, mode="w")
        raw = group.create_array("raw", shape=(0, size, size), chunks=(CHUNK_IMAGES, size, size), dtype="float32")
        decoded_files: list[str] = []
        skipped: list[tuple[str, str]] = []
        counts = {"unreadable": 0, "unsupported": 0, "wrong_shape": 0}
        # one row per decodable file, filled in order: no second copy when the search starts
        features = np.empty((len(files), pool * pool), dtype=np.float32)
        with ThreadPoolExecutor(max_workers=workers) as pool_exec, \
                tqdm(total=len(files), desc=f"reading {name}", unit="img", file=sys.stderr,
                     disable=bar_off, leave=False) as bar:
            for b0 in range(0, len(files), batch):
                names = files[b0:b0 + batch]
                results = pool_exec.map(lambda f: _decode(src_path / f, source, size), names)
                images = []
                for fname, (image, reason, message) in zip(names, results):
                    if image is None:
                        counts[reason] = counts.get(reason, 0) + 1
                        if len(skipped) < MAX_SKIPPED_LISTED:
                            skipped.append((fname, message))
                    else:
                        images.append(image)
                        decoded_files.append(fname)
                if images:
                    stack = np.stack(images)
                    raw.append(stack, axis=0)
                    end = len(decoded_files)
                    features[end - len(images):end] = dedup.pooled_features(stack, pool)
                bar.update(len(names))
        if not decoded_files:
            raise DataError(f"none of the {len(files)} image files under {src_path} could be read as "
                            f"{source} images ({_reasons(counts)})")

        found = dedup.near_duplicates(features[:len(decoded_files)], threshold, max_bytes=dedup_bytes)
        del features
        keep = np.zeros(len(decoded_files), dtype=bool)
        keep[found.kept] = True
        _compact(group, raw, keep, batch, size, tqdm, bar_off, name)
        del group["raw"]

        kept_files = [decoded_files[i] for i in found.kept]
        dropped = np.flatnonzero(~keep)
        _strings(group, "files", kept_files)
        _strings(group, "duplicate_files", [decoded_files[i] for i in dropped])
        _strings(group, "duplicate_of", [decoded_files[found.duplicate_of[i]] for i in dropped])
        summary_counts = {
            "read": len(files),
            "skipped_unreadable": counts["unreadable"],
            "skipped_unsupported": counts["unsupported"],
            "skipped_wrong_shape": counts["wrong_shape"],
            "decoded": len(decoded_files),
            "removed_duplicates": int(dropped.size),
            "kept": len(kept_files),
        }
        stats = {"threshold": float(threshold), "pool": pool, "pairs_compared": found.pairs_compared,
                 "pairs_found": found.pairs_found, "block_size": found.block_size}
        group.attrs.update({
            "gahb_prepared": FORMAT_VERSION,
            "name": name,
            "source": source,
            "src": str(src_path.resolve()),
            "size": size,
            "counts": summary_counts,
            "dedup": stats,
            "skipped": [list(s) for s in skipped],
            "extensions": list(sources.IMAGE_EXTENSIONS),
            "gahb_bench_version": __version__,
            "created": now(),
        })
        _move_into_place(scratch, target, overwrite, name)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return {"name": name, "path": str(target), "source": source, "src": str(src_path.resolve()),
            "size": size, "counts": summary_counts, "dedup": stats,
            "seconds": round(time.perf_counter() - start, 3)}


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v) or "no reason recorded"


def _strings(group, key: str, values: list[str]) -> None:
    arr = group.create_array(key, shape=(len(values),), dtype=str, chunks=(65536,))
    if values:
        arr[:] = np.array(values, dtype=object)


def _compact(group, raw, keep: np.ndarray, batch: int, size: int, tqdm, bar_off, name: str) -> None:
    """Copy the kept rows of ``raw`` into ``images``, writing whole chunks (bounded memory)."""
    n_kept = int(keep.sum())
    images = group.create_array("images", shape=(n_kept, size, size), chunks=(CHUNK_IMAGES, size, size),
                                dtype="float32")
    pending: list[np.ndarray] = []
    n_pending, written = 0, 0
    with tqdm(total=len(keep), desc=f"writing {name}", unit="img", file=sys.stderr,
              disable=bar_off, leave=False) as bar:
        for r0 in range(0, len(keep), batch):
            sel = keep[r0:r0 + batch]
            if sel.any():
                block = raw[r0:r0 + len(sel)][sel]
                pending.append(block)
                n_pending += len(block)
            # write whole chunks; the remainder waits for the next batch (or the end)
            ready = n_pending if r0 + batch >= len(keep) else n_pending // CHUNK_IMAGES * CHUNK_IMAGES
            if ready:
                stack = np.concatenate(pending)
                images[written:written + ready] = stack[:ready]
                written += ready
                pending = [stack[ready:]] if ready < len(stack) else []
                n_pending -= ready
            bar.update(len(sel))
    if written != n_kept:  # an internal invariant, not a user error
        raise RuntimeError(f"compaction wrote {written} images, expected {n_kept}")


def _move_into_place(scratch: Path, target: Path, overwrite: bool, name: str) -> None:
    if target.exists():
        if not overwrite:
            raise DataError(f"dataset {name!r} appeared at {target} while preparing; pass --overwrite to replace it")
        old = target.parent / f".{name}.zarr.old-{os.getpid()}"
        target.rename(old)
        scratch.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        scratch.rename(target)


def open_prepared_group(name: str, data_root: str | os.PathLike | None = None):
    """The Zarr group of prepared dataset ``name``, checked; raises DataError if missing or corrupt."""
    import zarr

    path = dataset_path(name, data_root)
    if not path.exists():
        raise DataError(f"dataset {name!r} is not prepared (no {path}); run `{prepare_command(name)}`")
    fix = f"prepare it again with `{prepare_command(name)} --overwrite`"
    try:
        group = zarr.open_group(path, mode="r")
        attrs = dict(group.attrs)
        images = group["images"]
        files = group["files"]
    except Exception as exc:  # zarr raises several types for damaged metadata
        raise DataError(f"dataset {name!r} at {path} is corrupt ({type(exc).__name__}: {exc}); {fix}") from None
    if attrs.get("gahb_prepared") != FORMAT_VERSION:
        raise DataError(f"dataset {name!r} at {path} is not a gahb-bench prepared dataset "
                        f"(format {attrs.get('gahb_prepared')!r}, expected {FORMAT_VERSION}); {fix}")
    size = attrs.get("size")
    kept = attrs.get("counts", {}).get("kept")
    if images.ndim != 3 or images.shape != (kept, size, size) or files.shape != (kept,):
        raise DataError(f"dataset {name!r} at {path} is corrupt (images {images.shape}, files {files.shape}, "
                        f"expected {kept} images of {size}x{size}); {fix}")
    return group


def open_prepared(name: str, data_root: str | os.PathLike | None = None) -> np.ndarray:
    """All images of prepared dataset ``name``: (n, size, size) float32 on [0, 1].

    Raises DataError, naming the command that prepares it, when missing or corrupt.
    """
    group = open_prepared_group(name, data_root)
    try:
        return np.asarray(group["images"][:], dtype=np.float32)
    except Exception as exc:
        raise DataError(f"dataset {name!r} at {dataset_path(name, data_root)} is corrupt "
                        f"({type(exc).__name__}: {exc}); prepare it again with "
                        f"`{prepare_command(name)} --overwrite`") from None
