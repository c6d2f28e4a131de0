"""Training and evaluation loops of the HRM chapter (SPEC section 3.2), shared by its experiments.

One config, :class:`HRMTrainConfig`, holds everything a run needs (data, model, optimisation,
evaluation); each experiment module subclasses it and adds its own fields. Three models
(``model``): ``"transformer"``, ``"recurrent_transformer"`` (both trained with plain supervised
steps, backprop through every layer) and ``"hrm"`` (deep supervision: every optimizer step is one
segment of a stream of puzzles, with ACT halting, as in sapientinc/HRM's ``pretrain.py``).

Metrics follow HRM's evaluation: the model runs ``halt_max_steps`` segments on every test puzzle and
the prediction after the last one is scored; ``exact_accuracy`` = all 81 cells right,
``cell_accuracy`` = fraction of cells right (givens included, as HRM scores it),
``blank_cell_accuracy`` = fraction of the blank cells right. For the inference-time scaling of Fig 5 (c) we also run
up to ``max(eval_M)`` segments and report, for every ``m`` in ``eval_M``, the accuracy after ``m``
segments (``exact_at_M{m}``) and with Q-head halting capped at ``m`` (``act_exact_Mmax{m}``,
``act_steps_Mmax{m}``: halt at the first segment where ``q_halt > q_continue``).

Optimiser: AdamW by default, or Adam-atan2 as HRM trains (``optimizer="adam_atan2"``, the PyPI
``adam-atan2-pytorch`` version), betas (0.9, 0.95), linear warmup then constant lr (HRM's
``lr_min_ratio=1``), no gradient clipping (as HRM).

Data (``data``): ``"sudoku"``, the Sudoku-Extreme-like split (``potlib.data.sudoku.build_split``) of
the paper profiles; ``"ladder"``, the difficulty ladder the CPU budget can learn
(``potlib.data.sudoku_ladder.build_ladder``: levels of k blanks plus the hard puzzles; ``n_train``
and ``n_test`` count puzzles *per level*), for which :func:`evaluate` adds per-level metrics
``exact_acc_level_<name>`` and ``blank_acc_level_<name>`` (names such as ``b5`` or ``hard``);
``"synthetic"``, valid puzzles from one solved grid under random symmetries and random blanks (no
uniqueness guarantee), only so smoke profiles and tests run without the Sudoku archive.
Tokens, symmetries and the blank-cell metric come from :mod:`potlib.data.sudoku`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from potlib.config import Config
from potlib.data import sudoku, sudoku_ladder
from potlib.data.sudoku import SEQ_LEN, VOCAB_SIZE  # 0 pad, 1 blank, 2..10 digits 1..9
from potlib.models.hrm import HRM, HRMACT, SudokuModelConfig, SudokuTransformer, act_loss, correctness, sequence_loss

SUDOKU_SOURCES = tuple(sudoku.COLLECTIONS)


@dataclass(frozen=True)
class HRMTrainConfig(Config):
    # --- data ---
    data: Literal["sudoku", "ladder", "synthetic"] = "sudoku"  # synthetic: smoke profiles and tests only
    n_train: int = 1000  # distinct training puzzles (HRM "1k" setting: 1000); ladder: per level
    n_aug: int = 100  # augmented copies of each training puzzle besides itself (HRM "1k": 1000)
    n_test: int = 1000  # held-out test puzzles (no overlap with train up to symmetry); ladder: per level
    sources: tuple[str, ...] = ("forum_hardest_1905", "forum_hardest_1106", "top1465")  # data="sudoku" collections
    synthetic_blanks: int = 50  # blanks per synthetic puzzle
    ladder_blanks: tuple[int, ...] = (5, 10, 20, 30, 40, 50)  # data="ladder": cells blanked, one level each
    ladder_hard: bool = True  # data="ladder": the hard collections' puzzles as drawn as the top level
    # --- model ---
    model: Literal["hrm", "transformer", "recurrent_transformer"] = "hrm"
    hidden_size: int = 256  # HRM paper: 512
    num_heads: int = 8
    expansion: float = 4.0  # SwiGLU expansion (HRM: 4)
    multiple_of: int = 256  # SwiGLU inner width rounded up to this (HRM: 256)
    n_layers: int = 8  # transformer / recurrent_transformer: blocks in the stack
    loops: int = 1  # recurrent_transformer: times the tied stack is applied
    H_layers: int = 4  # HRM: blocks of the high-level module
    L_layers: int = 4  # HRM: blocks of the low-level module
    H_cycles: int = 2  # HRM: high-level updates per segment
    L_cycles: int = 2  # HRM: low-level updates per high-level update
    grad_mode: Literal["one_step", "bptt"] = "one_step"  # HRM: one-step gradient; bptt: through all steps
    halt_max_steps: int = 8  # M_max: segments per puzzle at most (and at evaluation)
    halt_exploration_prob: float = 0.1  # probability of drawing M_min from [2, M_max]
    act: bool = True  # False: fixed M = halt_max_steps segments in training too
    # --- optimisation ---
    loss_type: Literal["softmax", "stablemax"] = "softmax"  # HRM's public config uses stablemax
    optimizer: Literal["adamw", "adam_atan2"] = "adamw"  # HRM uses Adam-atan2 (see make_optimizer)
    train_steps: int = 2000  # optimizer steps (HRM: one per segment)
    batch_size: int = 256
    lr: float = 1e-4  # HRM Sudoku-1k: 7e-5 with batch 384 for 20k epochs
    lr_warmup_steps: int = 100
    weight_decay: float = 1.0  # HRM Sudoku-1k: 1.0
    beta2: float = 0.95
    # --- evaluation and runtime ---
    eval_M: tuple[int, ...] = ()  # extra inference M_max values (Fig 5c); () = only halt_max_steps
    eval_batch_size: int = 500
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    compile: bool = False  # torch.compile the model on CUDA

    def check(self) -> None:
        self.require(self.n_aug >= 0, "n_aug", "an integer >= 0")
        self.require(len(self.sources) > 0 and set(self.sources) <= set(SUDOKU_SOURCES), "sources",
                     f"a non-empty tuple of {', '.join(SUDOKU_SOURCES)}")
        for f in ("n_train", "n_test", "hidden_size", "num_heads", "n_layers", "loops", "H_layers",
                  "L_layers", "H_cycles", "L_cycles", "halt_max_steps", "train_steps", "batch_size",
                  "eval_batch_size", "multiple_of"):
            self.require(getattr(self, f) >= 1, f, "an integer >= 1")
        self.require(self.hidden_size % self.num_heads == 0 and (self.hidden_size // self.num_heads) % 2 == 0,
                     "hidden_size", f"a multiple of 2 * num_heads (= {2 * self.num_heads})")
        self.require(1 <= self.synthetic_blanks <= 80, "synthetic_blanks", "an integer in [1, 80]")
        self.require(all(1 <= k <= sudoku_ladder.MAX_BLANKS for k in self.ladder_blanks)
                     and len(set(self.ladder_blanks)) == len(self.ladder_blanks)
                     and (len(self.ladder_blanks) > 0 or self.ladder_hard), "ladder_blanks",
                     f"distinct integers in [1, {sudoku_ladder.MAX_BLANKS}], non-empty unless ladder_hard")
        self.require(self.expansion > 0, "expansion", "a float > 0")
        self.require(0.0 <= self.halt_exploration_prob <= 1.0, "halt_exploration_prob", "a float in [0, 1]")
        self.require(self.lr > 0, "lr", "a float > 0")
        self.require(self.lr_warmup_steps >= 0, "lr_warmup_steps", "an integer >= 0")
        self.require(self.weight_decay >= 0, "weight_decay", "a float >= 0")
        self.require(0.0 < self.beta2 < 1.0, "beta2", "a float in (0, 1)")
        self.require(all(m >= 1 for m in self.eval_M), "eval_M", "positive integers")
        self.require(self.model == "recurrent_transformer" or self.loops == 1, "loops",
                     "1 unless model='recurrent_transformer'")

    @property
    def eval_segments(self) -> int:
        return max((self.halt_max_steps, *self.eval_M)) if self.model == "hrm" else 1


# ----------------------------------------------------------------------------------------------
# data


@dataclass
class SudokuData:
    train_x: torch.Tensor  # (N, 81) int64
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    dataset: str
    sha256: str | None
    test_level: torch.Tensor | None = None  # (N_test,) int64 index into level_names (ladder only)
    level_names: tuple[str, ...] = ()

    def to(self, device: torch.device) -> "SudokuData":
        level = None if self.test_level is None else self.test_level.to(device)
        return SudokuData(self.train_x.to(device), self.train_y.to(device), self.test_x.to(device),
                          self.test_y.to(device), self.dataset, self.sha256, level, self.level_names)


def _base_grid() -> np.ndarray:
    """A valid solved grid (digits 1..9) from the classic pattern (r*3 + r//3 + c) % 9 + 1."""
    r, c = np.meshgrid(np.arange(9), np.arange(9), indexing="ij")
    return (r * 3 + r // 3 + c) % 9 + 1


def synthetic_split(n_train: int, n_test: int, n_aug: int, seed: int, blanks: int = 50):
    """Tiny generator for smoke runs: (train_x, train_y, test_x, test_y) as (N, 81) int64 tokens.

    Each puzzle is a random symmetry of one base solution with ``blanks`` random cells emptied; each
    training puzzle appears as drawn, then ``n_aug`` further random symmetries of it (the layout of
    ``potlib.data.sudoku.build_split``: ``n_train * (1 + n_aug)`` rows). Solutions are
    valid; uniqueness is not checked.
    """
    rng = np.random.default_rng(seed)
    base = np.repeat(_base_grid().reshape(1, 81).astype(np.uint8), n_train + n_test, axis=0)
    sol = sudoku.augment_batch(base, base, rng)[1]  # (n_train + n_test, 81) symmetric variants
    quiz = sol.copy()
    np.put_along_axis(quiz, np.argsort(rng.random(quiz.shape), axis=1)[:, :blanks], 0, axis=1)
    tq, ts = np.repeat(quiz[:n_train], 1 + n_aug, axis=0), np.repeat(sol[:n_train], 1 + n_aug, axis=0)
    rows = np.flatnonzero(np.arange(len(tq)) % (1 + n_aug))  # all but the first row of each group
    tq[rows], ts[rows] = sudoku.augment_batch(tq[rows], ts[rows], rng)
    tok = lambda a: torch.from_numpy(sudoku.tokenise(a))  # noqa: E731
    return tok(tq), tok(ts), tok(quiz[n_train:]), tok(sol[n_train:])


def load_data(cfg: HRMTrainConfig) -> SudokuData:
    """The train/test split of ``cfg``: the archive's hard puzzles, the ladder, or the synthetic set."""
    if cfg.data == "synthetic":
        tx, ty, vx, vy = synthetic_split(cfg.n_train, cfg.n_test, cfg.n_aug, cfg.seed, cfg.synthetic_blanks)
        return SudokuData(tx, ty, vx, vy, "synthetic Sudoku (symmetries of one grid; smoke only)", None)
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.int64)  # noqa: E731
    if cfg.data == "ladder":
        levels = (*cfg.ladder_blanks, "hard") if cfg.ladder_hard else cfg.ladder_blanks
        lad = sudoku_ladder.build_ladder(cfg.n_train, cfg.n_test, cfg.n_aug, cfg.seed, blanks=levels)
        return SudokuData(as_t(lad.train_x), as_t(lad.train_y), as_t(lad.test_x), as_t(lad.test_y),
                          lad.info["dataset"], lad.info["dataset_sha256"], as_t(lad.test_level),
                          tuple(lad.info["levels"]))
    tx, ty, vx, vy, info = sudoku.build_split(cfg.n_train, cfg.n_test, cfg.n_aug, cfg.seed, sources=tuple(cfg.sources))
    sha = info.get("dataset_sha256", info.get("sha256"))
    return SudokuData(as_t(tx), as_t(ty), as_t(vx), as_t(vy), info.get("dataset", "sudoku"), sha)


class BatchStream:
    """Endless shuffled batches of row indices, reshuffled every epoch (seeded)."""

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device):
        self.n, self.bs, self.device = n, batch_size, device
        self.gen = torch.Generator().manual_seed(seed)
        self.perm, self.pos = torch.randperm(n, generator=self.gen), 0

    def next(self) -> torch.Tensor:
        idx = []
        need = self.bs
        while need:
            take = self.perm[self.pos : self.pos + need]
            idx.append(take)
            need -= len(take)
            self.pos += len(take)
            if self.pos >= self.n:
                self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
        return torch.cat(idx).to(self.device)


