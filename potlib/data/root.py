"""Where datasets live, how they are verified, unpacked and (only when allowed) downloaded.

``POTLIB_DATA`` names the data root (default ``~/.cache/potlib/data``). Loaders look there for the
archives of ``../shared/datasets`` (SPEC section 2) or for the canonical files, verify their sha256
against the table below, and unpack an archive once into the data cache (:func:`data_cache`:
``POTLIB_DATA_CACHE``, default ``<potlib.results.cache_dir()>/data``).
A download happens only when a file is missing *and* ``POTLIB_ALLOW_DOWNLOAD=1``; otherwise the error
names the file, the path where it was expected and how to get it.

Hashing a 20 MB archive takes ~0.1 s; the verdict is cached by (path, size, mtime) in
``<cache>/data/verified.json`` so that repeated loads do not rehash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from potlib.errors import DataUnavailable
from potlib.results import atomic_write_bytes, cache_dir

__all__ = [
    "ARCHIVES",
    "INNER_FILES",
    "ChecksumError",
    "DataError",
    "data_cache",
    "data_root",
    "ensure_archive",
    "ensure_file",
    "find_archive",
    "sha256_file",
    "unpack",
    "verify",
]


@dataclass(frozen=True)
class Archive:
    """A known file: its sha256 (or md5 for canonical sources that publish only md5)."""

    name: str
    sha256: str
    label: str  # dataset label for rows and captions
    url: str | None = None  # canonical download, used only with POTLIB_ALLOW_DOWNLOAD=1
    how_to_get: str = ""


_SHARED = "copy it from the workplace's shared/datasets folder (or point POTLIB_DATA there)"

# sha256 of the three archives: shared/datasets/SHA256SUMS. cifar-10-python.tar.gz: the canonical
# archive of Krizhevsky's home page (md5 c58f30108f718f92721af3b95e74349a, as published there).
ARCHIVES: dict[str, Archive] = {
    a.name: a
    for a in (
        Archive(
            "cifar10_jpeg_q75.tar.gz",
            "5bbd2193f3b9982b20b3e62de1fcb9691706d5884e1bfe2840596f4c5f9b9bec",
            "CIFAR-10 (JPEG-q75)",
            how_to_get=_SHARED + ", or provide the canonical cifar-10-python.tar.gz instead",
        ),
        Archive(
            "cifar-10-python.tar.gz",
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            "CIFAR-10",
            url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            how_to_get="download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz "
            "(or set POTLIB_ALLOW_DOWNLOAD=1)",
        ),
        Archive(
            "ud_english_ewt_v2.16.tar.gz",
            "d07a11ad58cfef5fb4ec0fdc43e24d02b7a290fdd60fe8206a2d2aac210b3159",
            "UD English EWT v2.16",
            how_to_get=_SHARED + ", or put en_ewt-ud-{train,dev,test}.conllu of the r2.16 release "
            "in <data root>/ud_english_ewt/ (POTLIB_ALLOW_DOWNLOAD=1 fetches them)",
        ),
        Archive(
            "sudoku_tdoku.tar.gz",
            "dc2eeb59c8b5f0375c03e7882f029ee2b51ba3a86560e4e7b3571815ba0aaf1c",
            "tdoku Sudoku collections",
            how_to_get=_SHARED + ", or put tdoku's puzzle files (github.com/t-dillon/tdoku, data/) "
            "in <data root>/sudoku/",
        ),
    )
}

_UD_RAW = "https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/r2.16/"
# Files inside the archives (shared/datasets/README.md). The UD files are byte-identical to the
# r2.16 release, so a download of the raw files is verified against the same hashes.
INNER_FILES: dict[str, tuple[str, str | None]] = {
    "ud_english_ewt/en_ewt-ud-train.conllu": (
        "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b",
        _UD_RAW + "en_ewt-ud-train.conllu",
    ),
    "ud_english_ewt/en_ewt-ud-dev.conllu": (
        "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6",
        _UD_RAW + "en_ewt-ud-dev.conllu",
    ),
    "ud_english_ewt/en_ewt-ud-test.conllu": (
        "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd",
        _UD_RAW + "en_ewt-ud-test.conllu",
    ),
    "sudoku/puzzles2_17_clue": (
        "2cf268735dfd40d32269b5f20ebbea067037e5976b4d016ce0b4d3c0a50deb30",
        None,
    ),
    "sudoku/puzzles3_magictour_top1465": (
        "ca0369f516dac7dfdd987d2c310ac33dcfc7478db5171bea5bca1f3878758bce",
        None,
    ),
    "sudoku/puzzles5_forum_hardest_1905_11+": (
        "56236eaf6c7445ea244db3423ec44a102349dbedf6e457af0fcdd3d07cf39996",
        None,
    ),
    "sudoku/puzzles6_forum_hardest_1106": (
        "45d0afc5892d6797621d7c00f518df8f1483eceb921416984b8687e16128eb06",
        None,
    ),
}


class DataError(DataUnavailable, FileNotFoundError):
    """A dataset file is missing: the message names it, where it was expected and how to get it."""


class ChecksumError(DataUnavailable, ValueError):
    """A dataset file exists but its sha256 differs: names the file, expected and actual hash."""


def data_root() -> Path:
    """The data root: ``$POTLIB_DATA``, else ``~/.cache/potlib/data``."""
    env = os.environ.get("POTLIB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "potlib" / "data"


def describe_root() -> str:
    """'data root X (from POTLIB_DATA)' or '... (the default; set POTLIB_DATA to use another)'."""
    how = "from POTLIB_DATA" if os.environ.get("POTLIB_DATA") else "the default; set POTLIB_DATA to use another"
    return f"data root {data_root()} ({how})"


def data_cache() -> Path:
    """Derived data (unpacked archives, decoded arrays, solved puzzles, splits).

    ``$POTLIB_DATA_CACHE``, else ``<cache_dir>/data``. Everything in it is keyed by the sha256 of
    its source, so one data cache can be shared by test sessions whose result caches are isolated.
    """
    env = os.environ.get("POTLIB_DATA_CACHE")
    return Path(env).expanduser() if env else cache_dir() / "data"


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _verified_path() -> Path:
    return data_cache() / "verified.json"


def _load_verified() -> dict[str, str]:
    try:
        return json.loads(_verified_path().read_text())
    except (OSError, ValueError):
        return {}  # a missing or damaged cache only costs a rehash


def _stat_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


def cached_sha256(path: Path | str) -> str:
    """sha256 of ``path``, remembered by (path, size, mtime) so that unchanged files are hashed once."""
    path = Path(path)
    key = _stat_key(path)
    seen = _load_verified()
    if key in seen:
        return seen[key]
    digest = sha256_file(path)
    seen = _load_verified()  # re-read: another process may have added entries meanwhile
    seen[key] = digest
    try:
        atomic_write_bytes(_verified_path(), json.dumps(seen, indent=0).encode())
    except OSError:
        pass  # a read-only cache must not stop a load
    return digest


def verify(path: Path | str, expected: str) -> str:
    """Check the sha256 of ``path``; raise :class:`ChecksumError` naming file and both hashes."""
    path = Path(path)
    if not path.is_file():
        raise _missing(path.name, path, "restore the complete folder or archive it belongs to")
    actual = cached_sha256(path)
    if actual != expected:
        raise ChecksumError(
            f"checksum mismatch for {path}: expected sha256 {expected}, got {actual}. The file is "
            "corrupt or a different version: delete it and fetch it again."
        )
    return actual


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            shutil.copyfileobj(resp, out)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download_allowed() -> bool:
    return os.environ.get("POTLIB_ALLOW_DOWNLOAD", "") == "1"


def _missing(what: str, expected: Path, how: str) -> DataError:
    return DataError(
        f"{what} not found: expected {expected} ({describe_root()}). "
        f"To get it: {how}."
    )


def find_archive(name: str) -> Path | None:
    """Path of archive ``name`` in the data root, or None (no verification)."""
    if name not in ARCHIVES:
        raise ValueError(f"name={name!r} is not a known archive; allowed: {', '.join(ARCHIVES)}")
    p = data_root() / name
    return p if p.is_file() else None


def ensure_archive(name: str) -> Path:
    """Return the verified path of archive ``name``; download it only if missing and allowed."""
    arc = ARCHIVES.get(name)
    if arc is None:
        raise ValueError(f"name={name!r} is not a known archive; allowed: {', '.join(ARCHIVES)}")
    path = data_root() / name
    if not path.is_file():
        if arc.url and _download_allowed():
            _download(arc.url, path)
        else:
            how = arc.how_to_get
            if arc.url:
                how += "; POTLIB_ALLOW_DOWNLOAD=1 enables the download"
            raise _missing(name, path, how)
    verify(path, arc.sha256)
    return path


def ensure_file(rel: str) -> Path:
    """Return the verified path of an unpacked file ``rel`` (a key of INNER_FILES) in the data root."""
    if rel not in INNER_FILES:
        raise ValueError(f"rel={rel!r} is not a known file; allowed: {', '.join(INNER_FILES)}")
    sha, url = INNER_FILES[rel]
    path = data_root() / rel
    if not path.is_file():
        if url and _download_allowed():
            _download(url, path)
        else:
            how = f"unpack the archive that holds it into {data_root()}"
            if url:
                how += f", or download {url} (POTLIB_ALLOW_DOWNLOAD=1 does it)"
            raise _missing(rel, path, how)
    verify(path, sha)
    return path


def _safe_members(tf: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    root = dest.resolve()
    members = []
    for m in tf.getmembers():
        target = (dest / m.name).resolve()
        if not (m.isfile() or m.isdir()) or not str(target).startswith(str(root)):
            raise ChecksumError(f"refusing unsafe tar member {m.name!r}")
        members.append(m)
    return members


def unpack(name: str) -> Path:
    """Unpack archive ``name`` once into ``<cache>/data/<stem>-<sha12>/`` and return that folder.

    Atomic: the archive is extracted to a temporary sibling folder which is then renamed, so an
    interrupted unpack never leaves a half-filled folder that later calls would trust.
    """
    path = ensure_archive(name)
    sha = ARCHIVES[name].sha256
    stem = name.removesuffix(".tar.gz").removesuffix(".tgz")
    dest = data_cache() / f"{stem}-{sha[:12]}"
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        with tarfile.open(path, "r:*") as tf:
            tf.extractall(tmp, members=_safe_members(tf, tmp), filter="data")
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():  # lost a race to another process: theirs is as good as ours
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def locate(rel_folder: str, archive: str) -> Path:
    """Folder ``rel_folder`` in the data root if present, else unpacked from ``archive``.

    Used by the UD and Sudoku loaders: users with the canonical files put them in
    ``<data root>/<rel_folder>/``; this workplace provides the archive.
    """
    direct = data_root() / rel_folder
    if direct.is_dir():
        return data_root()
    if find_archive(archive) is None:
        files = [k for k in INNER_FILES if k.startswith(rel_folder + "/")]
        if files and all(INNER_FILES[f][1] for f in files) and _download_allowed():
            for f in files:
                ensure_file(f)
            return data_root()
        raise _missing(
            archive, data_root() / archive, f"{ARCHIVES[archive].how_to_get}; or unpack it there"
        )
    return unpack(archive)
