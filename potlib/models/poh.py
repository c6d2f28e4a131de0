"""The Pointer-over-Heads (PoH) block and the vanilla Transformer block it is compared with.

Source: Eran-BA/PoT, ``pointer_over_heads_transformer.py`` (``PointerMoHTransformerBlock``) as used
by ``ab_ud_pointer_vs_baseline.py``; SPEC section 3.1. Only the settings of the parser experiments
are kept: 8 heads, ``mask_concat`` combination, recurrent controller with ``mean`` summary, pre-norm,
no dropout inside the PoH block (the original parser never passes one), dropout 0.1 in the vanilla
block. Halting, a named choice (``HALTING_DOC``): ``fixed`` (exactly ``max_inner_iters`` iterations,
with soft routing our **[reconstructed]** reading of the published table) or ``entropy`` (the
original's command-line default: stop once the mean routing entropy falls below 0.8 nats).

PoH block, weights shared across the T inner iterations::

    ctx_0     = LN1(x)
    heads_t   = per-head self-attention outputs of ctx_t            # (B, N, H, Dh), kept separate
    logits_t  = MLP_s(LN_c(ctx_t)) + MLP_r([LN_c(ctx_t) ; mean_Dh(heads_t)])     # (B, N, H)
    alpha_t   = softmax(logits_t / 0.7)   (or top-k Gumbel, straight-through)
    ctx_{t+1} = W_o(concat_h alpha_t[h] * heads_t[h])              # no residual between iterations
    y = x + ctx_T ;  y = y + FFN(LN2(y))

``GradMode`` names how the gradient crosses the inner loop (the subject of chapter 3.1).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

GradMode = Literal["full", "last_detach", "last_nograd"]
Halting = Literal["fixed", "entropy"]
HALTING_MODES: tuple[str, ...] = ("fixed", "entropy")
HALTING_DOC = """When the inner loop of the PoH block stops.

- ``fixed``: exactly ``max_inner_iters`` iterations. Our **[reconstructed]** reading of the published
  table (seed 000 section 7 names T as "iterations", which only a fixed loop guarantees).
- ``entropy``: the original's default (PoT ``ab_ud_pointer_vs_baseline.py`` at c0f1ee6:
  ``--halting_mode entropy --ent_threshold 0.8``, never overridden by the documented commands).
  After each iteration the mean over all positions (padding included) of the entropy, in nats, of
  softmax(routing logits) over the heads is computed without gradient; the loop stops when it is
  below the threshold. The decision is one per batch. Because ``last_*`` modes cut the state after
  every iteration but the planned last one, a loop that stops early under ``last_detach`` or
  ``last_nograd`` hands the residual a state with no graph: attention, controller and LN1 then get
  **no gradient at all** for that step. Deep supervision (``collect_all``) disables halting, as in
  the original.
"""
GRAD_MODES: tuple[str, ...] = ("full", "last_detach", "last_nograd")
GRAD_MODE_DOC = """How the gradient crosses the T inner iterations of the PoH block.

- ``full``: backpropagation through time over all T iterations (Werbos 1990); activations of
  every iteration are kept for the backward pass, so memory grows with T.
- ``last_detach``: last-iterate gradient **as the original implements it** (PoT
  ``pointer_over_heads_transformer.py``: ``token_ctx_next = token_ctx_next.detach()`` for
  ``it < max_iters - 1``). The gradient equals the one-step truncation, but early iterations still
  build autograd graphs, and the per-iteration routing weights the block returns (``aux``) keep
  them alive until the caller drops ``aux``: the memory saving is not guaranteed.
- ``last_nograd``: last-iterate gradient **the HRM way** (Wang et al. 2025, arXiv 2506.21734,
  "one-step gradient"): iterations 1..T-1 run under ``torch.no_grad()``, only the last one builds a
  graph, so activation memory is that of T=1. Same gradient as ``last_detach``.

