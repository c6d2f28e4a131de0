"""Sweeps: expand a profile into configs, skip those with rows, run the rest, write one row each.

Executors (``--executor``):

- ``inline`` (default): in this process, one config after another.
- ``local``: a pool of worker processes; on a GPU machine, ``--workers`` processes share each GPU
  (small models leave an H100 mostly idle, so several per GPU is the point).
- ``slurm``: a ``submitit`` job array, one task per missing config, for users who outgrow one machine.

Each worker writes its own row atomically, so killing the sweep at any moment loses at most the
configs in flight, and a rerun picks up exactly the missing ones (resume). A run whose metrics
contain NaN or inf is recorded with ``status="diverged"``; a run that raises is recorded with
``status="failed"`` and the traceback, and the sweep goes on (failed rows are retried on resume).
"""

from __future__ import annotations

import math
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from potlib import experiments, provenance
from potlib.config import Config, cfg_id
from potlib.results import DONE_STATUSES, CorruptRowError, MissingResultsError, ResultStore, default_root, rows_to_frame

EXECUTORS = ("inline", "local", "slurm", "replicas")


class Diverged(RuntimeError):
    """Raised by a run that detects divergence itself; ``metrics`` are kept in the row."""

    def __init__(self, message: str, metrics: dict[str, Any] | None = None, artifacts=None):
        super().__init__(message)
        self.metrics = metrics or {}
        self.artifacts = artifacts or {}


def _non_finite(metrics: dict[str, Any]) -> list[str]:
    bad = []
    for k, v in metrics.items():
        if isinstance(v, (float, np.floating)) and not math.isfinite(float(v)):
            bad.append(k)
    return bad


def set_seed(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_one(name: str, config: Config, profile: str, root: Path | str) -> dict[str, Any]:
    """Run one config, write its row (whatever the outcome) and return it."""
    exp = experiments.get(name)
    store = ResultStore(root)
    device = provenance.pick_device(os.environ.get("POTLIB_DEVICE", "auto"))
    set_seed(config.seed)
    status, error, artifacts = "ok", None, {}
    outcome = None
    start = time.perf_counter()
    try:
        outcome = exp.run(config)
        metrics, artifacts = dict(outcome.metrics), dict(outcome.artifacts)
        bad = _non_finite(metrics)
        if bad:
            status, error = "diverged", f"non-finite metrics: {', '.join(bad)}"
    except Diverged as e:
        status, error, metrics, artifacts = "diverged", str(e), dict(e.metrics), dict(e.artifacts)
    except Exception as e:  # noqa: BLE001 - recorded in the row, the sweep goes on
        status, metrics = "failed", {}
        error = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=8)}"
    wall = time.perf_counter() - start
    return write_row(
        store, name, config, profile, status, error, metrics, artifacts, device, wall,
        dataset=outcome.dataset if outcome else None,
        dataset_sha256=outcome.dataset_sha256 if outcome else None,
        peak_memory_bytes=outcome.peak_memory_bytes if outcome else None,
        peak_memory_kind=outcome.peak_memory_kind if outcome else None,
    )


def write_row(store: ResultStore, name: str, config: Config, profile: str, status: str, error: str | None,
              metrics: dict[str, Any], artifacts: dict[str, Any], device, wall_seconds: float, **provenance_extra) -> dict:
    """Assemble one row with full provenance and write it (with its arrays) atomically."""
    prov = provenance.collect(device)
    prov.update(seed=config.seed, wall_seconds=round(wall_seconds, 3), **provenance_extra)
    for key in ("dataset", "dataset_sha256", "peak_memory_bytes", "peak_memory_kind"):
        prov.setdefault(key, None)
    row = {
        "schema": 1,
        "experiment": name,
        "profile": profile,
        "cfg_id": cfg_id(name, config),
        "config": config.to_dict(),
        "status": status,
        "error": error,
        "metrics": metrics,
        "provenance": prov,
    }
    store.write(row, artifacts)
    return row


def _run_from_dict(name: str, cfg_dict: dict, profile: str, root: str, device: str | None) -> dict:
    """Entry point of pool and slurm workers: configs travel as plain dicts."""
    if device:
        os.environ["POTLIB_DEVICE"] = device
    cls = experiments.get(name).config_cls
    row = run_one(name, cls.from_dict(cfg_dict), profile, root)
    return {"cfg_id": row["cfg_id"], "status": row["status"], "error": row["error"]}


