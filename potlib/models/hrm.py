"""Sudoku models of the HRM chapter: Transformer, Recurrent Transformer, and HRM with ACT (SPEC 3.2).

Source: Wang et al., "Hierarchical Reasoning Model", arXiv 2506.21734, and its code sapientinc/HRM
(``models/hrm/hrm_act_v1.py``, ``models/losses.py``), whose names we keep: ``H_cycles``,
``L_cycles``, ``H_layers``, ``L_layers``, ``halt_max_steps``, ``halt_exploration_prob``.

- :class:`SudokuTransformer`: ``n_layers`` HRM blocks. ``loops > 1`` makes it the *Recurrent
  Transformer* of Fig 2 (right): the same ``n_layers`` blocks applied ``loops`` times with tied
  weights, layers computed = ``n_layers * loops``. Re-injecting the input embedding at every loop
  (``input_injection``) is our choice, as in HRM's modules [reconstructed: the paper does not say].
- :class:`HRM`: one *segment* of the hierarchical recurrence. Per segment, for ``H_cycles`` times:
  ``L_cycles`` updates ``z_L <- L(z_L, z_H + x)``, then ``z_H <- H(z_H, z_L)``; output ``lm_head(z_H)``,
  and Q-values ``q_head(z_H[:, 0])``. ``grad_mode`` picks the gradient:

  * ``"one_step"`` (HRM, "1-step gradient approximation", paper Sec. 2): every update but the final
    L and the final H runs under ``torch.no_grad()``, so memory is O(1) in the number of steps;
  * ``"bptt"``: backprop through every update of the segment, O(H_cycles * L_cycles) memory; the
    baseline of the memory comparison.

- :class:`HRMACT`: deep supervision + adaptive computation time (HRM's ``..._ACTV1`` wrapper). One
  call = one segment for every row of the batch; the carry is detached between segments (one
  optimizer step per segment); rows that halted are replaced by fresh puzzles. Halting (training, ACT
  on): halt when ``q_halt > q_continue`` and ``steps >= M_min``, with ``M_min`` drawn uniformly from
  [2, M_max] with probability ``halt_exploration_prob`` and 1 otherwise; always halt at
  ``halt_max_steps``. Evaluation runs ``halt_max_steps`` segments. Q-learning target for
  ``q_continue``: ``sigmoid(next q_halt)`` at the last step, else ``sigmoid(max(next q_halt, next
  q_continue))``, the next Q-values coming from one more no-grad segment (no replay buffer, no target
  network). :func:`act_loss`: ``CE + 0.5 * (BCE(q_halt, solved) + BCE(q_continue, target))``.
"""

from __future__ import annotations

import contextlib

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from potlib.models.hrm_blocks import HRMBlock, Linear, ReasoningModule, RotaryEmbedding, TokenEmbedding, trunc_normal_init_

GradMode = Literal["one_step", "bptt"]
LossType = Literal["softmax", "stablemax"]
GRAD_MODES = ("one_step", "bptt")
IGNORE_LABEL_ID = -100


@dataclass(frozen=True)
class SudokuModelConfig:
    """The one config of every Sudoku model here (HRM, Transformer, looped Transformer).

    Names follow HRM's config (``hrm_act_v1.py``): ``H_layers``/``L_layers`` blocks per module,
    ``H_cycles``/``L_cycles`` cycles per segment, ``halt_max_steps`` (M_max), ``halt_exploration_prob``.
    ``n_layers``/``loops``/``input_injection`` belong to the Transformer baselines; the ``H_*``/``L_*``,
    ``grad_mode``, ``prefix_len`` and halting fields to HRM. Raises ValueError naming a field out of range.
    """

    vocab_size: int = 11
    seq_len: int = 81
    hidden_size: int = 256
    num_heads: int = 8
    expansion: float = 4.0  # SwiGLU expansion
    multiple_of: int = 256  # SwiGLU inner width rounded up to this
    n_layers: int = 8
    loops: int = 1  # > 1: the stack is applied this many times with tied weights
    input_injection: bool = True
    H_layers: int = 4
    L_layers: int = 4
    H_cycles: int = 2
    L_cycles: int = 2
    grad_mode: GradMode = "one_step"
    prefix_len: int = 1  # HRM's puzzle-embedding positions; the Q-head reads position 0
    halt_max_steps: int = 8
    halt_exploration_prob: float = 0.1
    act: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("grad_mode", self.grad_mode in GRAD_MODES, ", ".join(GRAD_MODES)),
            ("prefix_len", self.prefix_len >= 1, "an int >= 1 (the Q-head reads position 0)"),
            ("halt_exploration_prob", 0.0 <= self.halt_exploration_prob <= 1.0, "a float in [0, 1]"),
            ("hidden_size", self.hidden_size % self.num_heads == 0, f"a multiple of num_heads={self.num_heads}"),
        ] + [(f, getattr(self, f) >= 1, "an int >= 1")
             for f in ("n_layers", "loops", "H_layers", "L_layers", "H_cycles", "L_cycles", "halt_max_steps")]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"{name} = {getattr(self, name)!r} is not allowed; allowed: {allowed}")


