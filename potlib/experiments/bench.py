"""Benchmark: paper runs per hour of the credit experiments, one at a time vs replicas vs workers.

Backs no figure: it answers the performance issue "reproduce the whole book on one GPU in under
an hour" with measured numbers and a row carrying the usual provenance (device, commit, versions).
One row per (workload, replicas); the timing method is in :mod:`potlib.bench`. Metrics:
``baseline_runs_per_hour``, ``replicas_runs_per_hour``, ``speedup`` (replicas / baseline),
``graph_runs_per_hour`` and ``graph_speedup`` (CUDA graph replicas, CUDA only), ``workers_runs_per_hour``
and ``workers_speedup`` (``workers`` processes, when > 0), and the raw per-step / per-epoch-end /
final seconds of each. BP and DFA only: the bridges (SB, CB) have no replica path yet.

Runtime: smoke ~3 s wall on a 2-core CPU including start-up (measured, OMP_NUM_THREADS=1; its
numbers are CPU numbers at shrunken evaluation sizes, not paper estimates); paper, 5 rows, a few
minutes on one H100 (estimate, not measured).

    python -m potlib run bench --profile smoke     # or: python -m potlib bench
    python -m potlib run bench --profile paper --force
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from potlib.config import Config
from potlib.experiments import Experiment, Outcome
from potlib.provenance import pick_device


@dataclass(frozen=True)
class BenchConfig(Config):
    workload: Literal["ladder_L4", "cifar_L12"] = "ladder_L4"  # paper run to extrapolate to (potlib.bench)
    method: Literal["BP", "DFA"] = "BP"  # credit rule timed (BP: the costlier of the two)
    replicas: int = 16  # R configs (seeds) per replica group
    steps: int = 100  # timed training steps per measurement
    warmup: int = 10  # untimed steps first (>= 4 for the CUDA graph capture)
    workers: int = 0  # processes running the baseline at once; 0 skips the measurement
    cuda_graph: bool = True  # on CUDA, also time replicas with a captured CUDA graph
    n_test: int = 0  # test examples timed at each epoch end; 0 means the workload's own
    metric_samples: int = 0  # samples of Γ/ρ; 0 means the workload's own (1024)

    def check(self) -> None:
        r = self.require
        r(self.replicas >= 1, "replicas", "an int >= 1")
        r(self.steps >= 1, "steps", "an int >= 1")
        r(self.warmup >= 0, "warmup", "an int >= 0")
        r(self.workers >= 0, "workers", "an int >= 0 (0 skips)")
        r(self.n_test >= 0, "n_test", "an int >= 0 (0 means the workload's)")
        r(self.metric_samples >= 0, "metric_samples", "an int >= 0 (0 means the workload's)")


def run(cfg: BenchConfig) -> Outcome:
    import torch

    from potlib import bench

    device = pick_device(os.environ.get("POTLIB_DEVICE", "auto"))
    w = bench.WORKLOADS[cfg.workload]
    n_test = cfg.n_test or w.n_test
    base = bench.base_config(w, cfg.method, cfg.metric_samples or w.metric_samples)
    data = bench.make_data(w, n_test, device)
    m: dict = {"device_kind": torch.device(device).type, "steps_per_run": (w.n_train // w.batch_size) * w.epochs}

    t = bench.time_baseline(base, data, device, cfg.steps, cfg.warmup, w.n_classes)
    m["baseline_runs_per_hour"] = bench.runs_per_hour(w, t)
    m.update({f"baseline_{k}": v for k, v in t.items()})

    t = bench.time_replicas(base, data, device, cfg.replicas, cfg.steps, cfg.warmup, n_classes=w.n_classes)
    m["replicas_runs_per_hour"] = bench.runs_per_hour(w, t, cfg.replicas)
    m.update({f"replicas_{k}": v for k, v in t.items()})
    m["speedup"] = m["replicas_runs_per_hour"] / m["baseline_runs_per_hour"]

    if cfg.cuda_graph and torch.device(device).type == "cuda":
        t = bench.time_replicas(base, data, device, cfg.replicas, cfg.steps, max(cfg.warmup, 4), cuda_graph=True,
                                n_classes=w.n_classes)
        m["graph_runs_per_hour"] = bench.runs_per_hour(w, t, cfg.replicas)
        m.update({f"graph_{k}": v for k, v in t.items()})
        m["graph_speedup"] = m["graph_runs_per_hour"] / m["baseline_runs_per_hour"]

    if cfg.workers > 0:
        step = bench.time_workers(base, cfg.workload, n_test, device, cfg.workers, cfg.steps, cfg.warmup)
        tw = {"step_s": step, "epoch_end_s": m["baseline_epoch_end_s"], "final_s": m["baseline_final_s"]}
        m["workers_runs_per_hour"] = bench.runs_per_hour(w, tw, cfg.workers)
        m["workers_step_s"] = step
        m["workers_speedup"] = m["workers_runs_per_hour"] / m["baseline_runs_per_hour"]
    return Outcome(m, dataset=f"synthetic data of the {cfg.workload} shapes (timing only)")


def _smoke() -> list[Config]:
    return [BenchConfig(replicas=4, steps=10, warmup=2, n_test=256, metric_samples=64)]


def _gpu() -> list[Config]:
    return ([BenchConfig(workload="ladder_L4", replicas=r, workers=4 if r == 32 else 0) for r in (8, 32, 96)]
            + [BenchConfig(workload="cifar_L12", replicas=r, workers=2 if r == 4 else 0) for r in (4, 12)])


EXPERIMENT = Experiment(
    name="bench",
    title="Benchmark: credit-run throughput, one at a time vs replicas vs worker processes",
    config_cls=BenchConfig,
    profiles={"smoke": _smoke, "gpu": _gpu},
    run=run,
    chapter="",
    uses_gpu=True,
)
