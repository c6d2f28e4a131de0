"""The result store: one JSON row per config, arrays beside it, loaded into pandas with validation.

Layout: ``<root>/<experiment>/<cfg_id>.json`` and, when a run has arrays, ``<cfg_id>.npz``.
``cpu`` and ``gpu`` rows live in the repository's ``data/results`` (committed); ``smoke`` rows live in a
cache folder so that tests and smoke notebooks never touch committed data.

Writes are atomic (temporary file in the same folder, fsync, ``os.replace``): a sweep killed at any
moment leaves either the whole row or no row, so a restart neither loses nor duplicates rows.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from potlib.provenance import REPO_ROOT

SCHEMA_VERSION = 1
STATUSES = ("ok", "diverged", "failed")
# Statuses that count as done: a diverged run is a result, a failed one is retried on resume.
DONE_STATUSES = ("ok", "diverged")
REQUIRED = {
    "schema": int,
    "experiment": str,
    "profile": str,
    "cfg_id": str,
    "config": dict,
    "status": str,
    "metrics": dict,
    "provenance": dict,
}
REQUIRED_PROVENANCE = (
    "potlib_version",
    "git_commit",
    "git_dirty",
    "torch_version",
    "device",
    "dataset",
    "dataset_sha256",
    "seed",
    "wall_seconds",
    "peak_memory_bytes",
    "timestamp",
)


class CorruptRowError(ValueError):
    """A row file that cannot be read or does not match the schema; names the file."""


class MissingResultsError(FileNotFoundError):
    """Rows a render-only run needs are absent; names them and the command that makes them."""


def cache_dir() -> Path:
    return Path(os.environ.get("POTLIB_CACHE", Path.home() / ".cache" / "potlib"))


def default_root(profile: str) -> Path:
    """Where rows of ``profile`` live: committed ``data/results`` for cpu and gpu, a cache for smoke."""
    if profile in ("cpu", "gpu"):
        return Path(os.environ.get("POTLIB_RESULTS", REPO_ROOT / "data" / "results"))
    return cache_dir() / f"results-{profile}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean_floats(obj: Any) -> Any:
    """JSON has no NaN/inf: store them as strings so a diverged row stays valid JSON."""
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_floats(v) for v in obj]
    return obj


class ResultStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def row_path(self, experiment: str, cfg_id: str) -> Path:
        return self.root / experiment / f"{cfg_id}.json"

    def artifact_path(self, experiment: str, cfg_id: str) -> Path:
        return self.root / experiment / f"{cfg_id}.npz"

    # -- writing -----------------------------------------------------------------------------
    def write(self, row: dict[str, Any], artifacts: dict[str, np.ndarray] | None = None) -> Path:
        """Write arrays first, then the row: a row on disk always has its arrays."""
        exp, cid = row["experiment"], row["cfg_id"]
        if artifacts:
            import io

            buf = io.BytesIO()
            np.savez_compressed(buf, **{k: np.asarray(v) for k, v in artifacts.items()})
            atomic_write_bytes(self.artifact_path(exp, cid), buf.getvalue())
            row = {**row, "artifacts": sorted(artifacts)}
        text = json.dumps(_clean_floats(row), indent=1, sort_keys=True, default=_json_default)
        path = self.row_path(exp, cid)
        atomic_write_bytes(path, (text + "\n").encode())
        return path

    # -- reading -----------------------------------------------------------------------------
    def row_files(self, experiment: str) -> list[Path]:
        folder = self.root / experiment
        if not folder.is_dir():
            return []
        # Hidden files are in-flight temporaries of an atomic write: never rows.
        return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))

    def read(self, path: Path) -> dict[str, Any]:
        try:
            row = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CorruptRowError(f"result row {path} is corrupt or truncated: {e}") from None
        validate_row(row, path)
        return row

    def rows(self, experiment: str) -> list[dict[str, Any]]:
        return [self.read(p) for p in self.row_files(experiment)]

    def done_ids(self, experiment: str) -> set[str]:
        """cfg_ids whose row exists with a done status (a corrupt row raises, naming the file)."""
        return {r["cfg_id"] for r in self.rows(experiment) if r["status"] in DONE_STATUSES}

    def sweeps_path(self, experiment: str) -> Path:
        return self.root / experiment / "sweeps.jsonl"

    def log_sweep(self, experiment: str, record: dict[str, Any]) -> None:
        """Append one sweep's record (profile, executor, elapsed seconds, ...) as a JSON line.

        A single short ``write`` of one line in append mode: concurrent sweeps do not interleave lines.
        """
        path = self.sweeps_path(experiment)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(_clean_floats(record), sort_keys=True) + "\n")

    def sweeps(self, experiment: str) -> list[dict[str, Any]]:
        """Every logged sweep of ``experiment`` (oldest first); a torn last line is ignored."""
        path = self.sweeps_path(experiment)
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def artifacts(self, experiment: str, cfg_id: str) -> dict[str, np.ndarray]:
        path = self.artifact_path(experiment, cfg_id)
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise MissingResultsError(f"artifact file {path} is missing") from None
        except Exception as e:  # zipfile.BadZipFile, ValueError, EOFError
            raise CorruptRowError(f"artifact file {path} is corrupt or truncated: {e}") from None

    def frame(self, experiment: str, cfg_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Rows as a flat DataFrame: config fields, metrics, status and provenance as columns."""
        rows = self.rows(experiment)
        if cfg_ids is not None:
            keep = set(cfg_ids)
            rows = [r for r in rows if r["cfg_id"] in keep]
        return rows_to_frame(rows)