With T = 1 the three modes coincide. ``last_*`` is truncated BPTT of length 1; it is the k=0 term of
the Neumann series of the implicit (fixed-point) gradient (Bai et al. 2019; Fung et al. 2022).
"""


def gumbel_topk_straight_through(logits: torch.Tensor, tau: float, k: int) -> torch.Tensor:
    """Top-k Gumbel-softmax with the straight-through estimator, renormalised to sum to 1.

    Forward: a k-hot vector / k; backward: the gradient of the soft Gumbel sample (as the original).
    """
    g = -torch.empty_like(logits).exponential_().log()  # Gumbel(0, 1) noise
    y_soft = F.softmax((logits + g) / max(tau, 1e-6), dim=-1)
    idx = y_soft.topk(min(k, y_soft.size(-1)), dim=-1).indices
    hard = torch.zeros_like(y_soft).scatter_(-1, idx, 1.0)
    y = hard + (y_soft - y_soft.detach())
    return y / (y.sum(dim=-1, keepdim=True) + 1e-8)


class HeadwiseSelfAttention(nn.Module):
    """Multi-head self-attention that returns the per-head outputs before concatenation."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model = {d_model} is not allowed: must be divisible by n_heads = {n_heads}")
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)  # W_o, applied after routing

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, N, D = x.shape
        H, Dh = self.n_heads, self.d_head
        q = self.q(x).view(B, N, H, Dh).transpose(1, 2)  # (B, H, N, Dh)
        k = self.k(x).view(B, N, H, Dh).transpose(1, 2)
        v = self.v(x).view(B, N, H, Dh).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(Dh)  # (B, H, N, N)
        if key_padding_mask is not None:  # (B, N) True = real word
            scores = scores.masked_fill(~key_padding_mask[:, None, None, :], float("-inf"))
        heads = F.softmax(scores, dim=-1) @ v  # (B, H, N, Dh)
        return heads.transpose(1, 2)  # (B, N, H, Dh)


