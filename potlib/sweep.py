"""Sweeps: expand a profile into configs, skip those with rows, run the rest, write one row each.

How the configs run is an executor's business (:mod:`potlib.executors`: ``inline``, ``local``, ``replicas``,
``slurm``; ``auto``, the default: ``inline`` for the smoke profile, ``replicas`` for experiments that train
same-shaped configs together, ``local`` otherwise). Every executor
honours ``time_budget``: no new run starts once it is spent, so a time-limited machine ends cleanly and a
rerun resumes where it stopped. Each run writes its own row atomically, so killing a sweep loses at most the
runs in flight, and an interrupted sweep still logs the elapsed time of what it finished. A run whose
metrics contain NaN or inf is recorded as ``diverged``; a run that raises as ``failed`` with its traceback
(retried on resume); a data error stops the sweep at the first config instead of repeating itself once per
config. This module also reads rows back for the notebooks (:func:`ensure_rows`) and for ``potlib status``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from potlib import experiments
from potlib.config import Config, cfg_id
from potlib.executors import (  # noqa: F401  (re-exported: the sweep's public names, as before the split)
    EXECUTORS,
    RUNNERS,
    Budget,
    check_gpu_rows,
    cpu_threads,
    default_executor,
    fingerprint,
    grouped_only_modules,
    is_stale,
    resolve_device,
    run_group,
    run_one,
)
from potlib.results import DONE_STATUSES, CorruptRowError, MissingResultsError, ResultStore, default_root, rows_to_frame


@dataclass
class SweepReport:
    experiment: str
    profile: str
    expected: int
    skipped: int
    ran: int
    statuses: dict[str, int]
    seconds: float = 0.0
    stopped_by_budget: bool = False

    @property
    def failed(self) -> int:
        return self.statuses.get("failed", 0)

    def __str__(self) -> str:
        st = ", ".join(f"{k}={v}" for k, v in sorted(self.statuses.items())) or "nothing run"
        tail = "; time budget spent, rerun to resume" if self.stopped_by_budget else ""
        return (f"{self.experiment} [{self.profile}]: {self.expected} configs, {self.skipped} already done, "
                f"ran {self.ran} ({st}) in {self.seconds:.0f} s{tail}")


def counts_for(exp: experiments.Experiment, profile: str, row: dict, allow_cpu: bool = False) -> bool:
    """Whether ``row`` counts as a row of ``profile``: a GPU experiment's ``gpu`` rows must come from a CUDA GPU.

    Rows are keyed by config, so where a ``gpu`` grid shares configs with the ``cpu`` grid (credit_memo_budget's
    are the same grid) the CPU rows would otherwise be counted, and shown, as the GPU grid's.
    """
    if profile != "gpu" or not exp.uses_gpu or allow_cpu:
        return True
    prov = row.get("provenance") or {}
    return prov.get("device_type", "cpu" if str(prov.get("device", "cpu")).startswith("cpu") else "cuda") == "cuda"


def missing_configs(name: str, profile: str, root: Path | str | None = None, force: bool = False,
                    stale: bool = False, allow_cpu: bool = False):
    """(all configs of the profile, those to run): no done row, or (``stale``) a row whose code changed.

    Raises RuntimeError when a ``gpu`` config to run already has a CPU row of another profile under ``root``:
    rows are one file per config, so the GPU row would overwrite it (use a separate results folder).
    """
    exp = experiments.get(name)
    configs = exp.configs(profile)
    store = ResultStore(root or default_root(profile))
    if force:
        return configs, list(configs)
    rows = {r["cfg_id"]: r for r in store.rows(name)}

    def needed(c: Config) -> bool:
        r = rows.get(cfg_id(name, c))
        if r is None or r["status"] not in DONE_STATUSES:
            return True
        if not counts_for(exp, profile, r, allow_cpu):
            raise RuntimeError(
                f"{name}: the gpu config {cfg_id(name, c)} already has a CPU row under {Path(store.root) / name} "
                "(the cpu grid shares it); a GPU run would overwrite that row. Run the gpu profile with a "
                "separate --results-dir")
        return stale and is_stale(exp, r)

    return configs, [c for c in configs if needed(c)]


def select(configs: list, where: dict[str, Any] | None) -> list:
    """The configs whose fields match ``where``: {field: value or list of values}; a value given as text
    ("0.5", "true") is read with the type of the field's values in the grid.

    Raises ValueError naming the field and what the grid holds when a field is unknown or a filter
    keeps no config (a typo must not run nothing silently).
    """
    if not where:
        return configs
    out = list(configs)
    for key, wanted in where.items():
        if configs and not hasattr(configs[0], key):
            fields = ", ".join(sorted(f.name for f in dataclasses.fields(configs[0])))
            raise ValueError(f"where: {key!r} is not a config field; fields: {fields}")
        present = sorted({getattr(c, key) for c in configs}, key=str)
        kind = type(present[0]) if present else str
        allowed = {_read(v, kind, key) for v in (wanted if isinstance(wanted, (list, tuple, set)) else [wanted])}
        out = [c for c in out if getattr(c, key) in allowed]
        if not out:
            raise ValueError(f"where: {key} = {sorted(allowed, key=str)} keeps no config; the grid has {key} in "
                             f"{present}")
    return out


def _read(value: Any, kind: type, key: str) -> Any:
    if not isinstance(value, str) or kind is str:
        return value
    if kind is bool:
        if value.lower() not in ("true", "false"):
            raise ValueError(f"where: {key} = {value!r} is not allowed; allowed: true or false")
        return value.lower() == "true"
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"where: {key} = {value!r} is not a {kind.__name__}") from None


def run_sweep(
    name: str,
    profile: str = "smoke",
    executor: str = "auto",
    root: Path | str | None = None,
    force: bool = False,
    workers: int | None = None,
    group_size: int | None = None,
    progress: bool = True,
    slurm: dict[str, Any] | None = None,
    shard: tuple[int, int] = (0, 1),
    allow_cpu: bool = False,
    time_budget: float | None = None,
    stale: bool = False,
    where: dict[str, Any] | None = None,
) -> SweepReport:
    """Run every config of ``profile`` that has no done row under ``root`` (``stale``: or whose code changed).

    ``shard=(k, n)`` keeps the configs whose position in the grid is k modulo n, so n independent
    processes (or machines sharing the result folder) split a grid without coordination.
    ``time_budget`` (seconds, every executor): no new run starts once it is spent.
    ``where`` ({field: values}, :func:`select`): only the configs of the grid that match, e.g. to
    run the parts of a grid that decide a claim first; the rows are those of the whole grid.
    """
    experiments.check_profile(profile)
    if executor not in EXECUTORS:
        raise ValueError(f"executor = {executor!r} is not allowed; allowed: {', '.join(EXECUTORS)}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers = {workers!r} is not allowed; allowed: an int >= 1")
    if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
        raise ValueError(f"group_size = {group_size!r} is not allowed; allowed: an int >= 1")
    if time_budget is not None and not time_budget > 0:
        raise ValueError(f"time_budget = {time_budget!r} is not allowed; allowed: seconds > 0")
    k, n_shards = shard
    if not (isinstance(k, int) and isinstance(n_shards, int) and n_shards >= 1 and 0 <= k < n_shards):
        raise ValueError(f"shard = {k}/{n_shards} is not allowed: expected K/N with 0 <= K < N")
    exp = experiments.get(name)
    if exp.runs_alone:  # a timing: a second run beside it would take the cores it measures
        if workers not in (None, 1):
            raise ValueError(f"workers = {workers!r} is not allowed for {name!r}: its runs time the machine, one "
                             "at a time; allowed: 1 (the default for it)")
        workers = 1
    device = resolve_device(exp)
    if executor != "slurm":  # a slurm job picks its device on the cluster
        check_gpu_rows(name, profile, device, allow_cpu)
    if executor == "auto":
        executor = default_executor(exp, profile)
    root = Path(root or default_root(profile))
    configs, todo = missing_configs(name, profile, root, force, stale, allow_cpu)
    if where:
        configs = select(configs, where)
        kept = set(configs)  # configs are frozen dataclasses: hashable
        todo = [c for c in todo if c in kept]
    if n_shards > 1:
        mine = {cfg_id(name, c) for i, c in enumerate(configs) if i % n_shards == k}
        configs = [c for c in configs if cfg_id(name, c) in mine]
        todo = [c for c in todo if cfg_id(name, c) in mine]
    statuses: dict[str, int] = {}
    budget = Budget(time_budget)
    bar = tqdm(total=len(todo), desc=f"{name}[{profile}]", disable=not progress or not todo, unit="run")

    def done(result: dict) -> None:
        statuses[result["status"]] = statuses.get(result["status"], 0) + 1
        bar.update(1)
        bar.set_postfix(statuses)
        if result["status"] == "failed":
            tqdm.write(f"FAILED {name}/{result['cfg_id']}: {(result['error'] or '').splitlines()[0]}")

    interrupted = True
    try:
        if todo:
            RUNNERS[executor](name, todo, profile, root, device, budget, done, workers=workers, slurm=slurm,
                              group_size=group_size)
        interrupted = False
    finally:
        bar.close()
        if statuses:  # the grid's elapsed time, which potlib status adds up (issue 14); an interrupted sweep
            # (Ctrl-C, or SIGTERM through the command line) logs the time its written rows took too
            ResultStore(root).log_sweep(name, {
                "profile": profile, "executor": executor, "workers": workers, "group_size": group_size,
                "device": str(device),
                "cpu_count": os.cpu_count(), "shard": f"{k}/{n_shards}", "where": where or None,
                "ran": sum(statuses.values()), "statuses": statuses,
                "elapsed_seconds": round(time.perf_counter() - budget.start, 1), "budget_hit": budget.hit,
                "interrupted": interrupted,
                "finished": datetime.now(timezone.utc).isoformat(timespec="milliseconds")})
    if budget.hit:
        tqdm.write(f"{name}: time budget of {time_budget:.0f} s spent; rerun to resume")
    return SweepReport(name, profile, len(configs), len(configs) - len(todo), sum(statuses.values()), statuses,
                       time.perf_counter() - budget.start, budget.hit)


def ensure_rows(name: str, profile: str, recompute: bool = False, root: Path | str | None = None,
                partial: bool = False):
    """Rows of ``profile`` as a DataFrame for a notebook.

    ``smoke`` (or ``recompute=True``) runs whatever is missing first; ``cpu``/``gpu`` without recompute
    renders committed rows only and raises :class:`MissingResultsError` naming the missing configs
    and the command that produces them, unless ``partial``: then the done rows that exist are returned
    (possibly none) and ``frame.attrs["expected"]`` says how many the grid has, for a page that shows
    an unfinished grid as such.
    """
    experiments.check_profile(profile)
    if not isinstance(recompute, bool):
        raise TypeError(f"recompute = {recompute!r} is not allowed: expected True or False")
    root = Path(root or default_root(profile))
    exp = experiments.get(name)
    if recompute or profile == "smoke":
        run_sweep(name, profile, executor="inline", root=root, progress=False)
    ids = [cfg_id(name, c) for c in exp.configs(profile)]
    rows = {r["cfg_id"]: r for r in ResultStore(root).rows(name)}  # read once, used for all checks below
    missing = [i for i in ids if rows.get(i, {}).get("status") not in DONE_STATUSES
               or not counts_for(exp, profile, rows[i])]
    expected = len(ids)
    if missing and partial:
        gone = set(missing)
        ids = [i for i in ids if i not in gone]
    elif missing:
        failed = [rows[i] for i in missing if rows.get(i, {}).get("status") == "failed"]
        if failed:
            first = (failed[0].get("error") or "").splitlines()[0]
            raise RuntimeError(f"{len(failed)} {profile!r} runs of {name!r} failed; the first: {first}")
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        where = "on a CUDA GPU " if exp.uses_gpu and profile == "gpu" else ""
        raise MissingResultsError(
            f"{len(missing)} of {len(ids)} {profile!r} rows of {name!r} are missing under {root / name} "
            f"({shown}). Produce them {where}with: python -m potlib run {name} --profile {profile}"
        )
    frame = rows_to_frame([rows[i] for i in ids])
    if frame.empty:  # partial and nothing run yet: the columns a page selects on, no rows
        import pandas as pd

        frame = pd.DataFrame(columns=["cfg_id", "experiment", "profile", "status",
                                      *(f.name for f in dataclasses.fields(exp.config_cls))])
    frame["stale"] = [is_stale(exp, rows[i]) for i in ids]
    frame.attrs["expected"] = expected
    return frame


def grid_frame(name: str, profile: str):
    """The configs of ``profile`` as a DataFrame, one row each: what a verdict on a part of the grid checks
    its rows against (``potlib.claims.core.covered``)."""
    import pandas as pd

    return pd.DataFrame([c.to_dict() for c in experiments.get(name).configs(profile)])


def _span(log: dict[str, Any]) -> tuple[float, float] | None:
    """(start, end) of a logged sweep in POSIX seconds, or None without a readable ``finished`` time."""
    try:
        end = datetime.fromisoformat(log["finished"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None
    return end - float(log.get("elapsed_seconds") or 0), end


def made_by(rows: list[dict[str, Any]], logs: list[dict[str, Any]], slack_s: float = 0.2) -> list[int | None]:
    """For each row, the index in ``logs`` of the logged sweep that made it, or None: a row made before sweeps were
    logged, or by a sweep whose log is missing. A row's provenance ``timestamp`` is cut to whole seconds, so the
    row belongs to a sweep whose span (widened by ``slack_s`` for the rounding of its elapsed time) meets that
    second; of several such sweeps (sweeps less than a second apart), the last."""
    spans = [_span(w) for w in logs]
    out = []
    for r in rows:
        try:
            t = datetime.fromisoformat(r["provenance"]["timestamp"]).timestamp()
        except (KeyError, TypeError, ValueError):
            out.append(None)
            continue
        hits = [i for i, sp in enumerate(spans) if sp is not None and sp[0] - slack_s < t + 1 and t <= sp[1] + slack_s]
        out.append(hits[-1] if hits else None)
    return out


def sweep_hours(logs: list[dict[str, Any]]) -> float:
    """Wall time, in hours, that the logged sweeps (``ResultStore.sweeps`` records) cover: each spans its
    ``elapsed_seconds`` up to ``finished``, and sweeps that overlap (shards, several sweeps side by side) count once.
    A record without a readable ``finished`` time adds its elapsed time as it is."""
    spans, loose = [], 0.0
    for log in logs:
        span = _span(log)
        if span is None:
            loose += float(log.get("elapsed_seconds") or 0)
        else:
            spans.append(span)
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        covered += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return (covered + loose) / 3600


def status_frame(profiles=experiments.PROFILES, root: Path | str | None = None):
    """Rows present vs expected per experiment and profile: wall time, devices, stale rows.

    Columns: ``expected`` (configs in the grid), ``done`` / ``diverged`` / ``failed`` / ``stale`` (rows),
    ``wall_h`` (sum of the rows' own wall seconds, hours), ``swept`` (rows made by a logged sweep, :func:`made_by`),
    ``sweep_h`` (elapsed hours of those sweeps, overlaps once), ``whole`` (``swept == done == expected``: the grid
    was made whole by logged sweeps, and ``sweep_h`` is the time to regenerate it), ``devices``, ``corrupt`` (the error of an unreadable row), ``needs_gpu``."""
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
                   "failed": 0, "stale": 0, "wall_h": 0.0, "swept": 0, "sweep_h": 0.0, "whole": False, "devices": "", "corrupt": "",
                   "needs_gpu": exp.uses_gpu}
            try:
                rows = [r for r in store.rows(name) if r["cfg_id"] in expected and counts_for(exp, profile, r)]
            except CorruptRowError as e:
                rec["corrupt"] = str(e)
                records.append(rec)
                continue
            rec["done"] = sum(r["status"] in DONE_STATUSES for r in rows)
            rec["diverged"] = sum(r["status"] == "diverged" for r in rows)
            rec["failed"] = sum(r["status"] == "failed" for r in rows)
            rec["stale"] = sum(is_stale(exp, r) for r in rows)
            rec["wall_h"] = round(sum(float(r["provenance"].get("wall_seconds") or 0) for r in rows) / 3600, 4)
            rec["devices"] = "; ".join(sorted({r["provenance"].get("device", "?") for r in rows}))
            # elapsed wall time of the logged sweeps that made the rows there now (not of sweeps whose rows were
            # replaced since); ``swept`` counts those rows: fewer than ``done`` when older rows have no log
            logs = [w for w in store.sweeps(name) if w.get("profile") == profile]
            makers = made_by(rows, logs)
            rec["swept"] = sum(m is not None for m in makers)
            rec["sweep_h"] = round(sweep_hours([logs[i] for i in sorted({m for m in makers if m is not None})]), 4)
            rec["whole"] = rec["swept"] == rec["done"] == rec["expected"]
            records.append(rec)
    return pd.DataFrame.from_records(records)