def _blocks(n: int, cfg: SudokuModelConfig) -> list[HRMBlock]:
    return [HRMBlock(cfg.hidden_size, cfg.num_heads, cfg.expansion, multiple_of=cfg.multiple_of) for _ in range(n)]


class SudokuTransformer(nn.Module):
    """Transformer (``loops=1``) or Recurrent Transformer (``loops>1``, tied weights) on 81 tokens."""

    def __init__(self, cfg: SudokuModelConfig):
        super().__init__()
        self.loops, self.input_injection = cfg.loops, cfg.input_injection
        self.embed = TokenEmbedding(cfg.vocab_size, cfg.hidden_size, prefix_len=0)
        self.rotary = RotaryEmbedding(cfg.hidden_size // cfg.num_heads, cfg.seq_len)
        self.body = ReasoningModule(_blocks(cfg.n_layers, cfg))
        self.lm_head = Linear(cfg.hidden_size, cfg.vocab_size)

    @property
    def layers_computed(self) -> int:
        return len(self.body.layers) * self.loops

    def forward(self, inputs: torch.Tensor, return_states: bool = False):
        """inputs (B, 81) -> logits (B, 81, V); with ``return_states`` also the stream after every
        layer (feed-forward) or every loop (recurrent), each (B, 81, D), for the dynamics figure."""
        x = self.embed(inputs)  # (B, T, D)
        cos_sin = self.rotary()
        h, states = x, []
        for i in range(self.loops):
            inj = x if (self.input_injection and i > 0) else None
            if return_states and self.loops == 1:
                h = h if inj is None else h + inj
                for layer in self.body.layers:
                    h = layer(h, cos_sin)
                    states.append(h)
            else:
                h = self.body(h, inj, cos_sin)
                states.append(h)
        logits = self.lm_head(h)
        return (logits, states) if return_states else logits


@dataclass
class HRMCarry:
    z_H: torch.Tensor  # (B, P + 81, D)
    z_L: torch.Tensor  # (B, P + 81, D)


class HRM(nn.Module):
    """One segment of the Hierarchical Reasoning Model (HRM's ``..._ACTV1_Inner``)."""

    def __init__(self, cfg: SudokuModelConfig):
        super().__init__()
        self.H_cycles, self.L_cycles, self.grad_mode = cfg.H_cycles, cfg.L_cycles, cfg.grad_mode
        self.prefix_len, self.hidden_size = cfg.prefix_len, cfg.hidden_size
        hidden_size = cfg.hidden_size
        self.embed = TokenEmbedding(cfg.vocab_size, hidden_size, cfg.prefix_len)
        self.rotary = RotaryEmbedding(hidden_size // cfg.num_heads, cfg.seq_len + cfg.prefix_len)
        self.H_level = ReasoningModule(_blocks(cfg.H_layers, cfg))
        self.L_level = ReasoningModule(_blocks(cfg.L_layers, cfg))
        self.lm_head = Linear(hidden_size, cfg.vocab_size)
        self.q_head = Linear(hidden_size, 2, bias=True)
        # Initial states: one fixed random vector each, broadcast over positions (HRM's H_init/L_init).
        self.register_buffer("H_init", trunc_normal_init_(torch.empty(hidden_size), std=1.0))
        self.register_buffer("L_init", trunc_normal_init_(torch.empty(hidden_size), std=1.0))
        # Q-head starts near zero probability of halting ("faster learning during bootstrapping").
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)

    @property
    def layers_per_segment(self) -> int:
        """Block applications per segment: H_cycles * (L_cycles * L_layers + H_layers)."""
        return self.H_cycles * (self.L_cycles * len(self.L_level.layers) + len(self.H_level.layers))

    def initial_carry(self, batch_size: int, seq_len: int = 81) -> HRMCarry:
        T, D = self.prefix_len + seq_len, self.hidden_size
        return HRMCarry(
            z_H=self.H_init.expand(batch_size, T, D).clone(),
            z_L=self.L_init.expand(batch_size, T, D).clone(),
        )

    def reset_carry(self, reset: torch.Tensor, carry: HRMCarry) -> HRMCarry:
        """Rows where ``reset`` (B,) is True start again from the initial states."""
        r = reset.view(-1, 1, 1)
        return HRMCarry(
            z_H=torch.where(r, self.H_init.to(carry.z_H.dtype), carry.z_H),
            z_L=torch.where(r, self.L_init.to(carry.z_L.dtype), carry.z_L),
        )

    def _segment(self, carry: HRMCarry, inputs: torch.Tensor, record: bool = False):
        """The segment's H/L schedule, shared by training (either gradient mode) and :meth:`trace`.

        For each of ``H_cycles``: ``L_cycles`` updates ``z_L <- L(z_L, z_H + x)``, then
        ``z_H <- H(z_H, z_L)``. Under ``grad_mode="one_step"`` every update but the last L and the last
        H update runs without a graph (HRM's 1-step approximation of the equilibrium gradient).
        Returns (z_H, z_L, zL_steps, zH_steps); the step lists are empty unless ``record``.
        """
        cos_sin = self.rotary()
        x = self.embed(inputs)  # (B, P + 81, D)
        z_H, z_L = carry.z_H, carry.z_L
        zl, zh = [], []
        n_L = self.H_cycles * self.L_cycles
        for h in range(self.H_cycles):
            for l in range(self.L_cycles):
                final = h * self.L_cycles + l == n_L - 1
                if final and self.grad_mode == "one_step" and torch.is_grad_enabled():
                    # The carry that enters the gradient step must hold no graph: otherwise the
                    # "one-step" gradient would silently reach into earlier steps (or segments).
                    assert not z_H.requires_grad and not z_L.requires_grad, "carried HRM state holds a graph"
                with self._graph(final):
                    z_L = self.L_level(z_L, z_H + x, cos_sin)
                if record:
                    zl.append(z_L)
            with self._graph(h == self.H_cycles - 1):
                z_H = self.H_level(z_H, z_L, cos_sin)
            if record:
                zh.append(z_H)
        return z_H, z_L, zl, zh

    def _graph(self, final: bool):
        """Gradient context of one update: BPTT keeps every update, one-step only the final ones."""
        return contextlib.nullcontext() if (final or self.grad_mode == "bptt") else torch.no_grad()

    def _heads(self, z_H: torch.Tensor):
        logits = self.lm_head(z_H)[:, self.prefix_len :]  # (B, 81, V)
        q = self.q_head(z_H[:, 0]).float()  # (B, 2)
        return logits, (q[:, 0], q[:, 1])

    def forward(self, carry: HRMCarry, inputs: torch.Tensor):
        """One segment. inputs (B, 81) -> (new detached carry, logits (B, 81, V), (q_halt, q_continue) (B,))."""
        z_H, z_L, _, _ = self._segment(carry, inputs)
        logits, q = self._heads(z_H)
        return HRMCarry(z_H.detach(), z_L.detach()), logits, q

    @torch.no_grad()
    def trace(self, carry: HRMCarry, inputs: torch.Tensor):
        """Forward one segment without gradients, returning every intermediate state.

        Returns (new carry, logits, zL_steps (H_cycles*L_cycles, B, T, D), zH_steps (H_cycles, B, T, D)).
        """
        z_H, z_L, zl, zh = self._segment(carry, inputs, record=True)
        logits, _ = self._heads(z_H)
        return HRMCarry(z_H, z_L), logits, torch.stack(zl), torch.stack(zh)


@dataclass
class ACTState:
    carry: HRMCarry
    steps: torch.Tensor  # (B,) int: segments run on the current puzzle of each row
    halted: torch.Tensor  # (B,) bool
    inputs: torch.Tensor  # (B, 81) the puzzle each row is working on
    labels: torch.Tensor  # (B, 81)


class HRMACT(nn.Module):
    """Deep supervision with adaptive computation time around an :class:`HRM` (one segment per call)."""

    def __init__(self, cfg: SudokuModelConfig):
        super().__init__()
        self.hrm, self.halt_max_steps = HRM(cfg), cfg.halt_max_steps
        self.halt_exploration_prob, self.act = cfg.halt_exploration_prob, cfg.act

    def initial_state(self, inputs: torch.Tensor, labels: torch.Tensor) -> ACTState:
        B = inputs.shape[0]
        carry = self.hrm.initial_carry(B, inputs.shape[1])
        # Every row starts "halted", so the first call loads fresh puzzles into all of them.
        return ACTState(
            carry=carry,
            steps=torch.zeros(B, dtype=torch.int64, device=inputs.device),
            halted=torch.ones(B, dtype=torch.bool, device=inputs.device),
            inputs=torch.empty_like(inputs),
            labels=torch.empty_like(labels),
        )

    def forward(self, state: ACTState, inputs: torch.Tensor, labels: torch.Tensor):
        """Run one segment. Halted rows take the new ``inputs``/``labels``; the others continue.

        Returns (new state, outputs) with outputs ``logits``, ``q_halt_logits``, ``q_continue_logits``
        and, in training with ACT on, ``target_q_continue``.
        """
        carry = self.hrm.reset_carry(state.halted, state.carry)
        steps = torch.where(state.halted, 0, state.steps)
        h2 = state.halted.view(-1, 1)
        cur_inputs = torch.where(h2, inputs, state.inputs)
        cur_labels = torch.where(h2, labels, state.labels)
        assert not carry.z_H.requires_grad and not carry.z_L.requires_grad, "carry between segments must be detached"

        new_carry, logits, (q_halt, q_cont) = self.hrm(carry, cur_inputs)
        outputs = {"logits": logits, "q_halt_logits": q_halt, "q_continue_logits": q_cont}
        with torch.no_grad():
            steps = steps + 1
            is_last = steps >= self.halt_max_steps
            halted = is_last
            if self.training and self.act and self.halt_max_steps > 1:
                halted = halted | (q_halt > q_cont)
                # Exploration: with probability p, force at least M_min ~ U{2..M_max} segments.
                explore = torch.rand_like(q_halt) < self.halt_exploration_prob
                m_min = explore * torch.randint_like(steps, low=2, high=self.halt_max_steps + 1)
                halted = halted & (steps >= m_min)
                # Bootstrapped target from the next segment's Q-values (grad_mode does not matter
                # here: everything is under no_grad).
                _, _, (nq_halt, nq_cont) = self.hrm(new_carry, cur_inputs)
                outputs["target_q_continue"] = torch.sigmoid(torch.where(is_last, nq_halt, torch.maximum(nq_halt, nq_cont)))
        return ACTState(new_carry, steps, halted, cur_inputs, cur_labels), outputs


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_LABEL_ID) -> torch.Tensor:
    """HRM's stablemax CE (Prieto et al. 2025): s(x) = x + 1 for x >= 0, 1/(1 - x) otherwise. (B, T)."""
    x = logits.double()
    s = torch.where(x < 0, 1 / (1 - x + 1e-30), x + 1)
    logp = torch.log(s / s.sum(-1, keepdim=True))
    valid = labels != ignore_index
    picked = logp.gather(-1, torch.where(valid, labels, 0).unsqueeze(-1)).squeeze(-1)
    return -torch.where(valid, picked, 0).float()


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_LABEL_ID) -> torch.Tensor:
    """Per-cell softmax CE in float32, (B, T); ignored cells give 0."""
    V = logits.shape[-1]
    return F.cross_entropy(logits.float().reshape(-1, V), labels.reshape(-1), ignore_index=ignore_index, reduction="none").view(labels.shape)