def validate_row(row: Any, path: Path | str = "<row>") -> None:
    if not isinstance(row, dict):
        raise CorruptRowError(f"result row {path} is not a JSON object")
    for key, typ in REQUIRED.items():
        if key not in row:
            raise CorruptRowError(f"result row {path} lacks the field {key!r}")
        if not isinstance(row[key], typ):
            raise CorruptRowError(
                f"result row {path}: field {key!r} should be {typ.__name__}, got {type(row[key]).__name__}"
            )
    if row["status"] not in STATUSES:
        raise CorruptRowError(f"result row {path}: status {row['status']!r} not in {STATUSES}")
    missing = [k for k in REQUIRED_PROVENANCE if k not in row["provenance"]]
    if missing:
        raise CorruptRowError(f"result row {path}: provenance lacks {missing}")
    if Path(str(path)).stem not in (row["cfg_id"], "<row>"):
        raise CorruptRowError(f"result row {path}: cfg_id {row['cfg_id']!r} does not match the file name")


def _restore_floats(value: Any) -> Any:
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def rows_to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    records = []
    for r in rows:
        rec: dict[str, Any] = {"cfg_id": r["cfg_id"], "experiment": r["experiment"], "profile": r["profile"], "status": r["status"]}
        rec.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in r["config"].items()})
        rec.update({k: _restore_floats(v) for k, v in r["metrics"].items() if not isinstance(v, (list, dict))})
        rec.update({f"prov_{k}": v for k, v in r["provenance"].items()})
        records.append(rec)
    return pd.DataFrame.from_records(records)


def artifacts_long(frame: pd.DataFrame, names: Iterable[str], root: Path | str, index_name: str = "i") -> pd.DataFrame:
    """Arrays of each row in ``frame`` as a long table: config columns + ``index_name`` + one column per name.

    All named arrays of a row must have the same length (e.g. per-layer profiles, per-step curves).
    """
    store = ResultStore(root)
    config_cols = [c for c in frame.columns if not c.startswith("prov_")]
    parts = []
    for rec in frame.to_dict("records"):
        arrays = store.artifacts(rec["experiment"], rec["cfg_id"])
        cols = {n: np.asarray(arrays[n]) for n in names}
        n = len(next(iter(cols.values())))
        part = pd.DataFrame({index_name: np.arange(n), **cols})
        for c in config_cols:
            part[c] = [rec[c]] * n
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
