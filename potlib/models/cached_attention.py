"""A small causal decoder with a key/value cache, for the frozen-context experiment (seed 002).

Three ways to take a gradient step on the decision tokens that follow a context (``context_mode``):

- ``full``: one forward pass over [context; decision] with autograd on, loss on the decision tokens.
- ``frozen``: the context is encoded under ``torch.no_grad()`` into per-layer cached keys and
  values (as with ``use_cache=True`` in a language model); only the decision tokens carry a graph.
- ``checkpoint``: like ``full``, but each block is wrapped in ``torch.utils.checkpoint`` so its
  activations are recomputed during backward instead of stored (Chen et al. 2016).

Forward values agree in all three (the model is causal); the gradients of ``full`` and ``checkpoint``
agree exactly, while ``frozen`` drops every path that runs through the context's own computation.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from potlib.models.stacks import SelfAttention

ContextMode = Literal["full", "frozen", "checkpoint"]
KV = tuple[torch.Tensor, torch.Tensor]


class CausalBlock(nn.Module):
    """Pre-norm block whose attention can prepend cached context keys/values."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads)
        self.ff_in, self.ff_out = nn.Linear(d_model, 4 * d_model), nn.Linear(4 * d_model, d_model)

    def forward(self, x: torch.Tensor, past: KV | None = None) -> tuple[torch.Tensor, KV]:
        """x (B, T, D); past: keys/values (B, H, Tc, Dh) of earlier positions -> (y, (k, v) of x)."""
        a = self.attn
        h = self.ln1(x)
        q, k, v = a.split(a.q(h)), a.split(a.k(h)), a.split(a.v(h))  # (B, H, T, Dh)
        T = x.shape[1]
        Tc = 0 if past is None else past[0].shape[2]
        k_all = k if past is None else torch.cat([past[0], k], dim=2)  # (B, H, Tc+T, Dh)
        v_all = v if past is None else torch.cat([past[1], v], dim=2)
        # position i of x sees every cached position and x's positions <= i
        mask = torch.ones(T, Tc + T, dtype=torch.bool, device=x.device).tril(diagonal=Tc)
        x = x + a.attend(q, k_all, v_all, mask)
        x = x + self.ff_out(F.gelu(self.ff_in(self.ln2(x))))
        return x, (k, v)


class CachedDecoder(nn.Module):
    def __init__(self, vocab: int, max_len: int, d_model: int, n_heads: int, n_layers: int):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(CausalBlock(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)

    def embed(self, idx: torch.Tensor, offset: int = 0) -> torch.Tensor:
        pos = torch.arange(offset, offset + idx.shape[1], device=idx.device)
        return self.tok(idx) + self.pos(pos)  # (B, T, D)

    def encode_context(self, ctx: torch.Tensor) -> list[KV]:
        """Per-layer (k, v) of the context; call under no_grad for the frozen mode."""
        h, cache = self.embed(ctx), []
        for block in self.blocks:
            h, kv = block(h)
            cache.append(kv)
        return cache

    def decode(self, dec: torch.Tensor, cache: list[KV]) -> torch.Tensor:
        h = self.embed(dec, offset=cache[0][0].shape[2])
        for block, past in zip(self.blocks, cache):
            h, _ = block(h, past)
        return self.head(self.ln_f(h))  # (B, Tdec, V)

    def full(self, seq: torch.Tensor, use_checkpoint: bool = False) -> torch.Tensor:
        h = self.embed(seq)
        for block in self.blocks:
            if use_checkpoint:
                h = checkpoint(lambda t, b=block: b(t)[0], h, use_reentrant=False)
            else:
                h, _ = block(h)
        return self.head(self.ln_f(h))  # (B, T, V)

    def forward(self, ctx: torch.Tensor, dec: torch.Tensor, target: torch.Tensor, mode: ContextMode) -> torch.Tensor:
        """Cross-entropy on the decision tokens only, under one of the three context modes."""
        if mode == "frozen":
            with torch.no_grad():
                cache = self.encode_context(ctx)
            logits = self.decode(dec, cache)
        else:
            logits = self.full(torch.cat([ctx, dec], dim=1), use_checkpoint=mode == "checkpoint")[:, ctx.shape[1]:]
        return F.cross_entropy(logits.flatten(0, 1), target.flatten())


def attention_weight_grad_check(n_keys: int, d: int, n_frozen: int, generator: torch.Generator) -> float:
    """Max |analytic - autograd| of d(alpha_ij)/d(q_i) for one query over frozen + live keys.

    Seed 002's formula: d alpha_ij / d q_i = alpha_ij (k_j - sum_l alpha_il k_l) / sqrt(d). The first
    ``n_frozen`` keys are constants (no grad), as cached context keys are.
    """
    q = torch.randn(d, generator=generator, dtype=torch.float64)
    k_frozen = torch.randn(n_frozen, d, generator=generator, dtype=torch.float64)  # no graph
    k_live = torch.randn(n_keys - n_frozen, d, generator=generator, dtype=torch.float64)
    k = torch.cat([k_frozen, k_live])  # (n, d)

    def alpha(qv: torch.Tensor) -> torch.Tensor:
        return torch.softmax(k @ qv / d**0.5, dim=0)  # (n,)

    jac = torch.autograd.functional.jacobian(alpha, q)  # (n, d)
    a = alpha(q)
    analytic = a[:, None] * (k - (a[:, None] * k).sum(0, keepdim=True)) / d**0.5  # (n, d)
    return float((jac - analytic).abs().max())
