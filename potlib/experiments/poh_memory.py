"""Peak training memory of the PoH parser against inner iterations T, per gradient mode (chapter 3.1).

Backs the memory column of seed ``000_210321fedb7a455c.txt`` section 7 (published: 1.0 / 3.0 / 1.1 /
1.1x for T=1, 3 full, 3 last, 5 last), which the original never measured (SPEC section 3.1).

No training is needed to measure memory: a fresh parser takes ``steps`` training steps (forward,
loss, backward, clipping) on the first ``steps * batch_size`` sentences of UD EWT train in file
order, and ``potlib.parser_train.train`` measures every step, for the whole model and for the PoH
block alone (``potlib.parser_train`` docstring). Metrics: max over steps of both, in bytes, and the
method (``memory_kind``: CUDA allocator or CPU tensor tracker; never mixed in one comparison).

Grid: vanilla block; T in {1, 2, 3, 5, 8} x {full, last_detach, last_nograd} (T=1 once): 14 configs;
the cpu profile measures 2 steps with PyTorch's CPU tensor tracker, the gpu profile 3 steps with the
CUDA allocator. Runtime cpu: about 20-40 s per config on one thread of a shared 2-core CPU.

    python -m potlib run poh_memory --profile smoke
    python -m potlib run poh_memory --profile cpu
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from potlib.config import Config
from potlib.experiments import Experiment
from potlib.runtime import Outcome
from potlib.models.encoder import DEFAULT_ENCODER
from potlib.models.poh import GRAD_MODES, GradMode
from potlib.runtime import set_seed


@dataclass(frozen=True)
class PoHMemoryConfig(Config):
    seed: int = 42
    block: Literal["vanilla", "poh"] = "poh"
    max_inner_iters: int = 1  # T (fixed halting)
    grad_mode: GradMode = "full"  # see potlib.models.poh.GRAD_MODE_DOC
    encoder: str = DEFAULT_ENCODER
    batch_size: int = 32  # sentences per step, as published
    steps: int = 2  # measured training steps
    max_words: int = 0  # keep sentences with <= this many words (0 = all); smoke only

    def check(self) -> None:
        self.require(1 <= self.max_inner_iters <= 64, "max_inner_iters", "an int in [1, 64]")
        if self.block == "vanilla" or self.max_inner_iters == 1:
            self.require(self.grad_mode == "full", "grad_mode", "'full' for the vanilla block or T = 1")
        if self.block == "vanilla":
            self.require(self.max_inner_iters == 1, "max_inner_iters", "1 for the vanilla block")
        self.require(self.batch_size >= 1, "batch_size", "an int >= 1")
        self.require(self.steps >= 1, "steps", "an int >= 1")
        self.require(self.max_words >= 0, "max_words", "an int >= 0")


def run(cfg: PoHMemoryConfig, device: torch.device) -> Outcome:
    from potlib.data.ud import dataset_info, load_ud_ewt
    from potlib.parser_train import Parser, summarize_memory, train

    sents = load_ud_ewt("train")
    if cfg.max_words:
        sents = [s for s in sents if len(s.words) <= cfg.max_words]
    sents = sents[: cfg.steps * cfg.batch_size]
    set_seed(cfg.seed)
    model = Parser(encoder=cfg.encoder, block=cfg.block, max_inner_iters=cfg.max_inner_iters,
                   grad_mode=cfg.grad_mode).to(device)
    res = train(model, sents, sents[:1], batch_size=cfg.batch_size, epochs=1, memory_every=1, device=device)
    m_max, m_mean = summarize_memory(res.model_peaks)
    b_max, b_mean = summarize_memory(res.block_peaks)
    ds = dataset_info()
    return Outcome(
        metrics={"peak_mem_model_max_bytes": m_max, "peak_mem_model_mean_bytes": m_mean,
                 "peak_mem_block_max_bytes": b_max, "peak_mem_block_mean_bytes": b_mean,
                 "memory_kind": res.memory_kind, "words": sum(len(s.words) for s in sents),
                 "n_params": sum(p.numel() for p in model.parameters())},
        dataset=ds["dataset"], dataset_sha256=ds["sha256"],
        peak_memory_bytes=int(m_max), peak_memory_kind=res.memory_kind,
    )


def _grid(**base) -> list[PoHMemoryConfig]:
    out = [PoHMemoryConfig(block="vanilla", **base), PoHMemoryConfig(max_inner_iters=1, **base)]
    out += [PoHMemoryConfig(max_inner_iters=T, grad_mode=m, **base) for T in (2, 3, 5, 8) for m in GRAD_MODES]
    return out


def _smoke() -> list[PoHMemoryConfig]:
    return [c for c in _grid(batch_size=4, steps=1, max_words=10) if c.max_inner_iters <= 2]


def _gpu() -> list[PoHMemoryConfig]:
    return _grid(steps=3)  # CUDA allocator peaks; a distinct grid, so cpu and gpu rows never share a cfg_id


PROFILES = {"smoke": _smoke, "cpu": _grid, "gpu": _gpu}

EXPERIMENT = Experiment(
    name="poh_memory",
    title="PoH parser: measured peak training memory against inner iterations, per gradient mode",
    config_cls=PoHMemoryConfig,
    profiles=PROFILES,
    run=run,
    chapter="3.1",
    uses_gpu=True,  # on a GPU machine it measures the CUDA allocator, as SPEC 3.1 asks
)
