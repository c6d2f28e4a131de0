"""Evaluation of the HRM chapter's Sudoku models (SPEC section 3.2), as HRM scores them.

``exact_accuracy`` = all 81 cells right after ``halt_max_steps`` segments (HRM's protocol),
``cell_accuracy`` = fraction of cells right (givens included, as HRM scores it),
``blank_cell_accuracy`` = fraction of the blank cells right; with Q-head halting (``act_exact``,
``act_mean_steps``) and, for Fig 5 (c), at every ``m`` of ``eval_M`` (``exact_at_M{m}``,
``act_exact_Mmax{m}``, ``act_steps_Mmax{m}``); the ladder adds per-level metrics. Used by
:mod:`potlib.hrm_train` (which re-exports these names); ``cfg`` is an ``HRMTrainConfig``.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from potlib.config import Config
from potlib.data import sudoku
from potlib.models.hrm import HRM, correctness


def autocast(cfg: Config, device: torch.device):
    """bf16 autocast on CUDA when ``cfg.amp``; nothing on CPU."""
    if device.type == "cuda" and cfg.amp:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def hrm_segments(cfg: Config, hrm: HRM, x: torch.Tensor, y: torch.Tensor, n_segments: int, device: torch.device):
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
def evaluate(cfg: Config, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
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
