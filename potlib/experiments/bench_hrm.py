"""Benchmark: HRM-chapter runs per hour on a CPU, one at a time vs two worker processes vs ``torch.compile``.

Backs Table 3 of the result-store appendix (performance issue: "the fast path for each model, measured
before and after"; "``bench`` on reference workloads ... HRM d=64 4-layer"). One row per model of the HRM
chapter's ``cpu`` grids at their shared sizes (:func:`potlib.hrm_train.cpu_base`: d = 64, batch 64, 2,000
optimizer steps): HRM with 2 + 2 blocks, 2 x 2 cycles and a fixed M = 2 segments (the run of ``hrm_act``'s
fixed-M rows and of ``hrm_original_choices``), and the 4-layer Transformer of ``hrm_depth_width``.

Arrangements, each timed in this process or in spawned ones on the same machine, one torch thread per run:

- baseline: :func:`potlib.hrm_train.train` on one model (what ``--executor local`` does on each core);
- workers: ``workers`` processes train at once (start barrier); the slowest one's step time counts;
- compile: the same model with every :class:`~potlib.models.hrm_blocks.HRMBlock` compiled by
  ``torch.compile`` (inductor, C++ code for the CPU), timed after its compilation; ``compile_seconds`` is
  what the untimed first steps took, compilation included (paid once per run). ``compile_loss_rel_diff`` is the largest relative difference of
  the training loss, step by step, between the compiled and the eager model trained from the same
  initialisation on the same batches: how far compilation moves the results.

Metrics: ``{baseline,workers,compile}_step_s`` (seconds per optimizer step), ``eval_s`` (one evaluation of
``n_test`` puzzles), ``{...}_runs_per_hour`` = runs · 3600 / (train_steps · step_s + eval_s) and the
speed-ups ``workers_speedup``, ``compile_speedup`` over the baseline. The data are synthetic puzzles of the
real shapes (81 cells, 10 symbols): timing does not depend on the values.

    python -m potlib run bench_hrm --profile smoke
    python -m potlib run bench_hrm --profile cpu      # 2 rows, ~1 min on the 2-core machine (idle)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import torch

from potlib import hrm_train
from potlib.config import Config
from potlib.experiments import Experiment
from potlib.runtime import Outcome


@dataclass(frozen=True)
class HRMBenchConfig(Config):
    model: Literal["hrm", "transformer"] = "hrm"  # HRM (fixed M = 2) or the 4-layer Transformer, cpu sizes
    steps: int = 20  # timed optimizer steps per measurement
    warmup: int = 3  # untimed steps first (and, compiled, the compilation)
    workers: int = 2  # processes training at once; 0 skips the measurement
    compile: bool = True  # also time the model with its blocks compiled (torch.compile)
    n_test: int = 700  # puzzles evaluated once (the cpu ladder: 7 levels x 100)
    smoke: bool = False  # tiny model sizes (hrm_train.smoke_base) instead of the cpu ones

    def check(self) -> None:
        r = self.require
        r(self.steps >= 1, "steps", "an int >= 1")
        r(self.warmup >= 1, "warmup", "an int >= 1")
        r(self.workers >= 0, "workers", "an int >= 0 (0 skips)")
        r(self.n_test >= 1, "n_test", "an int >= 1")


def train_config(cfg: HRMBenchConfig) -> hrm_train.HRMTrainConfig:
    """The timed run: the chapter's cpu (or smoke) sizes on synthetic puzzles, fixed M = 2 for HRM."""
    sizes = (hrm_train.smoke_base if cfg.smoke else hrm_train.cpu_base)(
        model=cfg.model, act=False, halt_max_steps=2, data="synthetic", n_aug=1, n_test=cfg.n_test,
        compile=False)  # eager; _build compiles the blocks of the compiled arm itself
    if not cfg.smoke:
        sizes.update(n_train=512)  # synthetic rows to draw batches from (the cpu grids use the ladder)
    return hrm_train.HRMTrainConfig(**sizes)


