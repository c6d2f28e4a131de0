"""CIFAR-10 (Krizhevsky 2009) as uint8 arrays, from either of two sources.

- ``cifar10_jpeg_q75.tar.gz`` (this workplace): all 60k images re-encoded as JPEG quality 75,
  ``train/<class>/NNNN.jpg``, labels exact. Decoded once with Pillow (~14 s on one core; threads
  share the work) and cached as ``.npy`` in ``<cache>/data/``. Rows must be labelled
  ``"CIFAR-10 (JPEG-q75)"``. The files are grouped by class and the cache keeps that order (class
  index, then file number, which is the original order within a class): call :func:`shuffled`
  before taking a subset or batching without a sampler.
- the canonical python batches: ``cifar-10-batches-py/`` or ``cifar-10-python.tar.gz`` in the data
  root (downloaded only with ``POTLIB_ALLOW_DOWNLOAD=1``). Labelled ``"CIFAR-10"``.

With ``source="auto"`` the canonical batches win when present (they carry no JPEG loss).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np

from potlib.data.root import (
    ARCHIVES,
    ChecksumError,
    DataError,
    _download_allowed,
    describe_root,
    cached_sha256,
    data_cache,
    data_root,
    ensure_archive,
    find_archive,
    unpack,
)
from potlib.results import atomic_write_bytes

CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
# Canonical CIFAR-10 train statistics (SPEC section 2), used for both sources.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
SPLITS = ("train", "test")
JPEG_ARCHIVE = "cifar10_jpeg_q75.tar.gz"
CANON_ARCHIVE = "cifar-10-python.tar.gz"
CANON_FOLDER = "cifar-10-batches-py"
_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}

Source = Literal["auto", "jpeg", "pickle"]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not allowed; allowed: 'train', 'test'")


# -- JPEG-q75 archive ------------------------------------------------------------------------------
def _decode(blob: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    if arr.shape != (32, 32, 3):
        raise ValueError(f"unexpected CIFAR image shape {arr.shape}; expected (32, 32, 3)")
    return arr


def _read_jpeg_archive(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Decode every image of the archive: {split: (x (N,32,32,3) uint8, y (N,) int64)}."""
    entries: dict[str, list[tuple[int, int, bytes]]] = {s: [] for s in SPLITS}
    with tarfile.open(path, "r:gz") as tf:
        for m in tf:
            if not m.isfile() or not m.name.endswith(".jpg"):
                continue
            parts = Path(m.name).parts  # (split, class, NNNN.jpg)
            if len(parts) != 3 or parts[0] not in SPLITS or parts[1] not in CLASSES:
                raise ValueError(f"unexpected member {m.name!r} in {path}")
            f = tf.extractfile(m)
            assert f is not None
            entries[parts[0]].append((CLASSES.index(parts[1]), int(Path(parts[2]).stem), f.read()))
    out = {}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for split, items in entries.items():
            items.sort(key=lambda t: (t[0], t[1]))  # class, then the original within-class order
            x = np.stack(list(pool.map(_decode, (b for _, _, b in items), chunksize=256)))
            y = np.array([c for c, _, _ in items], dtype=np.int64)
            out[split] = (x, y)
    return out