LOSSES = {"softmax": softmax_cross_entropy, "stablemax": stablemax_cross_entropy}


def sequence_loss(logits: torch.Tensor, labels: torch.Tensor, loss_type: LossType = "softmax") -> torch.Tensor:
    """Per-example mean CE over non-ignored cells, (B,)."""
    if loss_type not in LOSSES:
        raise ValueError(f"loss_type={loss_type!r} is not allowed; allowed: {', '.join(LOSSES)}")
    mask = labels != IGNORE_LABEL_ID
    per_cell = LOSSES[loss_type](logits, labels)
    return per_cell.sum(-1) / mask.sum(-1).clamp_min(1)


def correctness(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(solved (B,) bool: every non-ignored cell right, cell_acc (B,) float over non-ignored cells)."""
    mask = labels != IGNORE_LABEL_ID
    right = mask & (logits.argmax(-1) == labels)
    n = mask.sum(-1)
    return right.sum(-1) == n, right.sum(-1).float() / n.clamp_min(1)


def act_loss(outputs: dict, labels: torch.Tensor, loss_type: LossType = "softmax"):
    """HRM's ``ACTLossHead``: mean over the batch of CE + 0.5 * (BCE(q_halt, solved) + BCE(q_cont, target)).

    Returns (loss, solved (B,) bool). ``q_halt``'s target is whether the current prediction is
    exactly right; the q_continue term is present only when the outputs carry a target.
    """
    lm = sequence_loss(outputs["logits"], labels, loss_type)
    with torch.no_grad():
        solved, _ = correctness(outputs["logits"], labels)
    q_halt = F.binary_cross_entropy_with_logits(outputs["q_halt_logits"], solved.float(), reduction="none")
    q_cont = 0.0
    if "target_q_continue" in outputs:
        q_cont = F.binary_cross_entropy_with_logits(outputs["q_continue_logits"], outputs["target_q_continue"], reduction="none")
    return (lm + 0.5 * (q_halt + q_cont)).mean(), solved