@dataclass
class SweepReport:
    experiment: str
    profile: str
    expected: int
    skipped: int
    ran: int
    statuses: dict[str, int]

    @property
    def failed(self) -> int:
        return self.statuses.get("failed", 0)

    def __str__(self) -> str:
        st = ", ".join(f"{k}={v}" for k, v in sorted(self.statuses.items())) or "nothing run"
        return (
            f"{self.experiment} [{self.profile}]: {self.expected} configs, "
            f"{self.skipped} already done, ran {self.ran} ({st})"
        )


def missing_configs(name: str, profile: str, root: Path | str | None = None, force: bool = False):
    exp = experiments.get(name)
    configs = exp.configs(profile)
    store = ResultStore(root or default_root(profile))
    done = set() if force else store.done_ids(name)
    return configs, [c for c in configs if cfg_id(name, c) not in done]


def run_sweep(
    name: str,
    profile: str = "smoke",
    executor: str = "inline",
    root: Path | str | None = None,
    force: bool = False,
    workers: int | None = None,
    progress: bool = True,
    slurm: dict[str, Any] | None = None,
    shard: tuple[int, int] = (0, 1),
    allow_cpu: bool = False,
    time_budget: float | None = None,
) -> SweepReport:
    """Run every config of ``profile`` that has no done row under ``root``.

    ``shard=(k, n)`` keeps the configs whose position in the grid is k modulo n, so n independent
    processes (or machines sharing the result folder) split a grid without coordination.
    ``time_budget`` (seconds; inline and replicas executors) stops starting new runs once it is spent,
    so a time-limited machine ends cleanly and a rerun resumes where it stopped.
    """
    experiments.check_profile(profile)
    if executor not in EXECUTORS:
        raise ValueError(f"executor {executor!r} is not allowed; allowed: {', '.join(EXECUTORS)}")
    k, n_shards = shard
    if not (isinstance(k, int) and isinstance(n_shards, int) and n_shards >= 1 and 0 <= k < n_shards):
        raise ValueError(f"shard = {k}/{n_shards} is not allowed: expected K/N with 0 <= K < N")
    exp = experiments.get(name)
    if profile == "gpu" and exp.uses_gpu and not allow_cpu and executor != "slurm" and not torch.cuda.is_available():
        # gpu rows from a CPU would pass off a different budget and device as the GPU grid's.
        raise RuntimeError(
            f"gpu rows of {name!r} must come from a CUDA GPU and none is available here; "
            "run it on a GPU machine (or pass --allow-cpu with a separate --results-dir for a CPU trial)"
        )
    root = Path(root or default_root(profile))
    configs, todo = missing_configs(name, profile, root, force)
    if n_shards > 1:
        mine = {cfg_id(name, c) for i, c in enumerate(configs) if i % n_shards == k}
        configs = [c for c in configs if cfg_id(name, c) in mine]
        todo = [c for c in todo if cfg_id(name, c) in mine]
    statuses: dict[str, int] = {}
    t0 = time.perf_counter()

    def out_of_time() -> bool:
        if time_budget is not None and time.perf_counter() - t0 > time_budget:
            tqdm.write(f"{name}: time budget of {time_budget:.0f} s spent; rerun to resume")
            return True
        return False

    bar = tqdm(total=len(todo), desc=f"{name}[{profile}]", disable=not progress or not todo, unit="run")

    def done(result: dict) -> None:
        statuses[result["status"]] = statuses.get(result["status"], 0) + 1
        bar.update(1)
        bar.set_postfix(statuses)
        if result["status"] == "failed":
            tqdm.write(f"FAILED {name}/{result['cfg_id']}: {result['error'].splitlines()[0]}")

    if executor == "inline":
        for c in todo:
            if out_of_time():
                break
            done(run_one(name, c, profile, root))
    elif executor == "local":
        n_gpu = torch.cuda.device_count()
        per_device = workers or (1 if n_gpu else max(1, (os.cpu_count() or 2) // 2))
        slots = [f"cuda:{i}" for i in range(n_gpu)] or [None]
        n = min(len(todo), per_device * len(slots)) or 1
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn")) as pool:
            futs = [
                pool.submit(_run_from_dict, name, c.to_dict(), profile, str(root), slots[i % len(slots)])
                for i, c in enumerate(todo)
            ]
            for f in as_completed(futs):
                done(f.result())
    elif executor == "replicas":
        # Same-shaped configs (seeds, BP/DFA) train together as stacked replicas (potlib.credit.replicas);
        # the rest, and experiments without replica support, run one at a time in this process.
        groups, rest = [], todo
        if exp.replicas:
            from potlib.credit.replicas import replica_groups, run_group

            groups, rest = replica_groups(todo, max_replicas=workers or 64)
        for group in groups:
            if out_of_time():
                break
            for row in run_group(name, group, profile, root):
                done(row)
        for c in rest:
            if out_of_time():
                break
            done(run_one(name, c, profile, root))
    else:
        done_results = _run_slurm(name, todo, profile, root, slurm or {})
        for r in done_results:
            done(r)
    bar.close()
    return SweepReport(name, profile, len(configs), len(configs) - len(todo), sum(statuses.values()), statuses)


def _run_slurm(name: str, todo: list[Config], profile: str, root: Path, opts: dict[str, Any]) -> list[dict]:
    """Submit one job-array task per config through submitit and wait for them."""
    import submitit

    if not todo:
        return []
    folder = Path(opts.get("folder") or root / ".submitit")
    ex = submitit.AutoExecutor(folder=str(folder), cluster=opts.get("cluster"))
    ex.update_parameters(
        timeout_min=int(opts.get("timeout_min", 60)),
        slurm_array_parallelism=int(opts.get("array_parallelism", 64)),
        gpus_per_node=int(opts.get("gpus", 1)),
        cpus_per_task=int(opts.get("cpus", 4)),
        name=f"potlib-{name}",
    )
    if opts.get("partition"):
        ex.update_parameters(slurm_partition=opts["partition"])
    n = len(todo)
    jobs = ex.map_array(_run_from_dict, [name] * n, [c.to_dict() for c in todo], [profile] * n, [str(root)] * n, [None] * n)
    return [j.result() for j in jobs]


def ensure_rows(name: str, profile: str, recompute: bool = False, root: Path | str | None = None):
    """Rows of ``profile`` as a DataFrame for a notebook.

    ``smoke`` (or ``recompute=True``) runs whatever is missing first; ``cpu``/``gpu`` without recompute
    renders committed rows only and raises :class:`MissingResultsError` naming the missing configs
    and the command that produces them.
    """
    experiments.check_profile(profile)
    if not isinstance(recompute, bool):
        raise TypeError(f"recompute = {recompute!r} is not allowed: expected True or False")
    root = Path(root or default_root(profile))
    exp = experiments.get(name)
    if recompute or profile == "smoke":
        run_sweep(name, profile, root=root, progress=False)
    ids = [cfg_id(name, c) for c in exp.configs(profile)]
    rows = {r["cfg_id"]: r for r in ResultStore(root).rows(name)}  # read once, used for all checks below
    missing = [i for i in ids if rows.get(i, {}).get("status") not in DONE_STATUSES]
    if missing:
        failed = [rows[i] for i in missing if i in rows]  # present but not done: status "failed"
        if failed:
            first = (failed[0].get("error") or "").splitlines()[0]
            raise RuntimeError(f"{len(failed)} {profile!r} runs of {name!r} failed; the first: {first}")
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        where = "on a CUDA GPU " if exp.uses_gpu and profile == "gpu" else ""
        raise MissingResultsError(
            f"{len(missing)} of {len(ids)} {profile!r} rows of {name!r} are missing under {root / name} "
            f"({shown}). Produce them {where}with: python -m potlib run {name} --profile {profile}"
        )
    return rows_to_frame([rows[i] for i in ids])


def status_frame(profiles=experiments.PROFILES, root: Path | str | None = None):
    """Rows present vs expected per experiment and profile, with wall time and devices."""
    import pandas as pd

    records = []
    for name in experiments.names():
        exp = experiments.get(name)
        for profile in profiles:
            if profile not in exp.profiles:
                continue
            store = ResultStore(root or default_root(profile))
            expected = {cfg_id(name, c) for c in exp.configs(profile)}
            rec = {"experiment": name, "profile": profile, "expected": len(expected), "done": 0, "diverged": 0,
                   "failed": 0, "wall_h": 0.0, "devices": "", "corrupt": "", "needs_gpu": exp.uses_gpu}
            try:
                rows = [r for r in store.rows(name) if r["cfg_id"] in expected]
            except CorruptRowError as e:
                rec["corrupt"] = str(e)
                records.append(rec)
                continue
            rec["done"] = sum(r["status"] in DONE_STATUSES for r in rows)
            rec["diverged"] = sum(r["status"] == "diverged" for r in rows)
            rec["failed"] = sum(r["status"] == "failed" for r in rows)
            rec["wall_h"] = round(sum(float(r["provenance"].get("wall_seconds") or 0) for r in rows) / 3600, 4)
            rec["devices"] = "; ".join(sorted({r["provenance"].get("device", "?") for r in rows}))
            records.append(rec)
    return pd.DataFrame.from_records(records)