# ----------------------------------------------------------------------------------------------
# models


def model_config(cfg: HRMTrainConfig) -> SudokuModelConfig:
    """The architecture part of a training config."""
    fields = {f.name for f in dataclasses.fields(SudokuModelConfig)} & {f.name for f in dataclasses.fields(cfg)}
    return SudokuModelConfig(vocab_size=VOCAB_SIZE, seq_len=SEQ_LEN, **{f: getattr(cfg, f) for f in fields})


def build_model(cfg: HRMTrainConfig) -> torch.nn.Module:
    """An :class:`HRMACT` (model="hrm") or a :class:`SudokuTransformer`, on CPU."""
    arch = model_config(cfg)
    return HRMACT(arch) if cfg.model == "hrm" else SudokuTransformer(arch)


def layers_computed(cfg: HRMTrainConfig) -> int:
    """Block applications per puzzle at evaluation (the x axis of Fig 2 right)."""
    if cfg.model == "hrm":
        return cfg.halt_max_steps * cfg.H_cycles * (cfg.L_cycles * cfg.L_layers + cfg.H_layers)
    return cfg.n_layers * cfg.loops


def autocast(cfg: HRMTrainConfig, device: torch.device):
    if device.type == "cuda" and cfg.amp:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_optimizer(cfg: HRMTrainConfig, model: torch.nn.Module):
    """(optimizer, linear-warmup scheduler) of ``cfg.optimizer``.

    ``adam_atan2``: Adam with the update ``a * atan2(m̂, b * sqrt(v̂))`` instead of ``m̂ / (sqrt(v̂) + ε)``
    (Everett et al. 2024, arXiv:2407.05872), as HRM trains (``adam_atan2.AdamATan2``, a CUDA kernel);
    here the maintained pure-PyTorch version from PyPI, ``adam-atan2-pytorch`` 0.4.1 (``AdamAtan2``,
    defaults a = 1.27, b = 1), with the same decoupled weight decay ``p *= 1 - lr * wd`` as AdamW.
    """
    if cfg.optimizer == "adam_atan2":
        try:
            from adam_atan2_pytorch import AdamAtan2
        except ImportError as e:  # the GPU machine's plain environment may lack it
            raise ImportError("optimizer = 'adam_atan2' needs the PyPI package adam-atan2-pytorch "
                              "(pinned in requirements.lock)") from e
        opt = AdamAtan2(model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2), weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, cfg.beta2), weight_decay=cfg.weight_decay)
    warm = max(cfg.lr_warmup_steps, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
    return opt, sched


# ----------------------------------------------------------------------------------------------
# training


def train(cfg: HRMTrainConfig, model: torch.nn.Module, data: SudokuData, device: torch.device) -> tuple[dict, dict]:
    """Train ``model`` (already on ``device``) for ``cfg.train_steps`` optimizer steps.

    Returns (metrics, artifacts). Metrics: ``final_train_loss`` (mean of the last 10% of steps),
    ``train_seconds``; for HRM also ``train_mean_steps`` and ``train_exact`` (over rows that halted in
    the last 25% of steps). A non-finite loss stops training and makes ``final_train_loss`` NaN.
    """
    model.train()
    opt, sched = make_optimizer(cfg, model)
    fwd = torch.compile(model) if (cfg.compile and device.type == "cuda") else model
    stream = BatchStream(len(data.train_x), cfg.batch_size, cfg.seed, device)
    losses = np.full(cfg.train_steps, np.nan, dtype=np.float32)
    tail = cfg.train_steps - max(1, cfg.train_steps // 4)
    halted_steps = halted_solved = halted_n = 0
    state = None
    t0 = time.perf_counter()
    for step in range(cfg.train_steps):
        idx = stream.next()
        x, y = data.train_x[idx], data.train_y[idx]
        with autocast(cfg, device):
            if cfg.model == "hrm":
                if state is None:
                    state = model.initial_state(x, y)
                state, out = fwd(state, x, y)
                loss, solved = act_loss(out, state.labels, cfg.loss_type)
            else:
                loss = sequence_loss(fwd(x), y, cfg.loss_type).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses[step] = loss.item() if (step % 10 == 0 or step >= cfg.train_steps - 50) else losses[step - 1]
        if not math.isfinite(losses[step]):
            break
        if cfg.model == "hrm" and step >= tail:
            h = state.halted
            halted_n += int(h.sum())
            halted_steps += int(state.steps[h].sum())
            halted_solved += int(solved[h].sum())
    metrics = {
        "final_train_loss": float(np.mean(losses[-max(1, cfg.train_steps // 10):])),
        "train_seconds": time.perf_counter() - t0,
    }
    if cfg.model == "hrm":
        metrics["train_mean_steps"] = halted_steps / max(halted_n, 1)
        metrics["train_exact"] = halted_solved / max(halted_n, 1)
    return metrics, {"train_loss": losses}


# ----------------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def hrm_segments(cfg: HRMTrainConfig, hrm: HRM, x: torch.Tensor, y: torch.Tensor, n_segments: int, device: torch.device):
    """Run ``n_segments`` segments on every puzzle; per segment: solved, cell accuracy, q_halt > q_cont.

    Returns four (n_segments, N) arrays: solved (bool), cell accuracy, blank-cell accuracy, halt (bool).
    """
    hrm.eval()
    N = len(x)
    solved = np.zeros((n_segments, N), dtype=bool)
    cells = np.zeros((n_segments, N), dtype=np.float32)
    blanks = np.zeros((n_segments, N), dtype=np.float32)
    halt = np.zeros((n_segments, N), dtype=bool)
    for i in range(0, N, cfg.eval_batch_size):
        xb, yb = x[i : i + cfg.eval_batch_size].to(device), y[i : i + cfg.eval_batch_size].to(device)
        carry = hrm.initial_carry(len(xb), xb.shape[1])
        for s in range(n_segments):
            with autocast(cfg, device):
                carry, logits, (qh, qc) = hrm(carry, xb)
            ok, cell = correctness(logits, yb)
            solved[s, i : i + len(xb)] = ok.cpu().numpy()
            cells[s, i : i + len(xb)] = cell.float().cpu().numpy()
            blanks[s, i : i + len(xb)] = sudoku.blank_accuracy(logits.argmax(-1), yb, xb).cpu().numpy()
            halt[s, i : i + len(xb)] = (qh > qc).cpu().numpy()
    return solved, cells, blanks, halt


def level_metrics(solved: np.ndarray, blank: np.ndarray, level: torch.Tensor | None, names: tuple[str, ...]):
    """``exact_acc_level_<name>`` and ``blank_acc_level_<name>`` (means over the level's test puzzles,
    NaN for a level with none) from per-puzzle (N,) arrays; {} without levels."""
    if level is None:
        return {}
    lv = level.cpu().numpy()
    out = {}
    for n, name in enumerate(names):
        sel = lv == n
        out[f"exact_acc_level_{name}"] = float(solved[sel].mean()) if sel.any() else float("nan")
        out[f"blank_acc_level_{name}"] = float(blank[sel].mean()) if sel.any() else float("nan")
    return out


def act_halting(solved: np.ndarray, halt: np.ndarray, m_max: int) -> tuple[float, float]:
    """(exact accuracy, mean segments) when halting at the first segment with q_halt > q_continue,
    or at ``m_max``. Evaluation uses no exploration (M_min = 1)."""
    h = halt[:m_max].copy()
    h[m_max - 1] = True
    stop = h.argmax(0)  # first True per puzzle
    return float(solved[stop, np.arange(solved.shape[1])].mean()), float((stop + 1).mean())


@torch.no_grad()
def evaluate(cfg: HRMTrainConfig, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
             level: torch.Tensor | None = None, level_names: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """Test metrics (see module docstring) and per-segment curves as artifacts.

    ``level`` ((N,) int64 indices into ``level_names``, the ladder's) adds per-level metrics
    (:func:`level_metrics`, scored like ``exact_accuracy`` and ``blank_cell_accuracy``).
    """
    model.eval()
    if cfg.model != "hrm":
        ok, cell, blank = [], [], []
        for i in range(0, len(x), cfg.eval_batch_size):
            xb, yb = x[i : i + cfg.eval_batch_size].to(device), y[i : i + cfg.eval_batch_size].to(device)
            with autocast(cfg, device):
                logits = model(xb)
            a, b = correctness(logits, yb)
            ok.append(a.cpu()), cell.append(b.float().cpu())
            blank.append(sudoku.blank_accuracy(logits.argmax(-1), yb, xb).cpu())
        ok_t, blank_t = torch.cat(ok).float(), torch.cat(blank)
        metrics = {"exact_accuracy": float(ok_t.mean()), "cell_accuracy": float(torch.cat(cell).mean()),
                   "blank_cell_accuracy": float(blank_t.mean())}
        return {**metrics, **level_metrics(ok_t.numpy(), blank_t.numpy(), level, level_names)}, {}
    S, M = cfg.eval_segments, cfg.halt_max_steps
    solved, cells, blanks, halt = hrm_segments(cfg, model.hrm, x, y, S, device)
    metrics = {"exact_accuracy": float(solved[M - 1].mean()), "cell_accuracy": float(cells[M - 1].mean()),
               "blank_cell_accuracy": float(blanks[M - 1].mean())}
    metrics["act_exact"], metrics["act_mean_steps"] = act_halting(solved, halt, M)
    for m in sorted(set(cfg.eval_M)):
        metrics[f"exact_at_M{m}"] = float(solved[m - 1].mean())
        metrics[f"act_exact_Mmax{m}"], metrics[f"act_steps_Mmax{m}"] = act_halting(solved, halt, m)
    metrics.update(level_metrics(solved[M - 1], blanks[M - 1], level, level_names))
    arts = {
        "exact_by_segment": solved.mean(1).astype(np.float32),
        "cell_by_segment": cells.mean(1).astype(np.float32),
        "halt_frac_by_segment": halt.mean(1).astype(np.float32),
    }
    return metrics, arts


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_and_evaluate(cfg: HRMTrainConfig, device: torch.device, data: SudokuData | None = None):
    """Build, train and evaluate the model of ``cfg``. Returns (model, data, metrics, artifacts)."""
    data = (data or load_data(cfg)).to(device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    metrics = {"n_params": n_params(model), "layers_computed": layers_computed(cfg), "n_train_rows": len(data.train_x)}
    m, arts = train(cfg, model, data, device)
    metrics.update(m)
    if not math.isfinite(metrics["final_train_loss"]):
        metrics.update(exact_accuracy=float("nan"), cell_accuracy=float("nan"))
        return model, data, metrics, arts
    m, a = evaluate(cfg, model, data.test_x, data.test_y, device, data.test_level, data.level_names)
    metrics.update(m)
    arts.update(a)
    return model, data, metrics, arts


def cpu_base(**changes) -> dict:
    """Sizes shared by every HRM-chapter ``cpu`` profile: the difficulty ladder at d=64, batch 64.

    1,000 training puzzles per level x 20 augmentations (7 levels: 5..50 blanks and the hard
    puzzles), 100 test puzzles per level; HRM modules of 2 blocks, 2 x 2 cycles. Measured 1-thread
    step costs at this size on the idle 2-core machine: Transformer 2 / 4 / 8 / 16 layers 227 / 354 /
    745 / 1,653 ms, HRM fixed M 680-754 ms, ACT 1,139-1,296 ms (2.5-3x issue 11's estimates), so the
    deeper grids (depth_width, layers_computed) run 1,000 steps to stay within ≤ 90 min per experiment.
    lr 1e-3 with 0.1 weight decay (HRM: 7e-5 and 1.0 over GPU-days) is our choice for the short budget.
    """
    base = dict(data="ladder", n_train=1000, n_aug=20, n_test=100, hidden_size=64, num_heads=4, n_layers=4,
                H_layers=2, L_layers=2, H_cycles=2, L_cycles=2, train_steps=2000, batch_size=64, lr=1e-3,
                lr_warmup_steps=100, weight_decay=0.1, eval_batch_size=350)
    base.update(changes)
    return base


def smoke_base(**changes) -> dict:
    """Tiny sizes shared by every HRM-chapter smoke profile (synthetic data, d=32, a few steps)."""
    base = dict(data="synthetic", n_train=16, n_aug=1, n_test=16, hidden_size=32, num_heads=2, multiple_of=16,
                n_layers=2, H_layers=1, L_layers=1, H_cycles=1, L_cycles=2, halt_max_steps=2, train_steps=6,
                batch_size=16, lr=1e-3, lr_warmup_steps=2, eval_batch_size=16)
    base.update(changes)
    return base


def run_outcome(cfg: HRMTrainConfig, device: torch.device):
    """Train + evaluate ``cfg`` on ``device`` and wrap it in an ``Outcome``.

    Peak memory is measured on CUDA only (the CPU tracker would slow a whole training run down).
    """
    from potlib.memory import track_peak
    from potlib.runtime import Outcome

    data = load_data(cfg)
    # Peak memory of a training run is read on CUDA only; the CPU-tracked comparison is hrm_memory.
    with (track_peak(device) if device.type == "cuda" else contextlib.nullcontext()) as peak:
        _, data, metrics, arts = train_and_evaluate(cfg, device, data)
    return Outcome(
        metrics=metrics, artifacts=arts, dataset=data.dataset, dataset_sha256=data.sha256,
        peak_memory_bytes=peak.bytes if peak is not None else None,
        peak_memory_kind=peak.kind if peak is not None else None,
    )
