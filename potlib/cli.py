"""Command line: ``python -m potlib {list,run,status,bench}``.

CPU smoke of any experiment (seconds)::

    python -m potlib run gradflow_depth --profile smoke

The paper grid, resumable (existing rows are skipped; ``--force`` reruns them)::

    python -m potlib run gradflow_depth --profile paper --executor local
    python -m potlib status

Throughput of the credit runs (one at a time vs replicas), a row of the ``bench`` experiment::

    python -m potlib bench --workload ladder_L4 --replicas 32 --profile paper
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from potlib import experiments


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="potlib", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list experiments, their figures and profile sizes")

    r = sub.add_parser("run", help="run (or resume) the grid of one experiment's profile")
    # -- what to run --
    r.add_argument("experiment", help="experiment name (see `python -m potlib list`)")
    r.add_argument("--profile", default="smoke", help="smoke (seconds on a CPU) or paper (the book's grid)")
    r.add_argument("--force", action="store_true", help="rerun configs that already have a row")
    r.add_argument("--results-dir", type=Path, default=None, help="result root (default: data/results for paper, a cache for smoke)")
    # -- how to run it --
    r.add_argument("--executor", default="inline", help="inline (this process), local (process pool), slurm (submitit job array) or replicas (credit experiments: BP/DFA configs trained together as stacked replicas; --workers caps the group size)")
    r.add_argument("--workers", type=int, default=None, help="local executor: processes per GPU (or in all, on CPU)")
    r.add_argument("--shard", default="0/1", help="K/N: run only every N-th config starting at K (split a grid across processes)")
    # -- slurm options --
    r.add_argument("--slurm-partition", default=None, help="slurm partition")
    r.add_argument("--slurm-gpus", type=int, default=1, help="GPUs per array task")
    r.add_argument("--slurm-timeout-min", type=int, default=60, help="time limit per array task, minutes")
    r.add_argument("--slurm-array-parallelism", type=int, default=64, help="array tasks running at once")
    r.add_argument("--slurm-cluster", default=None, help=argparse.SUPPRESS)  # 'debug' runs in-process (tests)
    r.add_argument("--time-budget", type=float, default=None, help="seconds after which no new run starts (inline/replicas); rerun to resume")
    r.add_argument("--allow-cpu", action="store_true", help="let a GPU experiment's paper profile run without a GPU (use a separate --results-dir)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("status", help="rows present vs expected, per experiment and profile")
    s.add_argument("--profile", default=None, help="only this profile")
    s.add_argument("--results-dir", type=Path, default=None, help="result root for every profile")

    b = sub.add_parser("bench", help="time credit runs one at a time vs replicas (rows of the bench experiment)")
    b.add_argument("--profile", default="smoke", help="smoke (CPU seconds, shrunken evaluation) or paper (the bench grid)")
    b.add_argument("--workload", default=None, help="only this workload: ladder_L4 or cifar_L12 (default: the profile's)")
    b.add_argument("--replicas", type=int, default=None, help="replicas per group R (default: the profile's)")
    b.add_argument("--steps", type=int, default=None, help="timed training steps per measurement (default: the profile's)")
    b.add_argument("--workers", type=int, default=None, help="also time this many baseline processes at once (0: skip)")
    b.add_argument("--results-dir", type=Path, default=None, help="result root (default: data/results for paper, a cache for smoke)")
    return p


def _cmd_list() -> int:
    for name in experiments.names():
        exp = experiments.get(name)
        sizes = ", ".join(f"{p}={len(exp.configs(p))}" for p in exp.profiles)
        print(f"{name:22s} {exp.title}  [{sizes}]{'  (GPU)' if exp.uses_gpu else ''}")
    return 0


def _cmd_run(a: argparse.Namespace) -> int:
    from potlib.sweep import run_sweep

    exp = experiments.get(a.experiment)
    exp.configs(a.profile)  # validates the profile with a clear message
    slurm = {
        "partition": a.slurm_partition,
        "gpus": a.slurm_gpus,
        "timeout_min": a.slurm_timeout_min,
        "array_parallelism": a.slurm_array_parallelism,
        "cluster": a.slurm_cluster,
    }
    try:
        shard = tuple(int(v) for v in a.shard.split("/"))
        assert len(shard) == 2
    except (ValueError, AssertionError):
        raise ValueError(f"--shard {a.shard!r} is not allowed: expected K/N, e.g. 0/2") from None
    report = run_sweep(
        a.experiment, a.profile, executor=a.executor, root=a.results_dir, force=a.force,
        workers=a.workers, progress=not a.quiet, slurm=slurm, shard=shard, allow_cpu=a.allow_cpu,
        time_budget=a.time_budget,
    )
    print(report)
    return 1 if report.failed else 0


def _cmd_status(a: argparse.Namespace) -> int:
    from potlib.sweep import status_frame

    profiles = [experiments.check_profile(a.profile)] if a.profile else list(experiments.PROFILES)
    df = status_frame(profiles, a.results_dir)
    print(df.to_string(index=False))
    paper = df[df["profile"] == "paper"]
    print(f"total paper wall time (sum of row wall seconds): {paper['wall_h'].sum():.3f} h")
    return 1 if (df["corrupt"] != "").any() else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _cmd_list()
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "bench":
            from potlib.bench import bench_command

            return bench_command(args.profile, args.workload, args.replicas, args.steps, args.workers, args.results_dir)
        return _cmd_status(args)
    except (experiments.UnknownExperimentError, experiments.UnknownProfileError, ValueError, TypeError, RuntimeError) as e:
        print(f"potlib: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
