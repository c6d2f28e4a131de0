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

from potlib import checkpoints
from potlib.config import Config
from potlib.data import sudoku, sudoku_ladder
from potlib.data.sudoku import SEQ_LEN, VOCAB_SIZE  # 0 pad, 1 blank, 2..10 digits 1..9
from potlib.hrm_eval import act_halting, autocast, evaluate, hrm_segments, level_metrics  # noqa: F401 (re-exported)
from potlib.models.hrm import HRMACT, ACTState, HRMCarry, SudokuModelConfig, SudokuTransformer, act_loss, sequence_loss
from potlib.models.hrm_blocks import HRMBlock

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
    compile: bool = False  # torch.compile: the whole model on CUDA, each Transformer block on CPU

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
        threads = torch.get_num_threads()
        lad = sudoku_ladder.build_ladder(cfg.n_train, cfg.n_test, cfg.n_aug, cfg.seed, blanks=levels)
        # Building the ladder (the first time, before it is cached) runs numba's parallel solver, which sets the
        # OpenMP thread count that torch shares: a one-thread sweep worker would train on two threads after it.
        torch.set_num_threads(threads)
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

SAVE_EVERY = 500  # steps between saved training states (and at the end): what later runs can start from
# Fields that do not change the state of training after k steps: how long it runs, and its evaluation.
NOT_TRAINING = ("train_steps", "eval_M", "eval_batch_size")
HRM_ONLY = ("H_layers", "L_layers", "H_cycles", "L_cycles", "grad_mode", "halt_max_steps", "halt_exploration_prob", "act")
TRANSFORMER_ONLY = ("n_layers", "loops")


def compiled_forward(cfg: HRMTrainConfig, model: torch.nn.Module, device: torch.device):
    """What a training step calls: ``model`` itself, or with ``cfg.compile`` the model ``torch.compile``-d
    whole on CUDA and, on CPU, each of its Transformer blocks compiled in place (the loop around them
    branches on ACT halting and gradient mode, which would break a whole-model graph at every segment;
    the blocks, where the time goes, are static). Measured in ``bench_hrm``."""
    if not cfg.compile:
        return model
    if device.type == "cuda":
        return torch.compile(model)
    for block in model.modules():
        if isinstance(block, HRMBlock):
            block.compile()
    return model


def training_key(cfg: HRMTrainConfig, device: torch.device) -> dict:
    """Everything the state of a training run after k steps depends on (the key of its saved states,
    :mod:`potlib.checkpoints`): the training fields of :class:`HRMTrainConfig` that the model kind uses, the
    code (:func:`potlib.runtime.code_fingerprint` of this module and all it imports), torch's version and
    the device (with its thread count and, on CPU, the processor). Not the number of steps: a longer run
    starts where a shorter one ended."""
    from potlib.provenance import device_name
    from potlib.runtime import code_fingerprint

    unused = HRM_ONLY if cfg.model != "hrm" else TRANSFORMER_ONLY
    key = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(HRMTrainConfig)
           if f.name not in NOT_TRAINING + unused}
    key.update(code=code_fingerprint(__name__), torch=torch.__version__, device=device_name(device),
               processor=checkpoints.cpu_model() if device.type == "cpu" else "")
    return key


def _snapshot(model, opt, sched, stream: BatchStream, state, losses, halt_log, steps: int, seconds: float) -> dict:
    """The complete state of the loop after ``steps`` steps, on CPU."""
    cpu = lambda t: t.detach().to("cpu", copy=True)  # noqa: E731
    act = None if state is None else {
        "z_H": cpu(state.carry.z_H), "z_L": cpu(state.carry.z_L), "steps": cpu(state.steps),
        "halted": cpu(state.halted), "inputs": cpu(state.inputs), "labels": cpu(state.labels)}
    return {
        "model": {k: cpu(v) for k, v in model.state_dict().items()}, "opt": opt.state_dict(),
        "sched": sched.state_dict(), "stream": {"perm": stream.perm.clone(), "pos": stream.pos,
                                                "gen": stream.gen.get_state()},
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "act": act, "losses": cpu(losses[:steps]), "halt_log": cpu(halt_log[:steps]), "seconds": seconds,
    }


