"""``python -m potlib bench``: the bench experiment's rows, always rerun, printed as a table.

The timing method and the workloads live with the experiment (``potlib.experiments.bench``).
"""

from __future__ import annotations


def bench_command(profile: str = "smoke", workload: str | None = None, replicas: int | None = None,
                  steps: int | None = None, workers: int | None = None, results_dir=None, allow_cpu: bool = False) -> int:
    """``python -m potlib bench``: the bench profile's configs with the given overrides, each run by
    ``potlib.sweep.run_one`` (always rerun: a timing belongs to its moment and machine); prints a table.
    """
    from potlib import experiments
    from potlib.experiments.bench import WORKLOADS
    from potlib.results import default_root
    from potlib.sweep import check_gpu_rows, resolve_device, run_one

    experiments.check_profile(profile)
    check_gpu_rows("bench", profile, resolve_device(experiments.get("bench")), allow_cpu)
    configs = experiments.get("bench").configs(profile)
    if workload is not None:
        if workload not in WORKLOADS:
            raise ValueError(f"--workload {workload!r} is not allowed: one of {', '.join(WORKLOADS)}")
        configs = [c.replace(workload=workload) for c in configs if c.workload == workload] or \
            [configs[0].replace(workload=workload)]
    changes = {k: v for k, v in (("replicas", replicas), ("steps", steps), ("workers", workers)) if v is not None}
    configs = list(dict.fromkeys(c.replace(**changes) for c in configs))  # overrides may merge configs
    root = results_dir or default_root(profile)
    failed = 0
    print(f"{'workload':10s} {'rule':4s} {'R':>4s} {'device':>6s} {'baseline/h':>11s} {'replicas/h':>11s} "
          f"{'speedup':>8s} {'graph/h':>9s} {'workers/h':>10s}")
    for c in configs:
        row = run_one("bench", c, profile, root)
        m = row["metrics"]
        if row["status"] != "ok":
            failed += 1
            print(f"{c.workload:10s} {c.method:4s} {c.replicas:4d} {row['status']}: {(row['error'] or '').splitlines()[0]}")
            continue
        graph, workers = (format(m[k], ".1f") if k in m else "-" for k in ("graph_runs_per_hour", "workers_runs_per_hour"))
        print(f"{c.workload:10s} {c.method:4s} {c.replicas:4d} {m['device_kind']:>6s} {m['baseline_runs_per_hour']:11.1f} "
              f"{m['replicas_runs_per_hour']:11.1f} {m['speedup']:8.2f} {graph:>9s} {workers:>10s}")
    print(f"rows written under {root}/bench")
    return 1 if failed else 0
