"""Transformer pieces as the Hierarchical Reasoning Model uses them (SPEC section 3.2).

Follows the public code of sapientinc/HRM (``models/layers.py``, ``models/hrm/hrm_act_v1.py``), read
through the project's search tool; names match theirs where a reader may want to compare:

- **post-norm** blocks, ``x = RMSNorm(x + Attn(x))``, ``x = RMSNorm(x + SwiGLU(x))``, with a
  *weightless* RMSNorm (no gain) computed in float32;
- **SwiGLU** MLP whose inner width is ``expansion * d * 2/3`` rounded up to a multiple of 256, as in
  HRM (Llama's convention, so that a SwiGLU costs about the same as a GELU MLP of ``expansion * d``);
- **RoPE** on queries and keys, the "rotate half" layout;
- **non-causal** attention: every Sudoku cell sees every other cell;
- **no biases** anywhere in the blocks, **truncated LeCun normal** init (std 1/sqrt(fan_in), cut at
  two standard deviations and rescaled so the std is exact, the JAX convention);
- token embeddings initialised with std 1/sqrt(d) and **multiplied by sqrt(d)**, so the residual
  stream starts at unit scale.

Mixed precision is left to ``torch.autocast``: the blocks never cast weights themselves.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

CosSin = tuple[torch.Tensor, torch.Tensor]


def trunc_normal_init_(tensor: torch.Tensor, std: float = 1.0, lower: float = -2.0, upper: float = 2.0) -> torch.Tensor:
    """Truncated normal in [lower, upper] standard deviations, rescaled to have std exactly ``std``.

    ``torch.nn.init.trunc_normal_`` keeps the std of the *untruncated* normal, which is ~12% too
    small at +-2 sigma; JAX (and HRM's ``trunc_normal_init_``) correct for it.
    """
    if std == 0:
        return tensor.zero_()
    a, b = lower, upper
    pdf = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    z = cdf(b) - cdf(a)
    var = 1 - (b * pdf(b) - a * pdf(a)) / z - ((pdf(b) - pdf(a)) / z) ** 2  # of the truncated N(0,1)
    with torch.no_grad():
        nn.init.trunc_normal_(tensor, mean=0.0, std=1.0, a=a, b=b)
        tensor.mul_(std / math.sqrt(var))
    return tensor


def rms_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Weightless RMSNorm over the last dim, computed in float32 and cast back."""
    dtype = x.dtype
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.square().mean(-1, keepdim=True) + eps)
    return x32.to(dtype)


class Linear(nn.Module):
    """Linear map with truncated LeCun normal init; no bias unless asked (HRM's ``CastedLinear``)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_init_(torch.empty(out_features, in_features), std=in_features**-0.5))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class RotaryEmbedding(nn.Module):
    """Cos/sin tables of RoPE (Su et al. 2021) for ``max_len`` positions, "rotate half" layout."""

    def __init__(self, head_dim: int, max_len: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {head_dim}")
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        freqs = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)  # (T, Dh/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (T, Dh)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self) -> CosSin:
        return self.cos, self.sin


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (B, T, H, Dh) by position: pairs (i, i + Dh/2) turn by angle pos * freq_i."""
    cos, sin = cos[: x.shape[1]].unsqueeze(-2), sin[: x.shape[1]].unsqueeze(-2)  # (T, 1, Dh)
    return (x.float() * cos + rotate_half(x.float()) * sin).to(x.dtype)


class Attention(nn.Module):
    """Non-causal multi-head self-attention with RoPE and no biases."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size={hidden_size} must be divisible by num_heads={num_heads}")
        self.num_heads, self.head_dim = num_heads, hidden_size // num_heads
        self.qkv_proj = Linear(hidden_size, 3 * hidden_size)
        self.o_proj = Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, cos_sin: CosSin | None) -> torch.Tensor:
        B, T, D = x.shape
        qkv = self.qkv_proj(x).view(B, T, 3, self.num_heads, self.head_dim)  # (B, T, 3, H, Dh)
        q, k, v = qkv.unbind(dim=2)  # each (B, T, H, Dh)
        if cos_sin is not None:
            q, k = apply_rotary(q, *cos_sin), apply_rotary(k, *cos_sin)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=False
        )  # (B, H, T, Dh)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, D))


def _round_up(a: int, b: int) -> int:
    return -(a // -b) * b


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))``, inner width ``expansion * d * 2/3`` rounded up to ``multiple_of``."""

    def __init__(self, hidden_size: int, expansion: float, multiple_of: int = 256):
        super().__init__()
        self.inner = _round_up(round(expansion * hidden_size * 2 / 3), multiple_of)
        self.gate_up_proj = Linear(hidden_size, 2 * self.inner)
        self.down_proj = Linear(self.inner, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class HRMBlock(nn.Module):
    """One post-norm Transformer block (HRM's ``HierarchicalReasoningModel_ACTV1Block``)."""

    def __init__(self, hidden_size: int, num_heads: int, expansion: float = 4.0, eps: float = 1e-5, multiple_of: int = 256):
        super().__init__()
        self.self_attn = Attention(hidden_size, num_heads)
        self.mlp = SwiGLU(hidden_size, expansion, multiple_of)
        self.eps = eps

    def forward(self, x: torch.Tensor, cos_sin: CosSin | None) -> torch.Tensor:
        # Post-norm: the stream is renormalised after every sublayer, which keeps a state that is
        # iterated many times (HRM's z_L, z_H) on a fixed scale.
        x = rms_norm(x + self.self_attn(x, cos_sin), self.eps)
        return rms_norm(x + self.mlp(x), self.eps)


class ReasoningModule(nn.Module):
    """A stack of blocks with input injection by addition: ``f(h, u) = blocks(h + u)``."""

    def __init__(self, blocks: list[HRMBlock]):
        super().__init__()
        self.layers = nn.ModuleList(blocks)

    def forward(self, hidden: torch.Tensor, injection: torch.Tensor | None, cos_sin: CosSin | None) -> torch.Tensor:
        if injection is not None:
            hidden = hidden + injection
        for layer in self.layers:
            hidden = layer(hidden, cos_sin)
        return hidden


class TokenEmbedding(nn.Module):
    """Token embedding scaled by sqrt(d), with ``prefix_len`` learned zero-initialised prefix tokens.

    HRM prepends a per-puzzle embedding (zero init); Sudoku has a single puzzle identifier, so it is
    one learned vector at position 0, the position the Q-head reads. We keep that layout.
    """

    def __init__(self, vocab_size: int, hidden_size: int, prefix_len: int = 1):
        super().__init__()
        self.scale = math.sqrt(hidden_size)
        self.weight = nn.Parameter(trunc_normal_init_(torch.empty(vocab_size, hidden_size), std=1.0 / self.scale))
        self.prefix_len = prefix_len
        self.prefix = nn.Parameter(torch.zeros(prefix_len, hidden_size)) if prefix_len else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) int -> (B, prefix_len + T, D)."""
        emb = F.embedding(tokens, self.weight)  # (B, T, D)
        if self.prefix is not None:
            emb = torch.cat((self.prefix.expand(tokens.shape[0], -1, -1).to(emb.dtype), emb), dim=1)
        return self.scale * emb
