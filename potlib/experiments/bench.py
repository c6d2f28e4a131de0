"""Benchmark: paper runs per hour of the credit experiments, one at a time vs replicas vs workers.

Backs no figure: it answers the performance issue "reproduce the whole book on one GPU in under
an hour" with measured numbers and a row carrying the usual provenance (device, commit, versions).
One row per (workload, replicas); the timing method is below. Metrics:
``baseline_runs_per_hour``, ``replicas_runs_per_hour``, ``speedup`` (replicas / baseline),
``graph_runs_per_hour`` and ``graph_speedup`` (CUDA graph replicas, CUDA only), ``workers_runs_per_hour``
and ``workers_speedup`` (``workers`` processes, when > 0), ``workers_replicas_runs_per_hour`` and
``workers_replicas_speedup`` (both at once: each of the ``workers`` processes trains ``replicas / workers``
seeds as one group, what ``--executor replicas`` does on a CPU), and the raw per-step / per-epoch-end /
final seconds of each. With ``repeats`` > 1 every arrangement is measured in that many interleaved rounds: the
timings and runs per hour are medians over rounds, each speed-up the median of the rounds' ratios to their own
round's baseline, and ``<speedup>_rounds`` lists those ratios. Rules: BP, DFA and the bridges SB and CB; a
bridge is timed past its DFA warmup (``progress = 1``, its own credit and its auxiliary network's update), the
part that costs. The experiment ``runs_alone``: a sweep runs its rows one at a time, nothing beside them.

Runtime: smoke ~3 s wall on a 2-core CPU including start-up (measured, OMP_NUM_THREADS=1; its
numbers are CPU numbers at shrunken evaluation sizes, not paper estimates); paper, 5 rows, a few
minutes on one H100 (estimate, not measured).

    python -m potlib run bench --profile smoke     # or: python -m potlib bench
    python -m potlib run bench --profile cpu       # the ladder's four rules, CIFAR-10 L=12 BP and CB (~15 min)
    python -m potlib run bench --profile gpu --force

Timing method. Every number is measured in one process on one device, then extrapolated to a full paper run:

    T_run = steps_per_run · t_step + epochs · t_epoch_end + t_final

with ``t_step`` the mean of ``steps`` timed training steps (after ``warmup`` untimed ones),
``t_epoch_end`` one end-of-epoch evaluation (test accuracy and CE, Γ and state norms on the metric
batch; the median of three calls) and ``t_final`` the final Γ/ρ metrics. Runs per hour = runs per group · 3600 / T_run.
On CUDA every timing is bracketed by ``torch.cuda.synchronize``.

- baseline: :func:`potlib.credit.train.train_step` on one config (what ``--executor inline`` does);
- replicas: :class:`potlib.credit.replicas.ReplicaTrainer` with R seeds of the same config; its
  final metrics are timed for one replica and multiplied by R;
- replicas + CUDA graph (CUDA only): the same with ``cuda_graph=True``;
- workers: P spawned processes run the baseline loop at the same time (start barrier); the
  slowest worker's step time counts, and end-of-epoch/final costs are taken from the baseline;
- workers + replicas: P processes each time a replica group of R/P seeds in full (start barrier before
  the timed steps); the slowest process's timings count.

The data are synthetic of the paper's shapes (the ladder teacher, or random CIFAR-shaped inputs):
timing does not depend on the values.

"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Literal

import torch

from potlib.credit.metrics import credit_metrics
from potlib.config import Config
from potlib.credit.train import CreditConfig, build, evaluate, train_step
from potlib.experiments import Experiment
from potlib.runtime import Outcome


@dataclass(frozen=True)
class Workload:
    """The shapes and length of one paper run."""

    d_in: int
    d: int
    n_layers: int
    n_classes: int
    n_train: int
    n_test: int
    epochs: int
    batch_size: int = 128
    metric_samples: int = 1024


WORKLOADS = {
    # credit_ladder / credit_ablations paper run at L = 4 (d = 128, 10k examples, 80 epochs)
    "ladder_L4": Workload(d_in=128, d=128, n_layers=4, n_classes=10, n_train=10000, n_test=2000, epochs=80),
    # credit_cifar paper run at L = 12 (3072 inputs, d = 512, 50k images, 100 epochs)
    "cifar_L12": Workload(d_in=3072, d=512, n_layers=12, n_classes=10, n_train=50000, n_test=10000, epochs=100),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_data(w: Workload, n_test: int, device, seed: int = 0):
    """Synthetic (x_train, y_train, x_test, y_test) of the workload's shapes on ``device``."""
    g = torch.Generator().manual_seed(seed)
    n = w.n_train + n_test
    if w.d_in == w.d:  # the ladder: a real teacher labels the inputs
        from potlib.credit.teacher import make_ladder

        x, y, xt, yt, _ = make_ladder(1.0, w.n_layers, w.d, w.n_classes, w.n_train, n_test, seed, device)
        return x, y, xt, yt
    x = torch.randn(n, w.d_in, generator=g).to(device)
    y = torch.randint(0, w.n_classes, (n,), generator=g).to(device)
    return x[: w.n_train], y[: w.n_train], x[w.n_train :], y[w.n_train :]


