"""Executors: how a sweep's configs are run on this machine, and the code fingerprint each row records.

The Runner layer's executors (ARCHITECTURE: "cli.py, sweep.py, executors, bench"); :mod:`potlib.sweep` plans a
sweep and calls one of them. Executors (``--executor``):

- ``inline``: in this process, one config after another.
- ``local``: a pool of worker processes. On a CPU each worker gets an equal share of the cores as
  torch threads (one each by default on a 2-core machine: two 1-thread workers ran 1.85x one worker,
  while 2 threads in one process under load ran 2-4x slower than 1). On a GPU machine ``--workers``
  processes share each GPU (small models leave an H100 mostly idle).
- ``replicas``: experiments that declare the capability (``Experiment.group_configs``/``run_group``)
  train same-shaped configs together (at most 12 per group on a CPU, 64 on a GPU); groups and the configs
  that train alone are spread over worker processes as ``local`` spreads runs (one process: all in this one).
- ``auto`` (the default, :func:`default_executor`): ``inline`` for smoke, ``replicas`` where the experiment can
  group configs and grouping pays (on a GPU always; on a CPU where the grid's groups are large: credit_ladder
  but not credit_cifar), ``local`` otherwise.
- ``slurm``: a ``submitit`` job array, one task per missing config.

A pool (``local``, ``replicas``) starts the configs or groups whose earlier rows took longest first
(:func:`longest_first`). Every executor honours the sweep's :class:`Budget`: no new run starts once it is spent (slurm: unfinished
jobs are cancelled). Ctrl-C or SIGTERM stops the pool's workers at once.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable

import torch

from potlib import experiments, runtime
from potlib.config import Config, cfg_id
from potlib.results import ResultStore

EXECUTORS = ("auto", "inline", "local", "replicas", "slurm")


# Replicas per group on a CPU: the bench's measured R (ladder L = 4, one thread per worker, two workers: 2.2-3.7x
# one-at-a-time); small groups also keep two workers' loads even and the time budget's granularity short.
CPU_GROUP_SIZE = 12
GPU_GROUP_SIZE = 64


# On a CPU, replica groups pay only when they are large (the committed bench rows, 2-core CPU; the result store's
# Table 2 has the current numbers and the reproduction page their history): the ladder's groups of 12 on two one-thread
# workers run 2.1x to 3.0x one run at a time (by rule and remake), where two workers training runs alone run about 1.9x; the
# CIFAR-10 cpu grid, one seed per rule and depth, makes groups of one or two runs, and two replicas in one process ran
# about 0.9x the rate of one run at a time in every measurement. Sizes between 2 and 12 were not measured; the bound
# sits between them.
CPU_MIN_MEAN_GROUP = 6


def default_executor(exp: experiments.Experiment, profile: str) -> str:
    """What ``--executor auto`` runs: ``inline`` for the smoke profile; ``replicas`` for an experiment that can
    train same-shaped configs together, on a GPU always and on a CPU when its ``profile`` grid's groups hold at least
    :data:`CPU_MIN_MEAN_GROUP` configs on average; ``local`` otherwise."""
    if profile == "smoke":
        return "inline"
    if exp.run_group is None or exp.group_configs is None:
        return "local"
    if profile != "cpu":
        return "replicas"
    configs = exp.configs(profile)
    groups, _ = exp.group_configs(configs, CPU_GROUP_SIZE)
    return "replicas" if groups and sum(map(len, groups)) / len(groups) >= CPU_MIN_MEAN_GROUP else "local"


def default_group_size(device: torch.device) -> int:
    """Most configs one replica group trains when ``--group-size`` is not given."""
    return GPU_GROUP_SIZE if torch.device(device).type == "cuda" else CPU_GROUP_SIZE


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


@functools.lru_cache(maxsize=None)
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
    # the row is written under the run's thread count too: its provenance names the threads the run computed with
    with runtime.torch_threads(exp.cpu_threads if torch.device(device).type == "cpu" else None):
        result = runtime.run_config(exp.run, config, device)
        row = runtime.write_row(ResultStore(root), name, config, profile, result, device, fingerprint(exp))
    if result.exception is not None:  # missing or corrupt data: every other config would fail alike
        raise result.exception
    return row


def _init_worker(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


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


Done = Callable[[dict], None]


def _inline(name, todo, profile, root, device, budget: Budget, done: Done, **_) -> None:
    for c in todo:
        if budget.spent():
            return
        done(run_one(name, c, profile, root, device))


def _run_job(name: str, cfg_dicts: list[dict], profile: str, root: str, device: str | None,
             grouped: bool) -> list[dict]:
    """Entry point of pool workers and slurm jobs (configs travel as plain dicts): one config, or (``grouped``) one
    replica group trained together; row summaries. ``device`` None: the job's own (:func:`resolve_device`)."""
    exp = experiments.get(name)
    configs = [exp.config_cls.from_dict(d) for d in cfg_dicts]
    dev = torch.device(device) if device else resolve_device(exp)
    if grouped:
        rows = run_group(exp, name, configs, profile, ResultStore(root), dev)
    else:
        rows = [run_one(name, configs[0], profile, root, dev)]
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


