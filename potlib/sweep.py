"""Sweeps: expand a profile into configs, skip those with rows, run the rest, write one row each.

Executors (``--executor``):

- ``inline``: in this process, one config after another.
- ``local``: a pool of worker processes. On a CPU each worker gets an equal share of the cores as
  torch threads (one each by default on a 2-core machine: two 1-thread workers ran 1.85x one worker,
  while 2 threads in one process under load ran 2-4x slower than 1). On a GPU machine ``--workers``
  processes share each GPU (small models leave an H100 mostly idle).
- ``replicas``: experiments that declare the capability (``Experiment.group_configs``/``run_group``)
  train same-shaped configs together; the rest run inline.
- ``slurm``: a ``submitit`` job array, one task per missing config.
- ``auto`` (default): ``inline`` for the smoke profile, ``local`` otherwise.

Every executor honours ``time_budget``: no new run starts once it is spent (slurm: unfinished jobs
are cancelled), so a time-limited machine ends cleanly and a rerun resumes where it stopped. Each
run writes its own row atomically, so killing a sweep loses at most the runs in flight. A run whose
metrics contain NaN or inf is recorded as ``diverged``; a run that raises as ``failed`` with its
traceback (retried on resume); a data error stops the sweep at the first config instead of
repeating itself once per config.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from potlib import experiments, runtime
from potlib.config import Config, cfg_id
from potlib.results import DONE_STATUSES, CorruptRowError, MissingResultsError, ResultStore, default_root, rows_to_frame

EXECUTORS = ("auto", "inline", "local", "replicas", "slurm")


def resolve_device(exp: experiments.Experiment) -> torch.device:
    """The device a run of ``exp`` uses, chosen once: ``POTLIB_DEVICE`` if set, else CUDA when the
    experiment uses a GPU and one is present, else the CPU (CPU-only experiments never claim a GPU)."""
    requested = os.environ.get("POTLIB_DEVICE", "auto")
    if requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if exp.uses_gpu and torch.cuda.is_available() else "cpu")


def check_gpu_rows(name: str, profile: str, device: torch.device, allow_cpu: bool = False) -> None:
    """Refuse to write ``gpu`` rows of a GPU experiment from a CPU: they would pass off another budget and device
    as the GPU grid's (RuntimeError naming the way out)."""
    if profile == "gpu" and experiments.get(name).uses_gpu and not allow_cpu and torch.device(device).type != "cuda":
        raise RuntimeError(
            f"gpu rows of {name!r} must come from a CUDA GPU and none is available here; "
            "run it on a GPU machine (or pass --allow-cpu with a separate --results-dir for a CPU trial)"
        )


