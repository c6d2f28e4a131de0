"""Command line: ``python -m potlib {list,run,status,compare,bench}``.

CPU smoke of any experiment (seconds)::

    python -m potlib run gradflow_depth --profile smoke

The book's grid on a 2-core CPU, resumable (existing rows are skipped; ``--force`` reruns them)::

    python -m potlib run gradflow_depth --profile cpu --executor local
    python -m potlib status

Does a rerun reproduce the committed rows? (every scalar metric, paired by config)::

    python -m potlib run credit_ladder --profile cpu --results-dir /tmp/rerun
    python -m potlib compare credit_ladder --profile cpu --against /tmp/rerun

Throughput of the credit runs (one at a time vs replicas), a row of the ``bench`` experiment::

    python -m potlib bench --workload ladder_L4 --replicas 32 --profile gpu
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from potlib import experiments
from potlib.config import ConfigError
from potlib.errors import DataUnavailable
from potlib.results import MissingResultsError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: an int >= 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: seconds > 0")
    return value


def _shard(text: str) -> tuple[int, int]:
    k, sep, n = text.partition("/")
    try:
        shard = (int(k), int(n))
    except ValueError:
        shard = None
    if not sep or shard is None or not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: K/N with 0 <= K < N, e.g. 0/2")
    return shard


def _where(text: str) -> tuple[str, list[str]]:
    key, sep, values = text.partition("=")
    if not sep or not key or not values:
        raise argparse.ArgumentTypeError(f"{text!r} is not FIELD=VALUE[,VALUE...] (e.g. alpha=0.5 or n_layers=8,12)")
    return key, values.split(",")


def _parser() -> argparse.ArgumentParser:
    from potlib.sweep import EXECUTORS

    p = argparse.ArgumentParser(prog="potlib", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    profiles = list(experiments.PROFILES)

    sub.add_parser("list", help="list experiments, their figures and profile sizes")

    r = sub.add_parser("run", help="run (or resume) the grid of one or more experiments' profile")
    # -- what to run --
    r.add_argument("experiment", nargs="+", help="experiment name(s) (see `python -m potlib list`); several run one "
                   "after another in the order given, --time-budget covering them all; 'all': every experiment with "
                   "the profile, in the registry's order (the whole book for --profile cpu)")
    r.add_argument("--profile", default="smoke", choices=profiles,
                   help="smoke (seconds on a CPU), cpu (the grid behind the book, 2 cores) or gpu (larger budgets, one GPU)")
    r.add_argument("--force", action="store_true", help="rerun configs that already have a row")
    r.add_argument("--stale", action="store_true", help="also rerun configs whose row was made by code that has changed since")
    r.add_argument("--results-dir", type=Path, default=None, help="result root (default: data/results for cpu and gpu, a cache for smoke)")
    # -- how to run it --
    r.add_argument("--executor", default="auto", choices=EXECUTORS,
                   help="auto (inline for smoke; replicas where the experiment can group configs, on a CPU only if its groups are large; local otherwise), inline (this process), local (process pool; on a CPU "
                        "one thread per worker), replicas (experiments that can train same-shaped configs together; "
                        "--group-size caps a group) or slurm (submitit job array)")
    r.add_argument("--workers", type=_positive_int, default=None,
                   help="local and replicas executors: processes per GPU (default 1), on a CPU in all (default: one per core, "
                        "the cores shared among them; set POTLIB_THREADS=1 when several sweeps run at once)")
    r.add_argument("--group-size", type=_positive_int, default=None,
                   help="replicas executor: most configs trained together in one group (default 12 on a CPU, 64 on a GPU)")
    r.add_argument("--shard", type=_shard, default=(0, 1), help="K/N: run only every N-th config starting at K (split a grid across processes)")
    # -- slurm options --
    r.add_argument("--slurm-partition", default=None, help="slurm partition")
    r.add_argument("--slurm-gpus", type=_positive_int, default=1, help="GPUs per array task")
    r.add_argument("--slurm-timeout-min", type=_positive_int, default=60, help="time limit per array task, minutes")
    r.add_argument("--slurm-array-parallelism", type=_positive_int, default=64, help="array tasks running at once")
    r.add_argument("--slurm-cluster", default=None, choices=[None, "slurm", "local", "debug"], help=argparse.SUPPRESS)  # tests
    r.add_argument("--where", type=_where, action="append", default=[], metavar="FIELD=V[,V...]",
                   help="only the configs whose FIELD is one of the values (repeatable, all must hold), e.g. alpha=0.5")
    r.add_argument("--time-budget", type=_seconds, default=None, help="seconds after which no new run starts (every executor); rerun to resume")
    r.add_argument("--allow-cpu", action="store_true", help="let a GPU experiment's gpu profile run without a GPU (use a separate --results-dir)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("status", help="rows present vs expected, per experiment and profile")
    s.add_argument("--profile", default=None, choices=profiles, help="only this profile")
    s.add_argument("--results-dir", type=Path, default=None, help="result root for every profile")

    c = sub.add_parser("compare", help="do the rows of a rerun agree with the reference rows? metric by metric")
    c.add_argument("experiment", help="experiment name (see `python -m potlib list`)")
    c.add_argument("--profile", default="cpu", choices=profiles, help="whose rows to compare (default cpu)")
    c.add_argument("--against", type=Path, required=True, help="result root of the rerun")
    c.add_argument("--results-dir", type=Path, default=None, help="reference result root (default: data/results for cpu and gpu)")
    c.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance (default 1e-5)")
    c.add_argument("--atol", type=float, default=1e-8, help="absolute tolerance (default 1e-8)")
    c.add_argument("--ignore", action="append", default=[], metavar="FIELD",
                   help="pair rows by their config without this field (repeatable), e.g. compile")

    b = sub.add_parser("bench", help="time credit runs one at a time vs replicas (rows of the bench experiment)")
    b.add_argument("--profile", default="smoke", choices=profiles, help="smoke (CPU seconds, shrunken evaluation), cpu or gpu (the bench grid on this device)")
    b.add_argument("--workload", default=None, help="only this workload: ladder_L4 or cifar_L12 (default: the profile's)")
    b.add_argument("--replicas", type=_positive_int, default=None, help="replicas per group R (default: the profile's)")
    b.add_argument("--steps", type=_positive_int, default=None, help="timed training steps per measurement (default: the profile's)")
    b.add_argument("--workers", type=int, default=None, help="also time this many baseline processes at once (0: skip)")
    b.add_argument("--results-dir", type=Path, default=None, help="result root (default: data/results for cpu and gpu, a cache for smoke)")
    b.add_argument("--allow-cpu", action="store_true", help="let the gpu profile run without a GPU (use a separate --results-dir)")
    return p


def _cmd_list() -> int:
    for name in experiments.names():
        exp = experiments.get(name)
        sizes = ", ".join(f"{p}={len(exp.configs(p))}" for p in exp.profiles)
        print(f"{name:22s} {exp.title}  [{sizes}]{'  (GPU)' if exp.uses_gpu else ''}")
    return 0


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)  # SIGTERM unwinds like Ctrl-C: the sweep logs what it ran, files stay whole


def _cmd_run(a: argparse.Namespace) -> int:
    import signal
    import time

    from potlib.sweep import run_sweep

    signal.signal(signal.SIGTERM, _terminate)
    if a.experiment == ["all"]:
        a.experiment = [n for n in experiments.names() if a.profile in experiments.get(n).profiles]
    for name in a.experiment:  # clear errors before anything runs
        experiments.get(name).configs(a.profile)
    slurm = {
        "partition": a.slurm_partition,
        "gpus": a.slurm_gpus,
        "timeout_min": a.slurm_timeout_min,
        "array_parallelism": a.slurm_array_parallelism,
        "cluster": a.slurm_cluster,
    }
    t0, failed = time.monotonic(), False
    for i, name in enumerate(a.experiment):
        budget = None if a.time_budget is None else a.time_budget - (time.monotonic() - t0)
        if budget is not None and budget <= 0:
            print(f"time budget spent: not started: {', '.join(a.experiment[i:])} (rerun to resume)")
            break
        report = run_sweep(
            name, a.profile, executor=a.executor, root=a.results_dir, force=a.force,
            workers=a.workers, group_size=a.group_size, progress=not a.quiet, slurm=slurm, shard=a.shard,
            allow_cpu=a.allow_cpu, time_budget=budget, stale=a.stale, where=dict(a.where),
        )
        print(report)
        failed |= bool(report.failed)
    return 1 if failed else 0


def _cmd_status(a: argparse.Namespace) -> int:
    from potlib.sweep import status_frame

    profiles = [experiments.check_profile(a.profile)] if a.profile else list(experiments.PROFILES)
    df = status_frame(profiles, a.results_dir)
    print(df.to_string(index=False))
    for prof in ("cpu", "gpu"):
        sel = df[df["profile"] == prof]
        if len(sel):
            print(f"total {prof} wall time (sum of row wall seconds): {sel['wall_h'].sum():.3f} h")
            with_rows = sel[sel["done"] > 0]
            whole = with_rows[with_rows["whole"]]
            # a grid's sweeps that ran side by side (shards) count once, grids add up as if swept one after
            # another; rows made before sweeps were logged have no elapsed time
            partial = with_rows[~with_rows.index.isin(whole.index)]["experiment"]
            print(f"total {prof} elapsed time of the logged sweeps that made the rows: {with_rows['sweep_h'].sum():.3f} h; "
                  f"{len(whole)} of {len(with_rows)} grids with rows were made whole by logged sweeps, in "
                  f"{whole['sweep_h'].sum():.3f} h" + (f" (not yet: {', '.join(partial)})" if len(partial) else ""))
    return 1 if (df["corrupt"] != "").any() else 0


def _cmd_compare(a: argparse.Namespace) -> int:
    from potlib.compare import compare_rows
    from potlib.results import default_root

    experiments.get(a.experiment)  # a clear error for an unknown name
    experiments.check_profile(a.profile)
    ref = a.results_dir or default_root(a.profile)
    c = compare_rows(a.against, ref, a.experiment, a.profile, a.rtol, a.atol, tuple(a.ignore))
    print(f"{a.experiment} [{a.profile}]: {c.paired} configs in both ({a.against} against {ref}); "
          f"{len(c.only_ours)} only in the rerun, {len(c.only_reference)} only in the reference")
    if len(c.metrics):
        print(c.metrics.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if c.status_differs:
        print(f"status differs for {len(c.status_differs)} configs: {', '.join(c.status_differs[:5])}")
    print(f"{'agree' if c.agree else 'DIFFER'} within rtol {a.rtol:g}, atol {a.atol:g}")
    return 0 if c.agree else 1


def main(argv: list[str] | None = None) -> int:
    from potlib.runtime import tune_allocator

    tune_allocator()  # before any training allocates; worker processes inherit it through the environment
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # argparse has printed the message naming the flag and what is allowed
        return int(e.code or 0)
    try:
        if args.command == "list":
            return _cmd_list()
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "compare":
            return _cmd_compare(args)
        if args.command == "bench":
            from potlib.bench import bench_command

            return bench_command(args.profile, args.workload, args.replicas, args.steps, args.workers, args.results_dir,
                                 args.allow_cpu)
        return _cmd_status(args)
    except (experiments.UnknownExperimentError, experiments.UnknownProfileError, DataUnavailable, ConfigError,
            MissingResultsError, ValueError, RuntimeError) as e:
        print(f"potlib: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
