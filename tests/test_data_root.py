"""Data root, sha256 verification (and its cache), unpacking, offline errors, gated downloads."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from potlib.data import root
from potlib.data.root import Archive, ChecksumError, DataError
from potlib.provenance import REPO_ROOT

SHARED = Path(os.environ.get("POTLIB_DATA") or REPO_ROOT.parent / "shared" / "datasets")
HAS_SHARED = (SHARED / "SHA256SUMS").is_file()
needs_shared = pytest.mark.skipif(not HAS_SHARED, reason=f"dataset archives not found at {SHARED}")




def _tiny_tar(path: Path, files: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_data_root_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv("POTLIB_DATA", str(tmp_path))
    assert root.data_root() == tmp_path
    monkeypatch.delenv("POTLIB_DATA")
    assert root.data_root() == Path.home() / ".cache" / "potlib" / "data"


def test_sha256_file(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc" * 100_000)
    assert root.sha256_file(f) == hashlib.sha256(b"abc" * 100_000).hexdigest()


def test_missing_archive_names_file_path_and_how(iso):
    with pytest.raises(DataError) as e:
        root.ensure_archive("sudoku_tdoku.tar.gz")
    msg = str(e.value)
    assert isinstance(e.value, FileNotFoundError)
    assert "sudoku_tdoku.tar.gz" in msg and str(iso / "data" / "sudoku_tdoku.tar.gz") in msg
    assert "POTLIB_DATA" in msg and "To get it" in msg
    with pytest.raises(DataError, match="POTLIB_ALLOW_DOWNLOAD=1"):
        root.ensure_archive("cifar-10-python.tar.gz")
    with pytest.raises(ValueError, match="not a known archive"):
        root.ensure_archive("nope.tar.gz")


def test_corrupt_archive_reports_both_hashes(iso):
    bad = iso / "data" / "sudoku_tdoku.tar.gz"
    bad.write_bytes(b"not the archive")
    with pytest.raises(ChecksumError) as e:
        root.ensure_archive("sudoku_tdoku.tar.gz")
    msg = str(e.value)
    assert str(bad) in msg
    assert root.ARCHIVES["sudoku_tdoku.tar.gz"].sha256 in msg
    assert hashlib.sha256(b"not the archive").hexdigest() in msg


def test_verification_is_cached_by_path_size_mtime(iso, monkeypatch):
    f = iso / "data" / "f.bin"
    f.write_bytes(b"hello")
    expected = hashlib.sha256(b"hello").hexdigest()
    assert root.verify(f, expected) == expected
    calls = []
    real = root.sha256_file
    monkeypatch.setattr(root, "sha256_file", lambda p: calls.append(p) or real(p))
    root.verify(f, expected)
    assert calls == []  # served from <cache>/data/verified.json
    f.write_bytes(b"hellp")  # same size, new mtime and content
    os.utime(f, ns=(1, 1))
    with pytest.raises(ChecksumError):
        root.verify(f, expected)
    assert len(calls) == 1


def test_unpack_once_atomically(iso, monkeypatch):
    arc = iso / "data" / "tiny.tar.gz"
    sha = _tiny_tar(arc, {"tiny/a.txt": b"a", "tiny/sub/b.txt": b"bb"})
    monkeypatch.setitem(root.ARCHIVES, "tiny.tar.gz", Archive("tiny.tar.gz", sha, "tiny"))
    dest = root.unpack("tiny.tar.gz")
    assert (dest / "tiny" / "sub" / "b.txt").read_bytes() == b"bb"
    assert dest.parent == root.data_cache()
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    monkeypatch.setattr(root.tarfile, "open", lambda *a, **k: pytest.fail("unpacked twice"))
    assert root.unpack("tiny.tar.gz") == dest


def test_unpack_refuses_path_traversal(iso, monkeypatch):
    arc = iso / "data" / "evil.tar.gz"
    sha = _tiny_tar(arc, {"../evil.txt": b"x"})
    monkeypatch.setitem(root.ARCHIVES, "evil.tar.gz", Archive("evil.tar.gz", sha, "evil"))
    with pytest.raises(Exception, match="unsafe"):
        root.unpack("evil.tar.gz")
    assert not (iso / "cache" / "evil.txt").exists()


def test_download_only_when_allowed(iso, monkeypatch):
    payload = b"pretend canonical archive"
    sha = hashlib.sha256(payload).hexdigest()
    name = "cifar-10-python.tar.gz"
    monkeypatch.setitem(root.ARCHIVES, name, Archive(name, sha, "CIFAR-10", url="https://x/y"))
    urls = []

    def fake_download(url, dest):
        urls.append(url)
        dest.write_bytes(payload)

    monkeypatch.setattr(root, "_download", fake_download)
    with pytest.raises(DataError):
        root.ensure_archive(name)
    assert urls == []
    monkeypatch.setenv("POTLIB_ALLOW_DOWNLOAD", "1")
    assert root.ensure_archive(name).read_bytes() == payload
    assert urls == ["https://x/y"]


def test_canonical_urls_are_the_documented_ones():
    assert root.ARCHIVES["cifar-10-python.tar.gz"].url == (
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    )
    for rel, (_, url) in root.INNER_FILES.items():
        if rel.startswith("ud_english_ewt/"):
            assert url.startswith("https://raw.githubusercontent.com/UniversalDependencies/")


@needs_shared
def test_shared_archives_match_sha256sums(monkeypatch):
    monkeypatch.setenv("POTLIB_DATA", str(SHARED))
    listed = dict(
        reversed(line.split()) for line in (SHARED / "SHA256SUMS").read_text().splitlines() if line
    )
    for name, sha in listed.items():
        assert root.ARCHIVES[name].sha256 == sha
        assert root.ensure_archive(name) == SHARED / name


def test_loose_files_are_verified_and_missing_data_is_named(iso):
    from potlib.data import sudoku, ud

    with pytest.raises(DataError, match="ud_english_ewt_v2.16.tar.gz"):
        ud.load_ud_ewt("dev")
    folder = iso / "data" / "sudoku"
    folder.mkdir()
    (folder / "puzzles3_magictour_top1465").write_text("." * 81 + "\n")
    with pytest.raises(ChecksumError, match="puzzles3_magictour_top1465"):
        sudoku.load_collection("top1465")  # a loose file must match the release's sha256


def test_public_api_reexports():
    import potlib.data as d

    for name in d.__all__:
        assert getattr(d, name) is not None
    with pytest.raises(AttributeError):
        d.no_such_name  # noqa: B018