def _restore(snap: dict, model, opt, sched, stream: BatchStream, losses, halt_log, device):
    """Load a :func:`_snapshot` into the loop's objects; returns (ACT state or None, seconds so far)."""
    model.load_state_dict(snap["model"])
    opt.load_state_dict(snap["opt"])
    sched.load_state_dict(snap["sched"])
    stream.perm, stream.pos = snap["stream"]["perm"], snap["stream"]["pos"]
    stream.gen.set_state(snap["stream"]["gen"])
    torch.set_rng_state(snap["rng"])
    if snap["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(snap["cuda_rng"])
    n = len(snap["losses"])
    losses[:n], halt_log[:n] = snap["losses"].to(device), snap["halt_log"].to(device)
    state = None
    if snap["act"] is not None:
        a = {k: v.to(device) for k, v in snap["act"].items()}
        state = ACTState(HRMCarry(a["z_H"], a["z_L"]), a["steps"], a["halted"], a["inputs"], a["labels"])
    return state, snap["seconds"]


def train(cfg: HRMTrainConfig, model: torch.nn.Module, data: SudokuData, device: torch.device,
          store: bool = False) -> tuple[dict, dict]:
    """Train ``model`` (already on ``device``) for ``cfg.train_steps`` optimizer steps.

    Returns (metrics, artifacts). Metrics: ``final_train_loss`` (mean of the last 10% of steps),
    ``train_seconds`` (of every step, those of a reused state included); for HRM also
    ``train_mean_steps`` and ``train_exact`` (over rows that halted in the last 25% of steps). A
    non-finite loss stops training and makes ``final_train_loss`` NaN. Artifact ``train_loss``: the loss
    of every step, (train_steps,) float32.

    ``store``: start from the latest saved state of the same training (:func:`training_key`) at or below
    ``cfg.train_steps`` steps, and save states every ``SAVE_EVERY`` steps and at the end
    (:mod:`potlib.checkpoints`; off with ``POTLIB_TRAIN_CACHE=0``); metric ``train_steps_reused`` is the
    step it started from. Resuming gives the uninterrupted run bit for bit (``tests/test_hrm_train_cache.py``).
    """
    model.train()
    opt, sched = make_optimizer(cfg, model)
    fwd = compiled_forward(cfg, model, device)
    stream = BatchStream(len(data.train_x), cfg.batch_size, cfg.seed, device)
    T = cfg.train_steps
    losses = torch.full((T,), float("nan"), device=device)
    halt_log = torch.zeros((T, 3), dtype=torch.int64, device=device)  # per step: rows halted, their segments, solved
    keeper = checkpoints.TrainingStore(training_key(cfg, device)) if store and checkpoints.enabled() else None
    saved = keeper.latest(T) if keeper is not None else None
    start, state, seconds = 0, None, 0.0
    if saved is not None:
        start = saved[0]
        state, seconds = _restore(saved[1], model, opt, sched, stream, losses, halt_log, device)
    t0 = time.perf_counter()
    diverged = False
    for step in range(start, T):
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
        losses[step] = loss.detach()
        if cfg.model == "hrm":
            h = state.halted
            halt_log[step] = torch.stack((h.sum(), state.steps[h].sum(), solved[h].sum()))
        if step % 10 == 0 and not math.isfinite(loss.item()):  # a read every 10 steps: no sync per step on a GPU
            diverged = True
            break
        if keeper is not None and (step + 1) % SAVE_EVERY == 0 and step + 1 < T:
            keeper.save(step + 1, _snapshot(model, opt, sched, stream, state, losses, halt_log, step + 1,
                                            seconds + time.perf_counter() - t0))
    seconds += time.perf_counter() - t0
    loss_np = losses.cpu().numpy().astype(np.float32)
    diverged = diverged or not np.isfinite(loss_np).all()
    if keeper is not None and not diverged and start < T:
        keeper.save(T, _snapshot(model, opt, sched, stream, state, losses, halt_log, T, seconds))
    metrics = {
        "final_train_loss": float("nan") if diverged else float(np.mean(loss_np[-max(1, T // 10):])),
        "train_seconds": seconds,
        "train_steps_reused": start,
    }
    if cfg.model == "hrm":
        n, seg, ok = halt_log[T - max(1, T // 4):].sum(0).tolist()
        metrics["train_mean_steps"] = seg / max(n, 1)
        metrics["train_exact"] = ok / max(n, 1)
    return metrics, {"train_loss": loss_np}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_and_evaluate(cfg: HRMTrainConfig, device: torch.device, data: SudokuData | None = None, store: bool = True):
    """Build, train and evaluate the model of ``cfg``. Returns (model, data, metrics, artifacts).

    ``store``: :func:`train` may start from, and saves, training states (:mod:`potlib.checkpoints`)."""
    data = (data or load_data(cfg)).to(device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    metrics = {"n_params": n_params(model), "layers_computed": layers_computed(cfg), "n_train_rows": len(data.train_x)}
    m, arts = train(cfg, model, data, device, store=store)
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
    The Transformer blocks are compiled (``compile=True``, :func:`compiled_forward`; ``bench_hrm`` measures
    what it saves); those step costs were measured eager.
    """
    base = dict(data="ladder", n_train=1000, n_aug=20, n_test=100, hidden_size=64, num_heads=4, n_layers=4,
                H_layers=2, L_layers=2, H_cycles=2, L_cycles=2, train_steps=2000, batch_size=64, lr=1e-3,
                lr_warmup_steps=100, weight_decay=0.1, eval_batch_size=350, compile=True)
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