class PointerController(nn.Module):
    """Routing logits over heads: a static MLP of LN(state) plus a recurrent MLP of
    [LN(state) ; per-head mean of the provisional head outputs] (the original's ``recurrent=True``,
    which the parser always uses)."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        hid = max(32, d_model // 2)
        self.ln = nn.LayerNorm(d_model)
        self.mlp_static = nn.Sequential(nn.Linear(d_model, hid), nn.GELU(), nn.Linear(hid, n_heads))
        self.mlp_recur = nn.Sequential(nn.Linear(d_model + n_heads, hid), nn.GELU(), nn.Linear(hid, n_heads))

    def forward(self, ctx: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
        h = self.ln(ctx)  # (B, N, D)
        summary = heads.mean(dim=-1)  # (B, N, H)
        return self.mlp_static(h) + self.mlp_recur(torch.cat([h, summary], dim=-1))  # (B, N, H)


class PoHBlock(nn.Module):
    """Pointer-over-Heads block; see the module docstring for the equations, ``HALTING_DOC`` for
    when the inner loop stops and ``GRAD_MODE_DOC`` (below) for how the gradient crosses it."""

    def __init__(
        self,
        d_model: int,
        n_heads: int = 8,
        d_ff: int = 2048,
        max_inner_iters: int = 1,
        grad_mode: GradMode = "full",
        routing_tau: float = 0.7,
        routing_topk: int = 0,  # 0 = soft routing; k > 0 = hard top-k Gumbel, straight-through
        halting: Halting = "fixed",  # see HALTING_DOC
        ent_threshold: float = 0.8,  # nats; used by halting="entropy" (the original's default)
    ):
        super().__init__()
        if halting not in HALTING_MODES:
            raise ValueError(f"halting = {halting!r} is not allowed; allowed: {', '.join(HALTING_MODES)}")
        if grad_mode not in GRAD_MODES:
            raise ValueError(f"grad_mode = {grad_mode!r} is not allowed; allowed: {', '.join(GRAD_MODES)}")
        if max_inner_iters < 1:
            raise ValueError(f"max_inner_iters = {max_inner_iters} is not allowed: must be >= 1")
        if not 0 <= routing_topk <= n_heads:
            raise ValueError(f"routing_topk = {routing_topk} is not allowed: must be in [0, {n_heads}]")
        self.n_heads, self.max_inner_iters, self.grad_mode = n_heads, max_inner_iters, grad_mode
        self.routing_tau, self.routing_topk = routing_tau, routing_topk
        self.halting, self.ent_threshold = halting, ent_threshold
        self.ln1 = nn.LayerNorm(d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mha = HeadwiseSelfAttention(d_model, n_heads)
        self.controller = PointerController(d_model, n_heads)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def route(self, logits: torch.Tensor) -> torch.Tensor:
        if self.routing_topk > 0:
            return gumbel_topk_straight_through(logits, self.routing_tau, self.routing_topk)
        return F.softmax(logits / self.routing_tau, dim=-1)

    def step(self, ctx: torch.Tensor, key_padding_mask: torch.Tensor | None = None):
        """One inner iteration, the map F: ctx_t -> ctx_{t+1}. Returns (ctx_next, alphas, logits)."""
        heads = self.mha(ctx, key_padding_mask)  # (B, N, H, Dh)
        logits = self.controller(ctx, heads)  # (B, N, H)
        alphas = self.route(logits)  # (B, N, H), rows sum to 1
        B, N, H, Dh = heads.shape
        mixed = (heads * alphas.unsqueeze(-1)).reshape(B, N, H * Dh)  # concat_h alpha_h * head_h
        return self.mha.out(mixed), alphas, logits  # (B, N, D)

    @torch.no_grad()
    def confident(self, logits: torch.Tensor) -> bool:
        """Entropy halting test: mean over (B, N) of H(softmax(logits)) over heads < ent_threshold."""
        p = F.softmax(logits, dim=-1)
        ent = -(p * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
        return bool(ent < self.ent_threshold)

    def finish(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        """Residual and FFN after the loop: y = x + ctx; y = y + FFN(LN2(y))."""
        y = x + ctx
        return y + self.ff(self.ln2(y))

    def forward(
        self,
        x: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        collect_all: bool = False,
    ) -> tuple[torch.Tensor, dict]:
        """x: (B, N, D) -> (y (B, N, D), aux).

        aux["alphas"], aux["logits"]: (B, T, N, H), stacked like the original's aux, which keeps the
        graphs of early iterations alive under ``last_detach`` (see ``GRAD_MODE_DOC``).
        ``collect_all`` adds aux["routed"], the list of ctx_1..ctx_T for deep supervision.
        """
        T = self.max_inner_iters
        if collect_all and self.grad_mode == "last_nograd" and T > 1 and torch.is_grad_enabled():
            raise ValueError(
                "collect_all (deep supervision) with grad_mode='last_nograd' is not allowed: early "
                "iterations run under no_grad, so their losses would carry no gradient; use "
                "'full' or 'last_detach'"
            )
        ctx = self.ln1(x)  # ctx_0, (B, N, D)
        alphas_hist, logits_hist, routed_hist = [], [], []
        for it in range(T):
            last = it == T - 1
            if self.grad_mode == "last_nograd" and not last:
                with torch.no_grad():  # HRM one-step gradient: no graph for early iterations
                    ctx, alphas, logits = self.step(ctx, key_padding_mask)
            else:
                if self.grad_mode == "last_nograd" and T > 1:
                    assert not ctx.requires_grad, "the carried state must have no graph"
                ctx_next, alphas, logits = self.step(ctx, key_padding_mask)
                routed_hist.append(ctx_next)
                # The original's cut: the next iteration sees a detached copy (graph kept alive).
                ctx = ctx_next.detach() if self.grad_mode == "last_detach" and not last else ctx_next
            alphas_hist.append(alphas)
            logits_hist.append(logits)
            if self.halting == "entropy" and not collect_all and it < T - 1 and self.confident(logits):
                break
        y = self.finish(x, ctx)
        aux = {
            "alphas": torch.stack(alphas_hist, dim=1),  # (B, T, N, H)
            "logits": torch.stack(logits_hist, dim=1),  # (B, T, N, H)
            "inner_iters_used": len(logits_hist),
        }
        if collect_all:
            aux["routed"] = routed_hist  # T tensors (B, N, D); ctx_T is the last
        return y, aux


PoHBlock.__doc__ += "\n\n" + HALTING_DOC + "\n" + GRAD_MODE_DOC


class VanillaBlock(nn.Module):
    """Pre-norm Transformer block: 8-head self-attention (dropout 0.1), GELU FFN, residuals."""

    def __init__(self, d_model: int, n_heads: int = 8, d_ff: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, dropout=dropout, batch_first=True)
        self.ln2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None, collect_all: bool = False):
        h = self.ln1(x)  # (B, N, D)
        pad = None if key_padding_mask is None else ~key_padding_mask  # nn.MHA: True = ignore
        a, _ = self.attn(h, h, h, key_padding_mask=pad, need_weights=False)
        x = x + a
        return x + self.ff(self.ln2(x)), {}


def deep_supervision_weights(T: int, device=None) -> torch.Tensor:
    """linspace(0.3, 1, T) normalised to sum 1 (PoT ``src/utils/iterative_losses.py``, 'linear')."""
    w = torch.linspace(0.3, 1.0, steps=T, device=device)
    return w / w.sum()
