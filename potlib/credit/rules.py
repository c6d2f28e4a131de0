"""Credit rules: BP, DFA, state bridge (SB) and credit bridge (CB), behind one interface.

Every rule answers one question: given a forward pass, what *credit* ``a_l`` (a stand-in for
``∂L/∂h_l``) does each state ``h_0 .. h_L`` get? The training loop (``potlib.credit.train``) then
updates block ``l`` on the local surrogate ``mean_batch <F_l(h_{l-1}), stopgrad(a_l)>`` (see
:func:`local_surrogate`), whose parameter gradient is ``J_θᵀ a_l`` averaged over the batch: exactly
backprop when ``a_l = ∂CE/∂h_l``.

Interface (:class:`CreditRule`):

- ``credit(model, p, progress) -> (L+1, B, d)``: detached, un-normalised credit for ``h_0..h_L``;
  ``progress`` in [0, 1] is the fraction of training done (bridges use it for the DFA warmup).
- ``aux_loss(p, model) -> Tensor | None``: loss of the rule's own networks (value net, state
  predictor, vector field); ``model`` is the forward net, read-only (the vector field's targets use
  one block's Jacobian).
- ``after_aux_step()``: bookkeeping after the auxiliary optimiser step (EMA target).

Rules (the ``method`` field of the configs):

- ``BP``: ``a_l = ∂CE/∂h_l`` by autograd (the reference).
- ``DFA``: direct feedback alignment (Nøkland 2016, arXiv:1609.01596): ``a_l = B_l e_T`` with a fixed
  random ``B_l ∈ R^{d×C}`` and ``e_T = softmax(logits) − onehot(y)``.
- ``SB``: state bridge (faeval memos): a predictor ``G_ψ(h_l, t_l, s) ≈ h_L`` trained with normalised
  MSE; credit ``a_l = J_Gᵀ δ_L`` with ``δ_L = ∂CE/∂h_L`` [reconstructed].
- ``CB``: credit bridge (faeval memos): a scalar value net ``V_φ([LN(h_l), emb(t_l), s])``; credit
  ``a_l = ∇_h V_φ``; trained by bridge consistency against an EMA target, terminal value and
  terminal gradient matching [reconstructed, see :class:`CreditBridge`].
- ``VF``: direct vector credit field, the memos' proposed next step ("Option A", seed 003, Q4), which
  nobody has published: ``a_l = a_φ(h_l, t_l, s) ∈ R^d`` output directly, trained on one-block
  bootstrapped targets [ours, see :class:`VectorField`].

Choices the memos leave open, all [reconstructed]: every state ``h_0..h_L`` gets credit (``h_0`` trains
the embedding; ``h_L`` is credited by the rule too, not by the exact ``δ_L``, so Γ at the last layer
measures the rule); the DFA warmup of length ``wr`` applies to both bridges (SB and CB), during which
their networks train while the forward net follows DFA credit; ``deltaL`` conditioning is divided by
its batch RMS so that the conditioning input has unit scale.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from potlib.models.resmlp import ResMLP, true_state_grads

Method = Literal["BP", "DFA", "SB", "CB", "VF"]
SType = Literal["eT", "deltaL", "eT+proj", "deltaL+proj"]
METHODS = ("BP", "DFA", "SB", "CB", "VF")
S_TYPES = ("eT", "deltaL", "eT+proj", "deltaL+proj")
T_DIM = 16  # width of the learned layer-index embedding emb(t) [reconstructed]
PROJ_DIM = 32  # the "+proj" variants concatenate a learned 32-d projection of LN(h_L) (SPEC 3.3)


@dataclass
class Pass:
    """What a rule sees of one forward pass; every tensor is detached."""

    x: Tensor  # (B, d_in) inputs (BP recomputes the graph from them)
    y: Tensor  # (B,) labels
    hs: list[Tensor]  # L+1 states h_0..h_L, each (B, d)
    logits: Tensor  # (B, C)
    ce: Tensor  # (B,) per-sample cross-entropy
    e_T: Tensor  # (B, C) softmax(logits) - onehot(y)
    delta_L: Tensor  # (B, d) ∂CE_i/∂h_L (per sample)


def terminal_pass(model: ResMLP, x: Tensor, y: Tensor, hs: list[Tensor]) -> tuple[Pass, Tensor]:
    """Build a :class:`Pass` from states; also return the per-sample CE *with* the head's graph.

    ``h_L`` enters the head detached, so the returned CE trains the head only.
    """
    h_last = hs[-1].detach().requires_grad_(True)
    logits = model.logits(h_last)  # (B, C)
    ce = F.cross_entropy(logits, y, reduction="none")  # (B,)
    (delta_L,) = torch.autograd.grad(ce.sum(), h_last, retain_graph=True)
    e_T = torch.softmax(logits.detach(), -1) - F.one_hot(y, logits.shape[-1]).to(logits.dtype)
    p = Pass(x, y, [h.detach() for h in hs], logits.detach(), ce.detach(), e_T, delta_L.detach())
    return p, ce


def normalise_credit(a: Tensor, mode: str = "rms", eps: float = 1e-6) -> Tensor:
    """``a / (RMS(a) + eps)`` per layer, RMS over the whole (B, d) slab [reconstructed: batch-level].

    A batch-level (not per-sample) RMS keeps the relative weight of samples, so BP credit stays an
    exact positive multiple of the backprop gradient.
    """
    if mode == "none":
        return a
    if mode != "rms":
        raise ValueError(f"credit_norm = {mode!r} is not allowed: 'rms' or 'none'")
    rms = a.pow(2).mean(dim=(-2, -1), keepdim=True).sqrt()  # (L+1, 1, 1)
    return a / (rms + eps)


def local_surrogate(h0: Tensor, fs: list[Tensor], a: Tensor) -> Tensor:
    """``Σ_l mean_batch <F_l(h_{l-1}), a_l>`` plus ``mean_batch <h_0, a_0>`` for the embedding.

    ``h0`` carries the embedding's graph and ``fs[l-1]`` block ``l``'s graph (inputs detached, see
    ``ResMLP.local_forward``); ``a`` is (L+1, B, d) and treated as a constant.
    """
    a = a.detach()
    b = h0.shape[0]
    total = (h0 * a[0]).sum() / b
    for l, f in enumerate(fs, start=1):
        total = total + (f * a[l]).sum() / b
    return total


class CreditRule(nn.Module):
    """Base class; subclasses set ``name`` and implement :meth:`credit`."""

    name: str = ""

    def credit(self, model: ResMLP, p: Pass, progress: float = 1.0) -> Tensor:
        raise NotImplementedError

    def aux_loss(self, p: Pass, model: ResMLP) -> Tensor | None:
        return None

    def after_aux_step(self) -> None:
        pass

    def aux_parameters(self) -> list[nn.Parameter]:
        return [q for q in self.parameters() if q.requires_grad]


class Backprop(CreditRule):
    """``a_l = ∂CE/∂h_l`` by autograd through the whole network (reference)."""

    name = "BP"

    def credit(self, model, p, progress=1.0):
        grads, _ = true_state_grads(model, p.x, p.y)
        return torch.stack(grads)  # (L+1, B, d)


class DFA(CreditRule):
    """Direct feedback alignment (Nøkland 2016): ``a_l = B_l e_T``, ``B_l`` fixed Gaussian d×C."""

    name = "DFA"

    def __init__(self, d: int, n_layers: int, n_classes: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(int(seed) + 7919)
        self.register_buffer("B", torch.randn(n_layers + 1, d, n_classes, generator=g) / math.sqrt(n_classes))

    def credit(self, model, p, progress=1.0):
        return torch.einsum("ldc,bc->lbd", self.B, p.e_T)  # (L+1, B, d)


class CondNet(nn.Module):
    """MLP on ``[LN(h), emb(t), s (, proj(LN(h_L)))]``: the value net (out 1) or state predictor (out d).

    Three Linear layers of width ``width`` with GELU (SPEC: "MLP, e.g. 256 wide, 3 layers").
    """

    def __init__(self, d: int, n_steps: int, s_dim: int, out_dim: int, width: int, proj: bool):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.t_emb = nn.Embedding(n_steps, T_DIM)
        self.proj = nn.Linear(d, PROJ_DIM) if proj else None
        d_in = d + T_DIM + s_dim + (PROJ_DIM if proj else 0)
        self.mlp = nn.Sequential(
            nn.Linear(d_in, width), nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, out_dim)
        )

    def forward(self, h: Tensor, t: Tensor, s: Tensor, h_last: Tensor | None) -> Tensor:
        """``h`` (N, d), ``t`` (N,) layer indices, ``s`` (N, s_dim), ``h_last`` (N, d) or None."""
        parts = [self.norm(h), self.t_emb(t), s]
        if self.proj is not None:
            parts.append(self.proj(self.norm(h_last)))
        return self.mlp(torch.cat(parts, -1))


def conditioning(p: Pass, s_type: str) -> Tensor:
    """The terminal code ``s``: ``e_T`` (C-d) or ``δ_L`` (d-d, divided by its batch RMS)."""
    if s_type.startswith("eT"):
        return p.e_T
    if s_type.startswith("deltaL"):
        return p.delta_L / (p.delta_L.pow(2).mean().sqrt() + 1e-12)
    raise ValueError(f"s_type = {s_type!r} is not allowed: one of {S_TYPES}")


class _Bridge(CreditRule):
    """Shared parts of SB and CB: conditioning over all layers at once, and the DFA warmup."""

    def __init__(self, d, n_layers, n_classes, s_type, wr, seed):
        super().__init__()
        if s_type not in S_TYPES:
            raise ValueError(f"s_type = {s_type!r} is not allowed: one of {S_TYPES}")
        if not 0.0 <= wr <= 1.0:
            raise ValueError(f"wr = {wr!r} is not allowed: a fraction in [0, 1]")
        self.d, self.n_layers, self.s_type, self.wr = d, n_layers, s_type, wr
        self.s_dim = n_classes if s_type.startswith("eT") else d
        self.proj = s_type.endswith("+proj")
        self.warmup = DFA(d, n_layers, n_classes, seed)

    def _inputs(self, p: Pass, layers: range):
        """Rows for layers ``layers`` stacked: t (N,), s (N, s_dim), h_last (N, d) or None."""
        b, n = p.hs[0].shape[0], len(layers)
        t = torch.arange(layers.start, layers.stop, device=p.y.device).repeat_interleave(b)  # (n*B,)
        s = conditioning(p, self.s_type).repeat(n, 1)  # (n*B, s_dim)
        h_last = p.hs[-1].repeat(n, 1) if self.proj else None
        return t, s, h_last

    def in_warmup(self, progress: float) -> bool:
        return progress < self.wr

    def credit_objective(self, h: Tensor, t: Tensor, s: Tensor, h_last: Tensor | None, p: Pass) -> Tensor:
        """A scalar whose gradient with respect to the stacked states ``h`` is the credit."""
        raise NotImplementedError

    def credit(self, model, p, progress=1.0):
        if self.in_warmup(progress):
            return self.warmup.credit(model, p)
        L1, b = self.n_layers + 1, p.hs[0].shape[0]
        t, s, h_last = self._inputs(p, range(L1))
        with torch.enable_grad():
            h = torch.cat(p.hs).requires_grad_(True)  # (L1*B, d)
            (a,) = torch.autograd.grad(self.credit_objective(h, t, s, h_last, p), h)
        return a.view(L1, b, -1)


class StateBridge(_Bridge):
    """State bridge [reconstructed]: ``G_ψ([LN(h_l), emb(t_l), s]) ≈ h_L``; ``a_l = J_Gᵀ δ_L``.

    ``G_ψ`` is the same MLP as the credit bridge's value net with a d-dimensional output and no
    identity skip, so both bridges learn their Jacobian from scratch (an identity skip would hand
    SB the residual net's ``∂h_L/∂h_l ≈ I`` for free) [reconstructed].
    Loss: ``mean ‖G − h_L‖² / mean ‖h_L‖²`` (normalised MSE) over all layers ``0..L``.
    """

    name = "SB"

    def __init__(self, d, n_layers, n_classes, s_type="eT", wr=0.2, width=256, seed=0):
        super().__init__(d, n_layers, n_classes, s_type, wr, seed)
        self.net = CondNet(d, n_layers + 1, self.s_dim, d, width, self.proj)

    def predict(self, h, t, s, h_last):
        return self.net(h, t, s, h_last)  # (N, d)

    def credit_objective(self, h, t, s, h_last, p):
        # a_l = J_Gᵀ δ_L is the gradient of <G(h_l), δ_L> with respect to h_l
        g = self.predict(h, t, s, h_last)  # (L1*B, d)
        return (g * p.delta_L.repeat(h.shape[0] // p.delta_L.shape[0], 1)).sum()

    def aux_loss(self, p, model):
        L1 = self.n_layers + 1
        t, s, h_last = self._inputs(p, range(L1))
        g = self.predict(torch.cat(p.hs), t, s, h_last)  # (L1*B, d)
        target = p.hs[-1].repeat(L1, 1)
        return (g - target).pow(2).mean() / (target.pow(2).mean() + 1e-6)


class CreditBridge(_Bridge):
    """Credit bridge: scalar value net ``V_φ``, credit ``a_l = ∇_h V_φ(h_l, t_l, s)``.

    Training (all [reconstructed] from the memos, SPEC 3.3), summed with unit weights except tgw:

    - bridge consistency, layers ``l < L``: ``V_φ(h_l) ≈ −λ log mean_k exp(−V̄(h_{l+1} + σξ_k)/λ)``,
      ``ξ_k ~ N(0, I)``, ``K`` samples, ``V̄`` an EMA copy of ``V_φ`` (momentum ``ema``); squared error;
    - terminal value: ``V_φ(h_L) ≈ CE`` (per sample), squared error;
    - terminal gradient matching: ``tgw · mean_batch ‖∇_h V_φ(h_L) − δ_L‖²``.
    """

    name = "CB"

    def __init__(self, d, n_layers, n_classes, s_type="eT", wr=0.2, width=256, seed=0,
                 tgw=1.0, lam=0.1, k=4, sigma=0.05, ema=0.995):
        super().__init__(d, n_layers, n_classes, s_type, wr, seed)
        for name, ok, allowed in (
            ("tgw", tgw >= 0, ">= 0"), ("lam", lam > 0, "> 0"), ("k", k >= 1, ">= 1"),
            ("sigma", sigma >= 0, ">= 0"), ("ema", 0 <= ema < 1, "in [0, 1)"),
        ):
            if not ok:
                raise ValueError(f"CreditBridge {name} = {locals()[name]!r} is not allowed: {allowed}")
        self.tgw, self.lam, self.k, self.sigma, self.ema = tgw, lam, k, sigma, ema
        self.value = CondNet(d, n_layers + 1, self.s_dim, 1, width, self.proj)
        self.target = copy.deepcopy(self.value).requires_grad_(False)

    def credit_objective(self, h, t, s, h_last, p):
        return self.value(h, t, s, h_last).sum()  # a_l = ∇_h V_φ

    @torch.no_grad()
    def bridge_target(self, p: Pass) -> Tensor:
        """``−λ log mean_k exp(−V̄(h_{l+1} + σξ_k, t_{l+1}, s)/λ)`` for l = 0..L−1, flat (L*B,)."""
        L, b = self.n_layers, p.hs[0].shape[0]
        t, s, h_last = self._inputs(p, range(1, L + 1))
        nxt = torch.cat(p.hs[1:])  # (L*B, d)
        noisy = nxt.unsqueeze(0) + self.sigma * torch.randn(self.k, *nxt.shape, device=nxt.device, dtype=nxt.dtype)
        rep = lambda z: None if z is None else z.repeat(self.k, 1)  # noqa: E731
        v_bar = self.target(noisy.flatten(0, 1), t.repeat(self.k), rep(s), rep(h_last))
        v_bar = v_bar.view(self.k, L * b)  # (K, L*B)
        return -self.lam * (torch.logsumexp(-v_bar / self.lam, 0) - math.log(self.k))

    def aux_loss(self, p, model):
        L = self.n_layers
        # bridge consistency for l = 0..L-1 against the soft-min of the EMA target at l+1
        t, s, h_last = self._inputs(p, range(L))
        pred = self.value(torch.cat(p.hs[:-1]), t, s, h_last).squeeze(-1)  # (L*B,)
        bridge = F.mse_loss(pred, self.bridge_target(p))
        # terminal value and terminal gradient matching at h_L
        tL, sL, hlL = self._inputs(p, range(L, L + 1))
        hL = p.hs[-1].clone().requires_grad_(True)
        vL = self.value(hL, tL, sL, hlL).squeeze(-1)  # (B,)
        terminal = F.mse_loss(vL, p.ce)
        loss = bridge + terminal
        if self.tgw > 0:
            (gL,) = torch.autograd.grad(vL.sum(), hL, create_graph=True)
            loss = loss + self.tgw * (gL - p.delta_L).pow(2).sum(-1).mean()
        return loss

    @torch.no_grad()
    def after_aux_step(self):
        ema_update(self.target, self.value, self.ema)


def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """``θ̄ ← momentum·θ̄ + (1 − momentum)·θ`` in place."""
    with torch.no_grad():
        torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), 1.0 - momentum)


class VectorField(_Bridge):
    """Direct vector credit field [ours]: ``a_l = a_φ([LN(h_l), emb(t_l), s]) ∈ R^d``.

    The memos' "Option A" (seed 003, Q4): learn the credit vector itself instead of a scalar value
    whose input gradient is the credit, so that a value that is right with a wrong gradient cannot
    happen. The memo gives the consistency only as "a_φ(h_l) ≈ a_φ(h_{l+1}) + Jacobian correction
    term"; our reading is the exact one-step form of backprop through the residual block,

    - ``l < L``: ``a_φ(h_l) ≈ (I + J_{F_{l+1}}(h_l))ᵀ ā(h_{l+1})``, with ``ā`` an EMA copy of ``a_φ``
      (momentum ``ema``) and ``J_{F_{l+1}}ᵀ v`` one vector-Jacobian product through block ``l+1``
      alone (the per-block backprop every rule here already uses inside its block);
    - ``l = L``: ``a_φ(h_L) ≈ δ_L = ∂CE/∂h_L`` (the exact terminal gradient, as CB's matching term);

    loss: squared error summed over layers and ``d``, averaged over the batch, divided by
    ``mean ‖δ_L‖²`` so that it does not shrink with the error. This is the bootstrapped
    synthetic-gradient target of Jaderberg et al. 2017 (Decoupled Neural Interfaces,
    arXiv:1608.05343) with one shared, conditioned network for all layers and an EMA target.
    Same network, warmup and conditioning as the bridges; no ``K``, ``σ`` or ``λ``.
    """

    name = "VF"

    def __init__(self, d, n_layers, n_classes, s_type="eT", wr=0.2, width=256, seed=0, ema=0.995):
        super().__init__(d, n_layers, n_classes, s_type, wr, seed)
        if not 0 <= ema < 1:
            raise ValueError(f"VectorField ema = {ema!r} is not allowed: in [0, 1)")
        self.ema = ema
        self.field = CondNet(d, n_layers + 1, self.s_dim, d, width, self.proj)
        # zero output layer: the field starts as "no credit" instead of a random vector of arbitrary
        # scale, as DNI initialises its synthetic-gradient modules (Jaderberg et al. 2017)
        nn.init.zeros_(self.field.mlp[-1].weight)
        nn.init.zeros_(self.field.mlp[-1].bias)
        self.target = copy.deepcopy(self.field).requires_grad_(False)

    def credit(self, model, p, progress=1.0):
        if self.in_warmup(progress):
            return self.warmup.credit(model, p)
        L1, b = self.n_layers + 1, p.hs[0].shape[0]
        t, s, h_last = self._inputs(p, range(L1))
        with torch.no_grad():
            return self.field(torch.cat(p.hs), t, s, h_last).view(L1, b, -1)  # (L+1, B, d)

    def targets(self, p: Pass, model: ResMLP) -> Tensor:
        """``(L+1, B, d)``: one-block bootstrapped targets for l < L, ``δ_L`` at l = L."""
        L, b = self.n_layers, p.hs[0].shape[0]
        t, s, h_last = self._inputs(p, range(1, L + 1))
        with torch.no_grad():
            nxt = self.target(torch.cat(p.hs[1:]), t, s, h_last).view(L, b, -1)  # ā(h_{l+1}), (L, B, d)
        out = []
        for l in range(L):
            with torch.enable_grad():
                h = p.hs[l].clone().requires_grad_(True)
                (vjp,) = torch.autograd.grad(model.blocks[l](h), h, nxt[l])  # J_{F_{l+1}}(h_l)ᵀ ā(h_{l+1})
            out.append(nxt[l] + vjp)
        out.append(p.delta_L)
        return torch.stack(out).detach()

    def aux_loss(self, p, model):
        L1, b = self.n_layers + 1, p.hs[0].shape[0]
        t, s, h_last = self._inputs(p, range(L1))
        a = self.field(torch.cat(p.hs), t, s, h_last).view(L1, b, -1)
        scale = p.delta_L.pow(2).sum(-1).mean() + 1e-12
        return (a - self.targets(p, model)).pow(2).sum(-1).mean(-1).sum() / scale

    def after_aux_step(self):
        ema_update(self.target, self.field, self.ema)


def make_rule(method: str, *, d: int, n_layers: int, n_classes: int, seed: int = 0, s_type: str = "eT",
              wr: float = 0.2, width: int = 256, tgw: float = 1.0, lam: float = 0.1, k: int = 4,
              sigma: float = 0.05, ema: float = 0.995) -> CreditRule:
    """The rule called ``method`` (one of BP, DFA, SB, CB, VF); bridge options are ignored by BP/DFA."""
    if method == "BP":
        return Backprop()
    if method == "DFA":
        return DFA(d, n_layers, n_classes, seed)
    if method == "SB":
        return StateBridge(d, n_layers, n_classes, s_type, wr, width, seed)
    if method == "CB":
        return CreditBridge(d, n_layers, n_classes, s_type, wr, width, seed, tgw, lam, k, sigma, ema)
    if method == "VF":
        return VectorField(d, n_layers, n_classes, s_type, wr, width, seed, ema)
    raise ValueError(f"method = {method!r} is not allowed: one of {METHODS}")