def base_config(w: Workload, method: str, metric_samples: int, seed: int = 42) -> CreditConfig:
    return CreditConfig(method=method, n_layers=w.n_layers, d=w.d, epochs=w.epochs, batch_size=w.batch_size,
                        metric_samples=metric_samples, seed=seed)


def _batches(n: int, bs: int, count: int, device, seed: int) -> torch.Tensor:
    gen = torch.Generator(device=device).manual_seed(seed)
    reps = math.ceil(count * bs / (n - n % bs))
    return torch.cat([torch.randperm(n, device=device, generator=gen)[: n - n % bs] for _ in range(reps)]).view(-1, bs)


# An end-of-epoch evaluation counts once per epoch (80 times a ladder run) but lasts under a second: one slow call
# on a shared machine used to move a whole row (bridge replicas' epoch end measured at 2.8 s against 0.7 s in
# other runs, 2026-12-01), so it is timed as the median of three calls
EPOCH_END_CALLS = 3


def median_seconds(fn, device) -> float:
    """The median wall time (seconds) of :data:`EPOCH_END_CALLS` calls of ``fn``."""
    times = []
    for _ in range(EPOCH_END_CALLS):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
PROGRESS = 1.0  # fraction of training done passed to every timed step: bridges past their DFA warmup


def _optimisers(cfg: CreditConfig, model, rule):
    """As :func:`potlib.credit.train.train`: AdamW for the forward net, Adam for a rule's own networks."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    aux_params = rule.aux_parameters()
    return opt, (torch.optim.Adam(aux_params, lr=cfg.aux_lr) if aux_params else None)


def time_baseline(cfg: CreditConfig, data, device, steps: int, warmup: int, n_classes: int = 10) -> dict[str, float]:
    """Seconds per training step, per end-of-epoch evaluation and for the final metrics; one config."""
    device = torch.device(device)
    x, y, xt, yt = data
    model, rule = build(cfg, x.shape[1], n_classes, device)
    opt, aux_opt = _optimisers(cfg, model, rule)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    idx = _batches(x.shape[0], cfg.batch_size, warmup + steps, device, cfg.seed)
    for i in range(warmup):
        train_step(model, rule, opt, aux_opt, x[idx[i]], y[idx[i]], PROGRESS, cfg.credit_norm)
        sched.step()
    _sync(device)
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        train_step(model, rule, opt, aux_opt, x[idx[i]], y[idx[i]], PROGRESS, cfg.credit_norm)
        sched.step()
    _sync(device)
    t_step = (time.perf_counter() - t0) / steps
    m = min(cfg.metric_samples, xt.shape[0])

    def epoch_end():
        evaluate(model, xt, yt)
        credit_metrics(model, rule, xt[:m], yt[:m], with_rho=False)
        with torch.no_grad():
            [float(h.norm(dim=-1).mean()) for h in model.states(xt[:m])]

    t_epoch = median_seconds(epoch_end, device)
    t0 = time.perf_counter()
    credit_metrics(model, rule, xt[:m], yt[:m], eps=cfg.metric_eps, n_dirs=cfg.metric_dirs,
                   generator=torch.Generator(device=device).manual_seed(0))
    _sync(device)
    return {"step_s": t_step, "epoch_end_s": t_epoch, "final_s": time.perf_counter() - t0}


def time_replicas(cfg: CreditConfig, data, device, replicas: int, steps: int, warmup: int,
                  cuda_graph: bool = False, n_classes: int = 10, first_seed: int = 0, barrier=None) -> dict[str, float]:
    """As :func:`time_baseline` for R seeds of ``cfg`` (from ``cfg.seed + first_seed``) trained as one replica
    group; with a ``barrier``, the timed steps start when every process holding it is ready."""
    from potlib.credit.replicas import ReplicaTrainer

    device = torch.device(device)
    cfgs = [cfg.replace(seed=cfg.seed + first_seed + r) for r in range(replicas)]
    tr = ReplicaTrainer(cfgs, data, device, n_classes=n_classes, cuda_graph=cuda_graph)
    n = tr.train_split.n
    idx = torch.stack([_batches(n, cfg.batch_size, warmup + steps, device, c.seed)[: warmup + steps] for c in cfgs], 1)
    for i in range(warmup):  # (R, B) per step
        tr.step(idx[i], PROGRESS)
    _sync(device)
    if barrier is not None:
        barrier.wait()
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        tr.step(idx[i], PROGRESS)
    _sync(device)
    t_step = (time.perf_counter() - t0) / steps

    def epoch_end():
        acc, loss = tr.evaluate()
        gam, nrm = tr.epoch_gamma_and_norms()
        acc.tolist(), loss.tolist(), gam.tolist(), nrm.tolist()

    t_epoch = median_seconds(epoch_end, device)
    x_m, y_m = tr.test_split.head(tr.m)
    t0 = time.perf_counter()
    credit_metrics(tr.net.replica(0), tr.rules[0], x_m[0], y_m[0], eps=cfg.metric_eps, n_dirs=cfg.metric_dirs,
                   generator=torch.Generator(device=device).manual_seed(0))
    _sync(device)
    return {"step_s": t_step, "epoch_end_s": t_epoch, "final_s": (time.perf_counter() - t0) * replicas}


def _worker(cfg_dict: dict, workload: str, n_test: int, device: str, steps: int, warmup: int,
            barrier, queue) -> None:
    """One process of :func:`time_workers`: build, warm up, wait for all, time the steps."""
    if device == "cpu":
        torch.set_num_threads(1)
    cfg, dev, w = CreditConfig.from_dict(cfg_dict), torch.device(device), WORKLOADS[workload]
    x, y, *_ = make_data(w, n_test, dev)
    model, rule = build(cfg, x.shape[1], w.n_classes, dev)
    opt, aux_opt = _optimisers(cfg, model, rule)
    idx = _batches(x.shape[0], cfg.batch_size, warmup + steps, dev, cfg.seed)
    for i in range(warmup + steps):
        if i == warmup:
            _sync(dev)
            barrier.wait()  # all workers time their steps over the same wall-clock window
            t0 = time.perf_counter()
        train_step(model, rule, opt, aux_opt, x[idx[i]], y[idx[i]], PROGRESS, cfg.credit_norm)
    _sync(dev)
    queue.put((time.perf_counter() - t0) / steps)


def _replica_worker(cfg_dict: dict, workload: str, n_test: int, device: str, replicas: int, first_seed: int,
                    steps: int, warmup: int, barrier, queue) -> None:
    """One process of :func:`time_workers` with replicas: its own group of ``replicas`` seeds, timed in full."""
    if device == "cpu":
        torch.set_num_threads(1)
    w, dev = WORKLOADS[workload], torch.device(device)
    t = time_replicas(CreditConfig.from_dict(cfg_dict), make_data(w, n_test, dev), dev, replicas, steps, warmup,
                      n_classes=w.n_classes, first_seed=first_seed, barrier=barrier)
    queue.put(t)


def time_workers(cfg: CreditConfig, workload: str, n_test: int, device, workers: int, steps: int,
                 warmup: int, replicas_per_worker: int = 0):
    """Seconds per step of the slowest of ``workers`` spawned processes running the baseline at once; with
    ``replicas_per_worker``, each process trains its own replica group instead and the slowest process's
    ``{step_s, epoch_end_s, final_s}`` (as :func:`time_replicas`) is returned."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(workers), ctx.Queue()
    if replicas_per_worker:
        procs = [ctx.Process(target=_replica_worker, args=(cfg.to_dict(), workload, n_test, str(device),
                                                           replicas_per_worker, i * replicas_per_worker, steps,
                                                           warmup, barrier, queue))
                 for i in range(workers)]
    else:
        procs = [
            ctx.Process(target=_worker, args=(cfg.replace(seed=cfg.seed + i).to_dict(), workload, n_test, str(device),
                                              steps, warmup, barrier, queue))
            for i in range(workers)
        ]
    for p in procs:
        p.start()
    try:
        times = [queue.get(timeout=1800) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)
    if replicas_per_worker:
        return {k: max(t[k] for t in times) for k in times[0]}
    return max(times)