def _build(tc: hrm_train.HRMTrainConfig, compiled: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = hrm_train.build_model(tc)
    return hrm_train.compiled_forward(tc.replace(compile=compiled), model, torch.device("cpu"))


def time_training(tc: hrm_train.HRMTrainConfig, steps: int, warmup: int, compiled: bool = False,
                  barrier=None) -> dict:
    """Seconds per optimizer step of :func:`potlib.hrm_train.train` (after ``warmup`` untimed steps), the
    warm-up's seconds and the timed steps' training losses."""
    data = hrm_train.load_data(tc)
    model, cpu = _build(tc, compiled), torch.device("cpu")
    t0 = time.perf_counter()
    hrm_train.train(tc.replace(train_steps=warmup), model, data, cpu)
    warm_s = time.perf_counter() - t0
    if barrier is not None:
        barrier.wait()  # all workers time their steps over the same wall-clock window
    metrics, arts = hrm_train.train(tc.replace(train_steps=steps), model, data, cpu)
    return {"step_s": metrics["train_seconds"] / steps, "warmup_s": warm_s, "losses": arts["train_loss"]}


def _worker(tc_dict: dict, steps: int, warmup: int, barrier, queue) -> None:
    torch.set_num_threads(1)
    queue.put(time_training(hrm_train.HRMTrainConfig.from_dict(tc_dict), steps, warmup, barrier=barrier)["step_s"])


def time_workers(tc: hrm_train.HRMTrainConfig, workers: int, steps: int, warmup: int) -> float:
    """Seconds per step of the slowest of ``workers`` spawned one-thread processes training at once."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(tc.to_dict(), steps, warmup, barrier, queue)) for _ in range(workers)]
    for p in procs:
        p.start()
    try:
        return max(queue.get(timeout=1800) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=60)


def run(cfg: HRMBenchConfig, device: torch.device) -> Outcome:
    if torch.device(device).type != "cpu":
        raise ValueError(f"device = {device} is not allowed for bench_hrm: it times the CPU arrangements only")
    tc = train_config(cfg)
    m: dict = {"train_steps": tc.train_steps, "layers_computed": hrm_train.layers_computed(tc)}
    data, model = hrm_train.load_data(tc), _build(tc, compiled=False)
    t0 = time.perf_counter()
    hrm_train.evaluate(tc, model, data.test_x, data.test_y, torch.device("cpu"))
    m["eval_s"] = time.perf_counter() - t0

    def per_run(step_s: float, runs: int = 1) -> float:
        return runs * 3600.0 / (tc.train_steps * step_s + m["eval_s"])

    base = time_training(tc, cfg.steps, cfg.warmup)
    m["baseline_step_s"] = base["step_s"]
    m["baseline_runs_per_hour"] = per_run(base["step_s"])

    if cfg.compile:
        comp = time_training(tc, cfg.steps, cfg.warmup, compiled=True)
        m["compile_step_s"], m["compile_seconds"] = comp["step_s"], comp["warmup_s"]
        m["compile_runs_per_hour"] = per_run(comp["step_s"])
        m["compile_speedup"] = m["compile_runs_per_hour"] / m["baseline_runs_per_hour"]
        # hrm_train.train records the loss of every one of the last 50 steps, so all timed steps here
        diff = (comp["losses"] - base["losses"]) / base["losses"]
        m["compile_loss_rel_diff"] = float(abs(diff).max())

    if cfg.workers > 0:
        m["workers_step_s"] = time_workers(tc, cfg.workers, cfg.steps, cfg.warmup)
        m["workers_runs_per_hour"] = per_run(m["workers_step_s"], cfg.workers)
        m["workers_speedup"] = m["workers_runs_per_hour"] / m["baseline_runs_per_hour"]
    size = "smoke" if cfg.smoke else "cpu"
    return Outcome(m, dataset=f"synthetic Sudoku of the real shapes, HRM chapter {size} sizes (timing only)")


def _smoke() -> list[Config]:
    return [HRMBenchConfig(smoke=True, steps=3, warmup=1, workers=0, compile=False, n_test=16)]


def _cpu() -> list[Config]:
    return [HRMBenchConfig(model=m) for m in ("hrm", "transformer")]


EXPERIMENT = Experiment(
    name="bench_hrm",
    title="Benchmark: HRM-chapter run throughput on a CPU, one at a time vs worker processes vs torch.compile",
    config_cls=HRMBenchConfig,
    profiles={"smoke": _smoke, "cpu": _cpu},
    run=run,
    chapter="",
    runs_alone=True,
    cpu_threads=1,  # one thread per run: the sweeps' arrangement on a CPU
)
