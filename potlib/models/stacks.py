"""Small Transformer stacks for the gradient-flow chapter (seed 004, SPEC section 3.4).

Three residual layouts, one named choice (``norm``):

- ``pre_norm``:  ``x = x + f(LN(x))`` -- the modern default (GPT-2 onwards); the residual stream is
  never normalised, so the identity path carries the gradient unchanged.
- ``post_norm``: ``x = LN(x + f(x))`` -- the original Transformer (Vaswani et al. 2017); every layer
  normalises the residual stream, and with it the gradient.
- ``no_residual``: ``x = f(LN(x))`` -- pre-norm without the skip, the control that shows what the
  residual path buys.

``output_scaling`` applies GPT-2's initialisation of the projections that write into the residual
stream: std 0.02/sqrt(2 * n_layers) instead of 0.02 (Radford et al. 2019), so the stream's variance
does not grow with depth.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["pre_norm", "post_norm", "no_residual"]


class SelfAttention(nn.Module):
    """Multi-head attention with explicit q/k/v/o projections (so each can be inspected)."""

    def __init__(self, d_model: int, n_heads: int, scaled: bool = True):
        super().__init__()
        assert d_model % n_heads == 0, "d_model must be divisible by n_heads"
        self.n_heads, self.d_head, self.scaled = n_heads, d_model // n_heads, scaled
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.o = nn.Linear(d_model, d_model)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)  # (B, H, T, Dh)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """q (B, H, Tq, Dh), k/v (B, H, Tk, Dh) -> (B, Tq, D)."""
        scores = q @ k.transpose(-2, -1)  # (B, H, Tq, Tk)
        if self.scaled:
            scores = scores / math.sqrt(self.d_head)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        out = scores.softmax(-1) @ v  # (B, H, Tq, Dh)
        B, H, Tq, Dh = out.shape
        return self.o(out.transpose(1, 2).reshape(B, Tq, H * Dh))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attend(self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x)))


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, norm: Norm, d_ff: int | None = None):
        super().__init__()
        self.norm = norm
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_heads)
        d_ff = d_ff or 4 * d_model
        self.ff_in, self.ff_out = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff_out(F.gelu(self.ff_in(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm == "pre_norm":
            x = x + self.attn(self.ln1(x))
            return x + self.ffn(self.ln2(x))
        if self.norm == "post_norm":
            x = self.ln1(x + self.attn(x))
            return self.ln2(x + self.ffn(x))
        x = self.attn(self.ln1(x))
        return self.ffn(self.ln2(x))


class Stack(nn.Module):
    """Token + position embedding, ``n_layers`` blocks, final LN, linear head over the vocabulary."""

    def __init__(self, vocab: int, seq_len: int, d_model: int, n_heads: int, n_layers: int,
                 norm: Norm, output_scaling: bool = False):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(seq_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, norm) for _ in range(n_layers))
        # post-norm ends every block with a LayerNorm already; the others need one before the head.
        self.ln_f = nn.LayerNorm(d_model) if norm != "post_norm" else nn.Identity()
        self.head = nn.Linear(d_model, vocab)
        self.reset_parameters(output_scaling)

    def reset_parameters(self, output_scaling: bool) -> None:
        """GPT-2 initialisation: N(0, 0.02) weights, zero biases, LayerNorm at identity."""
        residual_std = 0.02 / math.sqrt(2 * len(self.blocks)) if output_scaling else 0.02
        for name, m in self.named_modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                writes_residual = name.endswith("attn.o") or name.endswith("ff_out")
                nn.init.normal_(m.weight, 0.0, residual_std if writes_residual else 0.02)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                m.reset_parameters()

    def forward(self, idx: torch.Tensor, keep_hidden: bool = False):
        """idx (B, T) -> logits (B, T, V); with ``keep_hidden`` also [h_0 .. h_L] with grads retained."""
        h = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))  # (B, T, D)
        hidden = [h]
        for block in self.blocks:
            h = block(h)
            hidden.append(h)
        if keep_hidden:
            for t in hidden:
                t.retain_grad()
        logits = self.head(self.ln_f(h))
        return (logits, hidden) if keep_hidden else logits


def copy_shift_batch(batch: int, seq_len: int, vocab: int, shift: int, generator: torch.Generator,
                     device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A task that needs attention: predict at position i the token at position (i - shift) mod T."""
    x = torch.randint(0, vocab, (batch, seq_len), generator=generator)
    y = torch.roll(x, shifts=shift, dims=1)
    return x.to(device), y.to(device)
