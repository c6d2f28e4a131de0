"""Peak training memory of HRM's one-step gradient vs backprop through all steps (SPEC 3.2).

Source: seed ``001_42e08a1e02b2ff9f.txt`` ("BPTT and BP at Equilibrium": BPTT needs O(T) memory,
HRM's one-step gradient O(1)) and Wang et al. 2025 (arXiv 2506.21734) Sec. 2. The paper states the
memory argument but reports no measurement; this experiment measures it.

One training step (one segment: forward, ACT loss, backward) of an HRM with ``H_cycles * L_cycles``
low-level steps per segment, for ``grad_mode`` in {"one_step", "bptt"} (``potlib.models.hrm``),
measured with ``potlib.memory.track_peak`` (CUDA: ``max_memory_allocated`` above what was live
before the step; CPU: PyTorch's tensor MemTracker). A warm-up step runs first so that optimizer
and allocator state do not count. Metric ``peak_bytes``; ``steps_per_segment`` = H_cycles * L_cycles.
Expect one_step flat in the number of steps and bptt linear in it.

No training and no data set is needed: puzzles are synthetic (memory does not depend on the values).
Paper rows must come from the GPU (``uses_gpu``); the CPU tracker gives the same shape.

Budget: the paper's model (d=512, 4+4 layers) at batch 64, the sizes of HRM's Sudoku model except the
batch (HRM: 384 over 8 GPUs).

Profiles: ``gpu`` at batch 64 (12 runs, ~2 min on one H100, estimate; the largest BPTT point, 4 x 8
steps, needs ~30 GB); ``cpu`` the same model and grid at batch 4, measured with PyTorch's tensor
tracker (12 runs of two steps each); smoke 4 runs, ~1 s.

    python -m potlib run hrm_memory --profile smoke
    python -m potlib run hrm_memory --profile cpu --executor local --workers 2
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import torch

from potlib.experiments import Experiment
from potlib.runtime import Outcome
from potlib.hrm_train import HRMTrainConfig, autocast, build_model, make_optimizer, synthetic_split
from potlib.memory import track_peak
from potlib.models.hrm import act_loss

CYCLES = ((1, 1), (1, 2), (2, 2), (2, 4), (4, 4), (4, 8))  # (H_cycles, L_cycles) of the paper grid


@dataclass(frozen=True)
class MemoryConfig(HRMTrainConfig):
    data: Literal["sudoku", "synthetic"] = "synthetic"  # values do not matter for memory
    hidden_size: int = 512  # HRM's Sudoku model
    batch_size: int = 64

    def check(self) -> None:
        super().check()
        self.require(self.data == "synthetic", "data", "'synthetic' (memory does not depend on puzzles)")
        self.require(self.model == "hrm", "model", "'hrm'")


def _smoke() -> list[MemoryConfig]:
    base = MemoryConfig(hidden_size=32, num_heads=2, multiple_of=16, H_layers=1, L_layers=1, batch_size=4,
                        halt_max_steps=2)
    return [base.replace(grad_mode=g, H_cycles=h, L_cycles=l) for g in ("one_step", "bptt") for h, l in ((1, 1), (2, 2))]


def _gpu() -> list[MemoryConfig]:
    base = MemoryConfig()
    return [base.replace(grad_mode=g, H_cycles=h, L_cycles=l) for g in ("one_step", "bptt") for h, l in CYCLES]


def _cpu() -> list[MemoryConfig]:
    # the paper's model, batch 4: the largest BPTT point (4 x 8 steps) then needs ~2 GB, not ~30 GB
    base = MemoryConfig(batch_size=4)
    return [base.replace(grad_mode=g, H_cycles=h, L_cycles=l) for g in ("one_step", "bptt") for h, l in CYCLES]


def train_step(cfg: MemoryConfig, model, opt, state, x, y, device):
    with autocast(cfg, device):
        state, out = model(state, x, y)
        loss, _ = act_loss(out, state.labels, cfg.loss_type)
    opt.zero_grad(set_to_none=False)  # keep grad buffers allocated: the step measures activations
    loss.backward()
    opt.step()
    return state


def run(cfg: MemoryConfig, device: torch.device) -> Outcome:
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device).train()
    opt, _ = make_optimizer(cfg, model)
    x, y, _, _ = synthetic_split(cfg.batch_size, 1, 0, cfg.seed)
    x, y = x.to(device), y.to(device)
    state = model.initial_state(x, y)
    state = train_step(cfg, model, opt, state, x, y, device)  # warm-up: optimizer state, allocator
    t0 = time.perf_counter()
    with track_peak(device, (model,)) as peak:
        state = train_step(cfg, model, opt, state, x, y, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    metrics = {
        "peak_bytes": int(peak.bytes),
        "peak_mib": peak.mib,
        "steps_per_segment": cfg.H_cycles * cfg.L_cycles,
        "step_seconds": time.perf_counter() - t0,
        "n_params": sum(p.numel() for p in model.parameters()),
    }
    return Outcome(metrics=metrics, dataset="synthetic Sudoku (memory only)", peak_memory_bytes=int(peak.bytes),
                   peak_memory_kind=peak.kind)


EXPERIMENT = Experiment(
    name="hrm_memory",
    title="Peak memory of HRM's one-step gradient vs BPTT through all steps",
    config_cls=MemoryConfig,
    profiles={"smoke": _smoke, "cpu": _cpu, "gpu": _gpu},
    run=run,
    chapter="3.2",
    uses_gpu=True,
)