def cpu_threads(concurrent_runs: int) -> int:
    """Torch threads per run when ``concurrent_runs`` share this CPU (``POTLIB_THREADS`` overrides)."""
    if os.environ.get("POTLIB_THREADS"):
        return max(1, int(os.environ["POTLIB_THREADS"]))
    return max(1, (os.cpu_count() or 1) // max(1, concurrent_runs))


def grouped_only_modules() -> frozenset[str]:
    """The modules that train same-shaped configs together (each experiment's ``run_group``): a run trained alone
    never executes them, and the tests hold grouped training equal to one-at-a-time training."""
    mods = set()
    for n in experiments.names():
        group = experiments.get(n).run_group
        if group is not None:
            mods.add(getattr(group, "func", group).__module__)  # run_group may be a functools.partial
    return frozenset(mods)


def fingerprint(exp: experiments.Experiment, grouped: bool = False) -> str:
    """Hash of the code that computes a row of ``exp`` (:func:`potlib.runtime.code_fingerprint`).

    A run trained alone (``grouped=False``) is hashed without the grouped-training modules, so that work on
    replica training leaves rows made one at a time fresh; rows made by ``run_group`` (``grouped=True``, their
    provenance has ``replica_group``) include it.
    """
    return runtime.code_fingerprint(exp.run.__module__, frozenset() if grouped else grouped_only_modules())


def is_stale(exp: experiments.Experiment, row: dict) -> bool:
    """Whether ``row`` was made by code that has changed since (rows from before fingerprints count as fresh)."""
    stored = row["provenance"].get("code_fingerprint")
    return stored is not None and stored != fingerprint(exp, grouped="replica_group" in row["provenance"])


def run_one(name: str, config: Config, profile: str, root: Path | str, device: torch.device | None = None) -> dict:
    """Run one config on ``device`` (default: :func:`resolve_device`), write its row and return it."""
    exp = experiments.get(name)
    device = device if device is not None else resolve_device(exp)
    result = runtime.run_config(exp.run, config, device)
    row = runtime.write_row(ResultStore(root), name, config, profile, result, device, fingerprint(exp))
    if result.exception is not None:  # missing or corrupt data: every other config would fail alike
        raise result.exception
    return row


def _init_worker(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def _run_from_dict(name: str, cfg_dict: dict, profile: str, root: str, device: str | None) -> dict:
    """Entry point of slurm jobs: configs travel as plain dicts."""
    exp = experiments.get(name)
    row = run_one(name, exp.config_cls.from_dict(cfg_dict), profile, root,
                  torch.device(device) if device else None)
    return {"cfg_id": row["cfg_id"], "status": row["status"], "error": row["error"]}


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


class Budget:
    """Wall-clock budget of a sweep; ``None`` means unlimited."""

    def __init__(self, seconds: float | None):
        self.seconds, self.start, self.hit = seconds, time.perf_counter(), False

    def spent(self) -> bool:
        if self.seconds is not None and time.perf_counter() - self.start > self.seconds:
            self.hit = True
        return self.hit

    def left(self) -> float | None:
        return None if self.seconds is None else max(0.0, self.seconds - (time.perf_counter() - self.start))


def missing_configs(name: str, profile: str, root: Path | str | None = None, force: bool = False,
                    stale: bool = False):
    """(all configs of the profile, those to run): no done row, or (``stale``) a row whose code changed."""
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


Done = Callable[[dict], None]


def _inline(name, todo, profile, root, device, budget: Budget, done: Done, **_) -> None:
    for c in todo:
        if budget.spent():
            return
        done(run_one(name, c, profile, root, device))


def _run_job(name: str, cfg_dicts: list[dict], profile: str, root: str, device: str, grouped: bool) -> list[dict]:
    """Entry point of pool workers: one config, or (``grouped``) one replica group trained together; row summaries."""
    exp = experiments.get(name)
    configs = [exp.config_cls.from_dict(d) for d in cfg_dicts]
    if grouped:
        rows = run_group(exp, name, configs, profile, ResultStore(root), torch.device(device))
    else:
        rows = [run_one(name, configs[0], profile, root, torch.device(device))]
    return [{"cfg_id": r["cfg_id"], "status": r["status"], "error": r["error"]} for r in rows]


def _pool(jobs: list[tuple], n: int, threads: int | None, budget: Budget, done: Done) -> None:
    """Run ``jobs`` (argument tuples of :func:`_run_job`) in ``n`` spawned processes of ``threads`` torch threads;
    a job starts only while the budget lasts."""
    queue = list(jobs)
    pool = ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                               initargs=(threads,))
    try:
        running = set()
        while queue or running:
            while queue and len(running) < n and not budget.spent():  # submit lazily: the budget is checked per job
                running.add(pool.submit(_run_job, *queue.pop(0)))
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                for summary in f.result():
                    done(summary)
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM): stop the runs in flight now rather than wait for them (they have written
        # no row; a rerun starts them again) and start no other
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _slots(device: torch.device, workers: int | None, jobs: int) -> tuple[list[str], int, int | None]:
    """(devices to cycle through, processes, torch threads per process): ``workers`` per GPU, or on a CPU in all
    (default: one per core, each with one thread, the fastest arrangement measured on the 2-core machine)."""
    n_gpu = torch.cuda.device_count() if device.type == "cuda" else 0
    slots = [f"cuda:{i}" for i in range(n_gpu)] or [str(device)]
    per_slot = workers or (1 if n_gpu else (os.cpu_count() or 1))
    n = max(1, min(jobs, per_slot * len(slots)))
    return slots, n, None if n_gpu else cpu_threads(n)


def _local(name, todo, profile, root, device, budget: Budget, done: Done, workers: int | None = None, **_) -> None:
    slots, n, threads = _slots(device, workers, len(todo))
    jobs = [(name, [c.to_dict()], profile, str(root), slots[i % len(slots)], False) for i, c in enumerate(todo)]
    _pool(jobs, n, threads, budget, done)


def _replicas(name, todo, profile, root, device, budget: Budget, done: Done, workers: int | None = None,
              group_size: int | None = None, **_) -> None:
    """Same-shaped configs trained together (the experiment's ``group_configs``, at most ``group_size`` each), the
    groups and the configs that train alone spread over ``workers`` processes as the local executor spreads runs
    (one process: all in this one)."""
    exp = experiments.get(name)
    groups, rest = ([], todo) if exp.group_configs is None else exp.group_configs(todo, group_size or 64)
    slots, n, threads = _slots(device, workers, len(groups) + len(rest))
    if n == 1:
        store = ResultStore(root)
        for group in groups:
            if budget.spent():
                return
            for row in run_group(exp, name, group, profile, store, device):
                done(row)
        _inline(name, rest, profile, root, device, budget, done)
        return
    units = [(g, True) for g in groups] + [([c], False) for c in rest]
    jobs = [(name, [c.to_dict() for c in unit], profile, str(root), slots[i % len(slots)], grouped)
            for i, (unit, grouped) in enumerate(units)]
    _pool(jobs, n, threads, budget, done)


def run_group(exp: experiments.Experiment, name: str, group: list[Config], profile: str, store: ResultStore,
              device: torch.device) -> list[dict]:
    """Train ``group`` together and write one row per config with the same writer as single runs.

    Each row's ``wall_seconds`` is the group's wall time divided by its size and its provenance
    carries ``replica_group``; a failure marks every row of the group failed.
    """
    for c in group:
        runtime.set_seed(c.seed)
    start = time.perf_counter()
    try:
        outcomes, error = exp.run_group(group, device), None
    except Exception as e:  # noqa: BLE001 - recorded in every row of the group
        outcomes, error = None, runtime.describe_error(e)
    wall = (time.perf_counter() - start) / len(group)
    rows = []
    for i, c in enumerate(group):
        if outcomes is None:
            result = runtime.RunResult("failed", error, {}, {}, None, wall)
        else:
            o = outcomes[i]
            status, err = runtime.classify(o)
            result = runtime.RunResult(status, err, dict(o.metrics), dict(o.artifacts), o, wall)
        rows.append(runtime.write_row(store, name, c, profile, result, device, fingerprint(exp, grouped=True),
                                      replica_group=len(group)))
    return rows


def _slurm(name, todo, profile, root, device, budget: Budget, done: Done, slurm: dict | None = None, **_) -> None:
    """One job-array task per config through submitit; jobs unfinished when the budget is spent are cancelled."""
    import submitit

    opts = slurm or {}
    folder = Path(opts.get("folder") or Path(root) / ".submitit")
    ex = submitit.AutoExecutor(folder=str(folder), cluster=opts.get("cluster"))
    timeout = int(opts.get("timeout_min", 60))
    if budget.left() is not None:
        timeout = max(1, min(timeout, int(budget.left() // 60) or 1))
    ex.update_parameters(timeout_min=timeout, slurm_array_parallelism=int(opts.get("array_parallelism", 64)),
                         gpus_per_node=int(opts.get("gpus", 1)), cpus_per_task=int(opts.get("cpus", 4)),
                         name=f"potlib-{name}")
    if opts.get("partition"):
        ex.update_parameters(slurm_partition=opts["partition"])
    n = len(todo)
    jobs = ex.map_array(_run_from_dict, [name] * n, [c.to_dict() for c in todo], [profile] * n, [str(root)] * n,
                        [None] * n)
    pending = list(jobs)
    while pending:
        still = []
        for i, job in enumerate(pending):
            if budget.spent():  # checked per job: submitit's debug cluster runs a job inside done()
                for rest in still + pending[i:]:
                    rest.cancel(check=False)
                return
            if job.done():
                done(job.result())
            else:
                still.append(job)
        pending = still
        if pending:
            time.sleep(float(opts.get("poll_seconds", 2.0)))


RUNNERS = {"inline": _inline, "local": _local, "replicas": _replicas, "slurm": _slurm}


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
    device = resolve_device(exp)
    if executor != "slurm":  # a slurm job picks its device on the cluster
        check_gpu_rows(name, profile, device, allow_cpu)
    if executor == "auto":
        executor = "inline" if profile == "smoke" else "local"
    root = Path(root or default_root(profile))
    configs, todo = missing_configs(name, profile, root, force, stale)
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
                "interrupted": interrupted, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
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
    missing = [i for i in ids if rows.get(i, {}).get("status") not in DONE_STATUSES]
    expected = len(ids)
    if missing and partial:
        gone = set(missing)
        ids = [i for i in ids if i not in gone]
    elif missing:
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


def status_frame(profiles=experiments.PROFILES, root: Path | str | None = None):
    """Rows present vs expected per experiment and profile: wall time, devices, stale rows."""
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
                   "failed": 0, "stale": 0, "wall_h": 0.0, "sweep_h": 0.0, "devices": "", "corrupt": "",
                   "needs_gpu": exp.uses_gpu}
            try:
                rows = [r for r in store.rows(name) if r["cfg_id"] in expected]
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
            # elapsed wall time of the logged sweeps (runs in parallel count once); older rows have no log
            rec["sweep_h"] = round(sum(float(w.get("elapsed_seconds") or 0) for w in store.sweeps(name)
                                       if w.get("profile") == profile) / 3600, 4)
            records.append(rec)
    return pd.DataFrame.from_records(records)
