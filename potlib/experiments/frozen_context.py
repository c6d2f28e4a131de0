"""Frozen context vs full backprop vs gradient checkpointing: which parameters learn, at what memory.

Backs the gradient-flow chapter's frozen-context table and memory figure (SPEC section 3.4; seed 002,
"Gradient Flow Through Frozen Context"). A small causal decoder reads ``n_ctx`` context tokens and
``n_dec`` decision tokens; the loss is on the decision tokens. For each context mode
(``potlib.models.cached_attention``) we measure, against the full-backprop gradient of the same batch:

- per parameter tensor: the gradient norm and its relative error ``|g_mode - g_full| / |g_full|``;
- how many token-embedding rows receive any gradient (the context-only tokens should not, when frozen);
- the peak memory of one forward+backward (``potlib.memory``) and its wall time;
- the seed's closed form of d(alpha_ij)/d(q_i) against autograd, with frozen keys among the keys.

Runtime: smoke ~2 s; paper 15 configs, ~3 min on an idle 2-core CPU (wall times are indicative: the
machine that produced the committed rows was shared).

    python -m potlib run frozen_context --profile smoke
    python -m potlib run frozen_context --profile paper
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from potlib.config import Config, grid
from potlib.experiments import Experiment
from potlib.runtime import Outcome
from potlib.memory import track_peak
from potlib.models.cached_attention import CachedDecoder, ContextMode, attention_weight_grad_check


@dataclass(frozen=True)
class FrozenContextConfig(Config):
    mode: ContextMode = "frozen"
    n_ctx: int = 256  # context tokens
    n_dec: int = 32  # decision tokens (carry the loss)
    vocab: int = 512  # large enough that many tokens occur only in the context
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    batch_size: int = 4
    timing_reps: int = 3  # forward+backward repetitions, median wall time reported

    def check(self) -> None:
        self.require(self.n_ctx >= 1, "n_ctx", ">= 1")
        self.require(self.n_dec >= 1, "n_dec", ">= 1")
        self.require(self.d_model % self.n_heads == 0, "d_model", "a multiple of n_heads")
        self.require(self.timing_reps >= 1, "timing_reps", ">= 1")


def _grads(model: CachedDecoder, ctx, dec, target, mode: ContextMode) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    model(ctx, dec, target, mode).backward()
    return {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)) for n, p in model.named_parameters()}


def run(cfg: FrozenContextConfig, device: torch.device) -> Outcome:
    model = CachedDecoder(cfg.vocab, cfg.n_ctx + cfg.n_dec, cfg.d_model, cfg.n_heads, cfg.n_layers).to(device)
    g = torch.Generator().manual_seed(cfg.seed)
    # decision tokens come from the lower half of the vocabulary, context from all of it:
    # the upper half occurs only in the context.
    ctx = torch.randint(0, cfg.vocab, (cfg.batch_size, cfg.n_ctx), generator=g).to(device)
    dec = torch.randint(0, cfg.vocab // 2, (cfg.batch_size, cfg.n_dec), generator=g).to(device)
    target = torch.randint(0, cfg.vocab // 2, (cfg.batch_size, cfg.n_dec), generator=g).to(device)

    reference = _grads(model, ctx, dec, target, "full")
    grads = _grads(model, ctx, dec, target, cfg.mode)
    names = list(reference)
    ref_norm = np.array([float(reference[n].norm()) for n in names])
    mode_norm = np.array([float(grads[n].norm()) for n in names])
    rel_err = np.array([float((grads[n] - reference[n]).norm() / reference[n].norm().clamp_min(1e-30)) for n in names])
    tok_rows = grads["tok.weight"].abs().sum(1) > 0
    ctx_only = torch.ones(cfg.vocab, dtype=torch.bool, device=device)
    ctx_only[dec.unique()] = False

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(ctx, dec, target, cfg.mode).backward()

    # Time first: the CPU memory tracker leaves hooks that slow later steps down.
    step()  # warm-up
    times = []
    for _ in range(cfg.timing_reps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    with track_peak(device, (model,)) as peak:
        step()

    def ratio(*suffixes: str) -> float:
        """|g_mode| / |g_full| over every tensor whose name ends in one of ``suffixes`` (all layers)."""
        sel = [n for n in names if n.endswith(suffixes)]
        return math.sqrt(sum(float(grads[n].pow(2).sum()) for n in sel) / sum(float(reference[n].pow(2).sum()) for n in sel))

    flat_ref = torch.cat([reference[n].flatten() for n in names])
    flat = torch.cat([grads[n].flatten() for n in names])
    metrics = {
        "peak_memory_mib": peak.mib,
        "activation_memory_mib": peak.by_category.get("act", float("nan")) / 2**20 if device.type == "cpu" else float("nan"),
        "step_ms": 1000 * float(np.median(times)),
        "grad_rel_err_total": float((flat - flat_ref).norm() / flat_ref.norm()),
        "grad_cosine_total": float(torch.nn.functional.cosine_similarity(flat, flat_ref, dim=0)),
        # which projections keep their gradient: seed 002 says learning moves through W_q
        "grad_ratio_wq": ratio("attn.q.weight"),
        "grad_ratio_wk": ratio("attn.k.weight"),
        "grad_ratio_wv": ratio("attn.v.weight"),
        "grad_ratio_wo": ratio("attn.o.weight"),
        "params_with_grad": int(sum(float(grads[n].abs().sum()) > 0 for n in names)),
        "params_total": len(names),
        "tok_rows_with_grad": int(tok_rows.sum()),
        "ctx_only_tok_rows_with_grad": int((tok_rows & ctx_only).sum()),
        "ctx_only_tok_rows": int(ctx_only.sum()),
        "dalpha_dq_max_abs_err": attention_weight_grad_check(cfg.n_ctx + cfg.n_dec, cfg.d_model // cfg.n_heads, cfg.n_ctx, g),
    }
    artifacts = {"param_names": np.array(names), "grad_norm_full": ref_norm, "grad_norm_mode": mode_norm, "grad_rel_err": rel_err}
    return Outcome(metrics, artifacts, dataset="synthetic random tokens (generated from the seed)",
                   peak_memory_bytes=peak.bytes, peak_memory_kind=peak.kind)


def _smoke() -> list[Config]:
    base = FrozenContextConfig(n_ctx=16, n_dec=4, vocab=32, d_model=16, n_heads=2, n_layers=2, batch_size=2, timing_reps=1)
    return grid(base, mode=("full", "frozen", "checkpoint"))


def _cpu() -> list[Config]:
    return grid(FrozenContextConfig(), mode=("full", "frozen", "checkpoint"), n_ctx=(64, 128, 256, 512, 1024))


EXPERIMENT = Experiment(
    name="frozen_context",
    title="Frozen context (cached K/V under no_grad) vs full backprop vs checkpointing",
    config_cls=FrozenContextConfig,
    profiles={"smoke": _smoke, "cpu": _cpu},
    run=run,
    chapter="gradient_flow",
)