def runs_per_hour(w: Workload, t: dict[str, float], runs: int = 1) -> float:
    """Paper runs per hour from per-step, per-epoch-end and final timings of a group of ``runs``."""
    steps = (w.n_train // w.batch_size) * w.epochs
    total = steps * t["step_s"] + w.epochs * t["epoch_end_s"] + t["final_s"]
    return runs * 3600.0 / total





@dataclass(frozen=True)
class BenchConfig(Config):
    workload: Literal["ladder_L4", "cifar_L12"] = "ladder_L4"  # paper run to extrapolate to (see the timing method above)
    method: Literal["BP", "DFA", "SB", "CB"] = "BP"  # credit rule timed (bridges past their warmup)
    replicas: int = 16  # R configs (seeds) per replica group
    steps: int = 100  # timed training steps per measurement
    warmup: int = 10  # untimed steps first (>= 4 for the CUDA graph capture)
    workers: int = 0  # processes running the baseline at once; 0 skips the measurement
    cuda_graph: bool = True  # on CUDA, also time replicas with a captured CUDA graph
    n_test: int = 0  # test examples timed at each epoch end; 0 means the workload's own
    metric_samples: int = 0  # samples of Γ/ρ; 0 means the workload's own (1024)
    repeats: int = 1  # rounds of every measurement, interleaved; the metrics are medians over rounds

    def check(self) -> None:
        r = self.require
        r(self.replicas >= 1, "replicas", "an int >= 1")
        r(self.steps >= 1, "steps", "an int >= 1")
        r(self.repeats >= 1, "repeats", "an int >= 1")
        r(self.warmup >= 0, "warmup", "an int >= 0")
        r(self.workers >= 0, "workers", "an int >= 0 (0 skips)")
        r(self.n_test >= 0, "n_test", "an int >= 0 (0 means the workload's)")
        r(self.metric_samples >= 0, "metric_samples", "an int >= 0 (0 means the workload's)")


def run(cfg: BenchConfig, device: torch.device) -> Outcome:
    """Every arrangement of ``cfg``, timed (on a CPU with one thread per run: ``EXPERIMENT.cpu_threads``)."""
    w = WORKLOADS[cfg.workload]
    n_test = cfg.n_test or w.n_test
    base = base_config(w, cfg.method, cfg.metric_samples or w.metric_samples)
    data = make_data(w, n_test, device)
    cuda = torch.device(device).type == "cuda"
    per = cfg.replicas // cfg.workers if cfg.workers else 0  # replicas per worker process, for "both"
    # each arm: () -> (timings of one group, runs in that group); "workers" reuses its round's baseline
    # epoch-end and final costs (every worker runs the baseline loop)
    arms = {
        "baseline": lambda: (time_baseline(base, data, device, cfg.steps, cfg.warmup, w.n_classes), 1),
        "replicas": lambda: (time_replicas(base, data, device, cfg.replicas, cfg.steps, cfg.warmup,
                                           n_classes=w.n_classes), cfg.replicas),
    }
    if cfg.cuda_graph and cuda:
        arms["graph"] = lambda: (time_replicas(base, data, device, cfg.replicas, cfg.steps, max(cfg.warmup, 4),
                                               cuda_graph=True, n_classes=w.n_classes), cfg.replicas)
    if cfg.workers > 0:
        arms["workers"] = lambda: ({"step_s": time_workers(base, cfg.workload, n_test, device, cfg.workers,
                                                           cfg.steps, cfg.warmup)}, cfg.workers)
        if per:  # both: each process trains its share of the replicas as one group
            arms["workers_replicas"] = lambda: (time_workers(base, cfg.workload, n_test, device, cfg.workers,
                                                             cfg.steps, cfg.warmup, per), per * cfg.workers)
    # rounds interleave the arms (ABC, CBA, ABC, ...): a slow spell of a shared machine lands on every arm
    # alike, and each round's ratios compare measurements minutes apart
    rounds: dict[str, list[dict[str, float]]] = {k: [] for k in arms}
    runs: dict[str, int] = {}
    for i in range(cfg.repeats):
        for k in (list(arms) if i % 2 == 0 else list(reversed(arms))):
            t, runs[k] = arms[k]()
            rounds[k].append(t)
    if "workers" in rounds:
        for t, b in zip(rounds["workers"], rounds["baseline"]):
            t.update(epoch_end_s=b["epoch_end_s"], final_s=b["final_s"])
    rph = {k: [runs_per_hour(w, t, runs[k]) for t in ts] for k, ts in rounds.items()}
    m: dict = {"device_kind": torch.device(device).type, "steps_per_run": (w.n_train // w.batch_size) * w.epochs,
               "repeats": cfg.repeats}
    for k, ts in rounds.items():
        m[f"{k}_runs_per_hour"] = statistics.median(rph[k])
        m.update({f"{k}_{part}": statistics.median(t[part] for t in ts) for part in ts[0]})
        if k != "baseline":  # the median of each round's ratio to that round's baseline
            name = "speedup" if k == "replicas" else f"{k}_speedup"
            ratios = [a / b for a, b in zip(rph[k], rph["baseline"])]
            m[name], m[f"{name}_rounds"] = statistics.median(ratios), ratios
    return Outcome(m, dataset=f"synthetic data of the {cfg.workload} shapes (timing only)")


def _smoke() -> list[Config]:
    return [BenchConfig(replicas=4, steps=10, warmup=2, n_test=256, metric_samples=64)]


def _cpu() -> list[Config]:
    # the ladder grid's replica group: 4 α x 3 seeds of one (rule, depth); two 1-thread workers, one per core.
    # Three interleaved rounds of 150 timed steps (1-40 s a measurement), medians: single measurements of rows
    # that a sweep ran two at a time (1268e76) put two workers anywhere from 0.88x to 2.75x one run alone
    ladder = [BenchConfig(workload="ladder_L4", method=m, replicas=12, steps=150, warmup=5, workers=2, cuda_graph=False,
                          repeats=3)
              for m in ("BP", "DFA", "SB", "CB")]
    # the CIFAR-10 grid at L = 12 (one seed per rule and depth: BP and DFA share a group of 2, a bridge runs alone);
    # one round: its final metrics take half a minute an arrangement, and grouping's loss there (0.86x-0.89x in three
    # rounds each, 2026-12-01) is far outside the noise
    cifar = [BenchConfig(workload="cifar_L12", method=m, replicas=2, steps=20, warmup=3, workers=2, cuda_graph=False)
             for m in ("BP", "CB")]
    return ladder + cifar


def _gpu() -> list[Config]:
    return ([BenchConfig(workload="ladder_L4", replicas=r, workers=4 if r == 32 else 0) for r in (8, 32, 96)]
            + [BenchConfig(workload="cifar_L12", replicas=r, workers=2 if r == 4 else 0) for r in (4, 12)])


EXPERIMENT = Experiment(
    name="bench",
    title="Benchmark: credit-run throughput, one at a time vs replicas vs worker processes",
    config_cls=BenchConfig,
    profiles={"smoke": _smoke, "cpu": _cpu, "gpu": _gpu},
    run=run,
    chapter="",
    uses_gpu=True,
    runs_alone=True,
    cpu_threads=1,  # one thread per run: the sweeps' arrangement on a CPU (one run per core)
)
