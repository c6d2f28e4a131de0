"""CIFAR-10 loaders: canonical pickle batches (faked here), the JPEG-q75 archive (faked and real)."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from potlib.data import cifar, root
from potlib.data.root import Archive, DataError
from potlib.provenance import REPO_ROOT

SHARED = Path(os.environ.get("POTLIB_DATA") or REPO_ROOT.parent / "shared" / "datasets")
HAS_CIFAR = (SHARED / cifar.JPEG_ARCHIVE).is_file()
# Derived data is keyed by sha256, so real-data tests reuse the data cache of the environment that
# started pytest (conftest gives each session a fresh POTLIB_CACHE, which would re-decode every run).
OUTER_DATA_CACHE = os.environ.get("POTLIB_DATA_CACHE") or str(
    Path(os.environ.get("POTLIB_CACHE") or Path.home() / ".cache" / "potlib") / "data"
)




@pytest.fixture(autouse=True)
def tiny_batches(monkeypatch):
    """Fake canonical batches hold 4 images; the loader checks for that count instead of 10,000."""
    monkeypatch.setattr(cifar, "BATCH_IMAGES", 4)


def _fake_batches(folder: Path, n: int = 4) -> dict[str, np.ndarray]:
    """Tiny batches in the canonical layout: data (n, 3072) uint8 = R plane, G plane, B plane."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    made = {}
    for name in [*cifar._BATCHES["train"], *cifar._BATCHES["test"]]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
        made[name] = data
    return made


def test_pickle_batches(iso):
    made = _fake_batches(iso / "data" / cifar.CANON_FOLDER)
    x, y, info = cifar.load_cifar10("train")  # auto: the canonical batches win
    assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8
    assert y.shape == (20,) and y.dtype == np.int64
    assert info["dataset"] == "CIFAR-10" and len(info["sha256"]) == 64
    d = made["data_batch_1"][0]
    # pixel (row 0, col 1) of image 0: R at 1, G at 1024 + 1, B at 2048 + 1
    assert tuple(x[0, 0, 1]) == (d[1], d[1025], d[2049])
    xt, yt, _ = cifar.load_cifar10("test", source="pickle")
    assert xt.shape == (4, 32, 32, 3)


def test_a_truncated_loose_batch_names_the_file(iso):
    folder = iso / "data" / cifar.CANON_FOLDER
    _fake_batches(folder)
    f = folder / "data_batch_3"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(root.ChecksumError, match=r"data_batch_3 is damaged \(UnpicklingError.*expected a CIFAR-10 batch"):
        cifar.load_cifar10("train")


def test_a_well_formed_batch_of_the_wrong_size_is_refused(iso):
    folder = iso / "data" / cifar.CANON_FOLDER
    _fake_batches(folder)
    with open(folder / "test_batch", "wb") as fh:  # 20 images: loads, but it is not CIFAR-10's test set
        pickle.dump({b"data": np.zeros((20, 3072), np.uint8), b"labels": [0] * 20}, fh)
    with pytest.raises(root.ChecksumError, match=r"test_batch holds data of shape \(20, 3072\).*expected \(4, 3072\)"):
        cifar.load_cifar10("test")
    with open(folder / "test_batch", "wb") as fh:  # right size, labels out of range
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 11]}, fh)
    with pytest.raises(root.ChecksumError, match="labels in 0..9"):
        cifar.load_cifar10("test")


def test_tensors_are_normalised(iso):
    _fake_batches(iso / "data" / cifar.CANON_FOLDER)
    x, y, _ = cifar.load_cifar10("test")
    xt, yt, info = cifar.cifar10_tensors("test", "cpu", shuffle_seed=None)
    assert xt.shape == (4, 3, 32, 32) and xt.dtype == torch.float32 and yt.dtype == torch.int64
    want = (x[2, 5, 7, 1] / 255.0 - cifar.MEAN[1]) / cifar.STD[1]
    assert xt[2, 1, 5, 7].item() == pytest.approx(want, abs=1e-5)
    xs, ys, _ = cifar.cifar10_tensors("test", limit=3, shuffle_seed=1)
    assert xs.shape[0] == 3 and info["n"] == 4


def test_missing_everything_is_a_clear_error(iso):
    with pytest.raises(DataError) as e:
        cifar.load_cifar10("train")
    msg = str(e.value)
    assert cifar.JPEG_ARCHIVE in msg and cifar.CANON_ARCHIVE in msg and "(from POTLIB_DATA)" in msg
    assert "the JPEG archive" in msg and "shared/datasets" in msg
    with pytest.raises(ValueError, match="split='val'"):
        cifar.load_cifar10("val")


def test_the_message_says_where_the_root_comes_from(iso, monkeypatch):
    monkeypatch.delenv("POTLIB_DATA")
    assert "the default; set POTLIB_DATA" in root.describe_root()
    monkeypatch.setenv("POTLIB_DATA", str(iso / "data"))
    assert "(from POTLIB_DATA)" in root.describe_root()


def _jpeg(rgb: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), rgb).save(buf, format="JPEG", quality=75)
    return buf.getvalue()


def test_jpeg_archive_order_and_cache(iso, monkeypatch):
    files = {}
    for split in ("train", "test"):
        for cls in ("truck", "airplane", "cat"):  # written out of order on purpose
            for i in (1, 0):
                files[f"{split}/{cls}/{i:04d}.jpg"] = _jpeg((120 * i, 100, 200))
    arc = iso / "data" / cifar.JPEG_ARCHIVE
    with tarfile.open(arc, "w:gz") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    sha = hashlib.sha256(arc.read_bytes()).hexdigest()
    monkeypatch.setitem(
        root.ARCHIVES, cifar.JPEG_ARCHIVE, Archive(cifar.JPEG_ARCHIVE, sha, "CIFAR-10 (JPEG-q75)")
    )
    x, y, info = cifar.load_cifar10("train")
    assert info["dataset"] == "CIFAR-10 (JPEG-q75)" and info["sha256"] == sha
    assert y.tolist() == [0, 0, 3, 3, 9, 9]  # grouped by class index, then file number
    assert x[0, 0, 0, 0] < 30 < 90 < x[1, 0, 0, 0]  # 0000 (red 0) before 0001 (red 120)
    monkeypatch.setattr(cifar, "_read_jpeg_archive", lambda p: pytest.fail("decoded twice"))
    x2, y2, _ = cifar.load_cifar10("test")
    assert len(y2) == 6
    xs, ys = cifar.shuffled(x, y, seed=0)
    assert sorted(ys.tolist()) == sorted(y.tolist())


@pytest.mark.skipif(not HAS_CIFAR, reason=f"{cifar.JPEG_ARCHIVE} not found in {SHARED}")
def test_real_jpeg_archive(monkeypatch):
    """Decodes all 60k images on first use (11-20 s on 2 busy cores), then reads the cache."""
    monkeypatch.setenv("POTLIB_DATA", str(SHARED))
    monkeypatch.setenv("POTLIB_DATA_CACHE", OUTER_DATA_CACHE)
    x, y, info = cifar.load_cifar10("test")
    assert x.shape == (10000, 32, 32, 3) and np.bincount(y).tolist() == [1000] * 10
    assert info["dataset"] == "CIFAR-10 (JPEG-q75)"
    xtr, ytr, _ = cifar.load_cifar10("train")
    assert xtr.shape == (50000, 32, 32, 3) and (np.diff(ytr) >= 0).all()  # grouped by class
    mean = xtr.reshape(-1, 3).mean(0) / 255.0
    assert np.allclose(mean, [0.4913, 0.4821, 0.4465], atol=2e-4)  # dataset README
