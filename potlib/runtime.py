"""What every run shares, below both the experiments and the runner (ARCHITECTURE: Core).

- :class:`Outcome`, what an experiment's ``run(config, device)`` returns, and :class:`Diverged`, what
  it raises when it detects divergence itself (its metrics are kept in the row).
- :func:`set_seed`, called by the runner before every run.
- :func:`run_config`: one config, its outcome classified as ``ok`` / ``diverged`` / ``failed``.
- :func:`write_row`: one row with full provenance, written atomically; used for single runs and for
  runs trained together as a group alike, so every row has the same shape.
- :func:`code_fingerprint`: a hash of an experiment's source and of every potlib module it imports,
  recorded in each row so that rows whose code has changed since show up as stale.
- :func:`tune_allocator`: keep freed memory in the process instead of returning it to the system
  (glibc's malloc), which a training step would otherwise fault back in page by page.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import functools
import hashlib
import math
import os
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from potlib import provenance
from potlib.config import Config, cfg_id
from potlib.errors import DataUnavailable
from potlib.results import ResultStore


@dataclass
class Outcome:
    """What a run returns: scalar metrics, optional arrays saved beside the row, dataset used."""

    metrics: dict[str, Any]
    artifacts: dict[str, np.ndarray] = field(default_factory=dict)
    dataset: str = "synthetic (generated from the seed)"
    dataset_sha256: str | None = None
    peak_memory_bytes: int | None = None
    peak_memory_kind: str | None = None


class Diverged(RuntimeError):
    """Raised by a run that detects divergence itself; ``metrics`` and ``artifacts`` are kept in the row."""

    def __init__(self, message: str, metrics: dict[str, Any] | None = None, artifacts=None):
        super().__init__(message)
        self.metrics = metrics or {}
        self.artifacts = artifacts or {}


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch threads and give the caller's count back after; ``None`` leaves them alone."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def non_finite(metrics: dict[str, Any]) -> list[str]:
    """Names of float metrics that are NaN or infinite."""
    return [k for k, v in metrics.items() if isinstance(v, (float, np.floating)) and not math.isfinite(float(v))]


@dataclass
class RunResult:
    status: str  # ok, diverged or failed
    error: str | None
    metrics: dict[str, Any]
    artifacts: dict[str, Any]
    outcome: Outcome | None
    wall_seconds: float
    exception: BaseException | None = None  # kept when it should stop the sweep (DataUnavailable)


def describe_error(e: BaseException) -> str:
    """What a failed row records: the exception and the last frames of its traceback."""
    return f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"


def classify(outcome: Outcome) -> tuple[str, str | None]:
    bad = non_finite(outcome.metrics)
    return ("diverged", f"non-finite metrics: {', '.join(bad)}") if bad else ("ok", None)


def run_config(run: Callable[[Config, torch.device], Outcome], config: Config, device: torch.device) -> RunResult:
    """Seed, run ``run(config, device)`` and classify what happened; never raises for a failing run."""
    set_seed(config.seed)
    start = time.perf_counter()
    outcome = None
    try:
        outcome = run(config, device)
        metrics, artifacts = dict(outcome.metrics), dict(outcome.artifacts)
        status, error = classify(outcome)
    except Diverged as e:
        status, error, metrics, artifacts = "diverged", str(e), dict(e.metrics), dict(e.artifacts)
    except Exception as e:  # noqa: BLE001 - recorded in the row, the sweep goes on (or stops: DataUnavailable)
        status, metrics, artifacts, error = "failed", {}, {}, describe_error(e)
        if isinstance(e, DataUnavailable):
            return RunResult(status, error, metrics, artifacts, outcome, time.perf_counter() - start, e)
    return RunResult(status, error, metrics, artifacts, outcome, time.perf_counter() - start)


def write_row(store: ResultStore, name: str, config: Config, profile: str, result: RunResult, device,
              fingerprint: str | None = None, **provenance_extra) -> dict:
    """Assemble one row with full provenance and write it (with its arrays) atomically."""
    o = result.outcome
    prov = provenance.collect(device)
    prov.update(seed=config.seed, wall_seconds=round(result.wall_seconds, 3), code_fingerprint=fingerprint,
                dataset=o.dataset if o else None, dataset_sha256=o.dataset_sha256 if o else None,
                peak_memory_bytes=o.peak_memory_bytes if o else None,
                peak_memory_kind=o.peak_memory_kind if o else None)
    prov.update(provenance_extra)
    row = {
        "schema": 1,
        "experiment": name,
        "profile": profile,
        "cfg_id": cfg_id(name, config),
        "config": config.to_dict(),
        "status": result.status,
        "error": result.error,
        "metrics": result.metrics,
        "provenance": prov,
    }
    store.write(row, result.artifacts)
    return row


PACKAGE_ROOT = Path(__file__).resolve().parent


def _module_file(module: str) -> Path | None:
    rel = Path(*module.split(".")[1:])
    for cand in (PACKAGE_ROOT / rel / "__init__.py", PACKAGE_ROOT / f"{rel}.py"):
        if cand.is_file():
            return cand
    return None


def _potlib_imports(path: Path) -> set[str]:
    """potlib modules imported anywhere in ``path`` (late imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("potlib")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("potlib"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}  # "from potlib.models import hrm"
    return out


@functools.lru_cache(maxsize=None)
def code_fingerprint(module: str, leave_out: frozenset[str] = frozenset()) -> str:
    """12-hex hash of ``module``'s code (docstrings and comments left out) and of every potlib module it
    imports, transitively, except the modules in ``leave_out`` (and what only they import).

    The registry and the runner (``potlib.experiments``, ``potlib.sweep``, ``potlib.cli``) and the
    rendering layer are left out: they decide how a run is scheduled or drawn, not what it computes.
    ``leave_out`` is for code that some rows do not run (see :func:`potlib.sweep.fingerprint`).
    """
    skip = {"potlib.experiments", "potlib.sweep", "potlib.executors", "potlib.cli", "potlib.render", "potlib.runtime",
            "potlib.results", "potlib.provenance", "potlib.config", *leave_out}
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        m = todo.pop()
        if m in seen or m in skip or any(m.startswith(s + ".") for s in ("potlib.claims",)):
            continue
        f = _module_file(m)
        if f is None:
            continue
        seen[m] = f
        todo += sorted(_potlib_imports(f))
    h = hashlib.sha256()
    for m in sorted(seen):
        h.update(m.encode() + b"\0" + _code_only(seen[m]).encode() + b"\0")
    return h.hexdigest()[:12]


def _code_only(path: Path) -> str:
    """The module's syntax tree without docstrings: editing prose or comments does not make rows stale."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


# glibc malloc settings (mallopt parameter numbers from malloc.h) and the values tune_allocator sets
_MALLOC_SETTINGS = {"MALLOC_TRIM_THRESHOLD_": (-1, 1 << 30), "MALLOC_TOP_PAD_": (-2, 256 << 20),
                    "MALLOC_MMAP_THRESHOLD_": (-3, 32 << 20)}


def tune_allocator() -> bool:
    """Let this process and the processes it starts keep freed memory for reuse (glibc only).

    By default glibc serves a block of 128 KiB or more (up to 32 MiB, adaptively) with its own ``mmap``
    and hands the top of the heap back once 128 KiB are free; a training step that frees and allocates
    the same large activations every time then pays a page fault per 4 KiB page, every step (in system
    time: a third of the CPU time of a stacked credit-bridge step at the ladder's sizes). Here blocks up
    to 32 MiB come from the heap, which is trimmed only above 1 GiB free and grows 256 MiB at a time.
    Measured on the 2-core machine, three runs each, alternating: stacked CB steps (6 replicas, L = 4)
    166 -> 137 ms (1.21x), system time 1.0-1.3 s -> 0.4 s a run; HRM-chapter steps (d = 64) unchanged
    within noise. Only how memory is recycled changes, so every number a run computes is the same. The
    settings go into the environment as well (``MALLOC_*_``, read at start-up), so worker processes start
    with them; values already set there are kept. ``POTLIB_TUNE_MALLOC=0`` leaves the allocator alone. Returns
    whether this process was tuned (False off Linux/glibc).
    """
    if os.environ.get("POTLIB_TUNE_MALLOC", "1") == "0":
        return False
    for name, (_, value) in _MALLOC_SETTINGS.items():
        os.environ.setdefault(name, str(value))
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): the environment variables do nothing there either
        return False
    return all(libc.mallopt(param, int(os.environ[name])) == 1 for name, (param, _) in _MALLOC_SETTINGS.items())