def _save_npy(path: Path, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def _load_jpeg(split: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    path = ensure_archive(JPEG_ARCHIVE)
    sha = ARCHIVES[JPEG_ARCHIVE].sha256
    folder = data_cache() / f"cifar10_jpeg_q75-{sha[:12]}"
    fx, fy = folder / f"{split}_x.npy", folder / f"{split}_y.npy"
    if not (fx.is_file() and fy.is_file()):
        for s, (x, y) in _read_jpeg_archive(path).items():
            _save_npy(folder / f"{s}_y.npy", y)  # y first: x present means the pair is complete
            _save_npy(folder / f"{s}_x.npy", x)
    info = {
        "dataset": ARCHIVES[JPEG_ARCHIVE].label,
        "sha256": sha,
        "source": str(path),
        "order": "grouped by class (call shuffled())",
    }
    return np.load(fx), np.load(fy), info


# -- canonical python batches ----------------------------------------------------------------------
def _canonical_folder() -> tuple[Path, str | None] | None:
    """(folder with the batches, sha256 of the archive or None) if the canonical data is present."""
    direct = data_root() / CANON_FOLDER
    if direct.is_dir():
        return direct, None
    if find_archive(CANON_ARCHIVE) is not None:
        return unpack(CANON_ARCHIVE) / CANON_FOLDER, ARCHIVES[CANON_ARCHIVE].sha256
    return None


BATCH_IMAGES = 10_000  # every canonical batch file (data_batch_1..5, test_batch) holds 10,000 images


def _read_batch(f: Path) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8 (10000, 3072), labels int64 (10000,)) of one canonical batch file, checked.

    Loose batch files have no published checksum, so their content is checked instead: a pickle
    that does not load, or that does not hold 10,000 3072-byte images with labels in 0..9, raises a
    :class:`~potlib.data.root.ChecksumError` naming the file, what was expected and how to fix it.
    """
    fix = f"replace it with a fresh copy from {ARCHIVES[CANON_ARCHIVE].url}"
    try:
        with open(f, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise ChecksumError(f"{f} is damaged ({type(e).__name__}: {e}); expected a CIFAR-10 batch pickle with "
                            f"{BATCH_IMAGES} images: {fix}") from None
    if data.shape != (BATCH_IMAGES, 3072) or labels.shape != (BATCH_IMAGES,) or not ((0 <= labels) & (labels < 10)).all():
        raise ChecksumError(f"{f} holds data of shape {data.shape} and {labels.shape[0]} labels; expected "
                            f"({BATCH_IMAGES}, 3072) uint8 images and {BATCH_IMAGES} labels in 0..9: {fix}")
    return data, labels


def _load_pickles(split: str, folder: Path, sha: str | None) -> tuple[np.ndarray, np.ndarray, dict]:
    xs, ys, digests = [], [], []
    for name in _BATCHES[split]:
        f = folder / name
        if not f.is_file():
            raise DataError(
                f"{name} not found: expected {f} (a complete {CANON_FOLDER} folder). To get it: "
                f"unpack {ARCHIVES[CANON_ARCHIVE].url} into {data_root()}."
            )
        data, labels = _read_batch(f)
        xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # (N,3,32,32) -> (N,32,32,3)
        ys.append(labels)
        digests.append(cached_sha256(f))
    info = {
        "dataset": ARCHIVES[CANON_ARCHIVE].label,
        # No published hash for loose batch files: record a digest of their sha256s instead.
        "sha256": sha or hashlib.sha256("".join(digests).encode()).hexdigest(),
        "sha256_of": CANON_ARCHIVE if sha else f"{CANON_FOLDER}/{split} batch files",
        "source": str(folder),
        "order": "canonical",
    }
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys), info


# -- public API ------------------------------------------------------------------------------------
def load_cifar10(split: str, source: Source = "auto") -> tuple[np.ndarray, np.ndarray, dict]:
    """CIFAR-10 ``split`` as ``(x uint8 (N,32,32,3), y int64 (N,), info)``.

    ``info`` holds ``dataset`` (the label for rows and captions), ``sha256`` (of the archive),
    ``source`` and ``order``. ``source``: ``"auto"`` (canonical batches if present, else the JPEG
    archive), ``"jpeg"`` or ``"pickle"``.
    """
    _check_split(split)
    if source not in ("auto", "jpeg", "pickle"):
        raise ValueError(f"source={source!r} is not allowed; allowed: 'auto', 'jpeg', 'pickle'")
    if source in ("auto", "pickle"):
        canon = _canonical_folder()
        if canon is not None:
            return _load_pickles(split, *canon)
        if source == "pickle" or (find_archive(JPEG_ARCHIVE) is None and _download_allowed()):
            ensure_archive(CANON_ARCHIVE)  # downloads when allowed, else names what is missing
            return _load_pickles(split, *_canonical_folder())  # type: ignore[misc]
        if find_archive(JPEG_ARCHIVE) is None:
            raise DataError(
                f"CIFAR-10 not found in the {describe_root()}: expected the JPEG archive "
                f"{data_root() / JPEG_ARCHIVE} ({ARCHIVES[JPEG_ARCHIVE].how_to_get}), or the canonical "
                f"{data_root() / CANON_ARCHIVE} or {data_root() / CANON_FOLDER}/ "
                f"({ARCHIVES[CANON_ARCHIVE].how_to_get})."
            )
    return _load_jpeg(split)


def shuffled(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same permutation of ``x`` and ``y`` (the JPEG cache is grouped by class)."""
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    perm = np.random.default_rng(seed).permutation(len(x))
    return x[perm], y[perm]


def normalise(x: np.ndarray, device: Any = "cpu"):
    """uint8 (N,32,32,3) -> float32 torch tensor (N,3,32,32) on ``device``, standardised with MEAN/STD.

    The uint8 array travels to the device first: a quarter of the bytes of the float32 result.
    """
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN, device=t.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=t.device).view(1, 3, 1, 1)
    return (t - mean) / std  # (N, 3, 32, 32)


def cifar10_tensors(
    split: str,
    device: Any = "cpu",
    limit: int | None = None,
    shuffle_seed: int | None = 0,
    source: Source = "auto",
):
    """Normalised ``(x float32 (N,3,32,32), y int64 (N,), info)`` torch tensors on ``device``.

    ``shuffle_seed`` (default 0) permutes before ``limit`` so that a small subset has all classes;
    ``None`` keeps the stored order.
    """
    import torch

    x, y, info = load_cifar10(split, source)
    if shuffle_seed is not None:
        x, y = shuffled(x, y, shuffle_seed)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit={limit!r} is not allowed; allowed: a positive int or None")
        x, y = x[:limit], y[:limit]
    info = dict(info, n=len(y), shuffle_seed=shuffle_seed)
    return normalise(x, device), torch.from_numpy(np.ascontiguousarray(y)).to(device), info