def known_costs(name: str, profile: str, root) -> dict[str, float]:
    """Seconds each config of ``name`` took before, by cfg_id: the ``wall_seconds`` of its row under ``root`` or, for
    configs without one there, in the default store of ``profile`` (the committed rows, when a grid is rerun
    elsewhere). A grouped row's seconds are its share of the group's wall time."""
    from potlib.results import default_root

    costs: dict[str, float] = {}
    for r in (default_root(profile), Path(root)):  # rows under root win
        if not Path(r).is_dir():
            continue
        for row in ResultStore(r).rows(name):
            if row.get("profile") == profile and (row.get("provenance") or {}).get("wall_seconds"):
                costs[row["cfg_id"]] = float(row["provenance"]["wall_seconds"])
    return costs


def longest_first(name: str, units: list[list[Config]], profile: str, root) -> list[int]:
    """The order (indices into ``units``, each a config or a replica group) in which a pool of workers should start
    them: those whose configs' earlier rows (:func:`known_costs`) took longest first, so that no long run starts last
    while the other workers idle (the longest-processing-time rule: on two workers the ladder grid's replica groups,
    timed on 2026-11-30, take 62.1 min in grid order, as its sweep did, and 55.8 min longest first, against 55.4 for
    a perfect split). Units without an earlier row keep their grid order, ahead of the rest: their cost is unknown."""
    costs = known_costs(name, profile, root)
    ids = [[cfg_id(name, c) for c in u] for u in units]
    unknown = [i for i, u in enumerate(ids) if any(c not in costs for c in u)]
    known = [i for i, u in enumerate(ids) if all(c in costs for c in u)]
    known.sort(key=lambda i: -sum(costs[c] for c in ids[i]))  # stable: ties keep the grid order
    return unknown + known


def _local(name, todo, profile, root, device, budget: Budget, done: Done, workers: int | None = None, **_) -> None:
    slots, n, threads = _slots(device, workers, len(todo))
    if n > 1:
        todo = [todo[i] for i in longest_first(name, [[c] for c in todo], profile, root)]
    jobs = [(name, [c.to_dict()], profile, str(root), slots[i % len(slots)], False) for i, c in enumerate(todo)]
    _pool(jobs, n, threads, budget, done)


def _replicas(name, todo, profile, root, device, budget: Budget, done: Done, workers: int | None = None,
              group_size: int | None = None, **_) -> None:
    """Same-shaped configs trained together (the experiment's ``group_configs``, at most ``group_size`` each), the
    groups and the configs that train alone spread over ``workers`` processes as the local executor spreads runs
    (one process: all in this one)."""
    exp = experiments.get(name)
    groups, rest = (([], todo) if exp.group_configs is None
                    else exp.group_configs(todo, group_size or default_group_size(device)))
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
    units = [units[i] for i in longest_first(name, [u for u, _ in units], profile, root)]
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
    rows = []
    # the experiment's threads, as run_one sets them, around the training and its rows
    with runtime.torch_threads(exp.cpu_threads if torch.device(device).type == "cpu" else None):
        start = time.perf_counter()
        try:
            outcomes, error = exp.run_group(group, device), None
        except Exception as e:  # noqa: BLE001 - recorded in every row of the group
            outcomes, error = None, runtime.describe_error(e)
        wall = (time.perf_counter() - start) / len(group)
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
    jobs = ex.map_array(_run_job, [name] * n, [[c.to_dict()] for c in todo], [profile] * n, [str(root)] * n,
                        [None] * n, [False] * n)
    pending = list(jobs)
    while pending:
        still = []
        for i, job in enumerate(pending):
            if budget.spent():  # checked per job: submitit's debug cluster runs a job inside done()
                for rest in still + pending[i:]:
                    rest.cancel(check=False)
                return
            if job.done():
                for summary in job.result():
                    done(summary)
            else:
                still.append(job)
        pending = still
        if pending:
            time.sleep(float(opts.get("poll_seconds", 2.0)))


RUNNERS = {"inline": _inline, "local": _local, "replicas": _replicas, "slurm": _slurm}
