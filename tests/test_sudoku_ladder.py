"""The Sudoku difficulty ladder: blanking keeps uniqueness, the singles grader, no grid leaks, cache,
argument errors, and an end-to-end HRM run on ``data="ladder"``."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from potlib.config import ConfigError
from potlib.data import sudoku as S
from potlib.data import sudoku_ladder as L
from potlib.provenance import REPO_ROOT

SHARED = Path(os.environ.get("POTLIB_DATA") or REPO_ROOT.parent / "shared" / "datasets")
needs_sudoku = pytest.mark.skipif(not (SHARED / S.ARCHIVE).is_file(), reason=f"{S.ARCHIVE} not found in {SHARED}")

EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
HARD = "4...3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........"  # top1465 #1

# Units built here, independently of sudoku_jit's tables.
_UNITS = ([[r * 9 + c for c in range(9)] for r in range(9)] + [[r * 9 + c for r in range(9)] for c in range(9)]
          + [[(b // 3 * 3 + k // 3) * 9 + b % 3 * 3 + k % 3 for k in range(9)] for b in range(9)])  # fmt: skip
_PEERS = [set().union(*(u for u in _UNITS if c in u)) - {c} for c in range(81)]


def reference_rounds(puzzle) -> int:
    """The grader's definition, written plainly: rounds of simultaneous naked + hidden singles."""
    g = [int(v) for v in puzzle]
    rounds = 0
    while 0 in g:
        cand = {c: set(range(1, 10)) - {g[p] for p in _PEERS[c]} for c in range(81) if g[c] == 0}
        assign = {c: next(iter(s)) for c, s in cand.items() if len(s) == 1}
        for u in _UNITS:
            for d in set(range(1, 10)) - {g[c] for c in u}:
                places = [c for c in u if g[c] == 0 and d in cand[c]]
                if len(places) == 1:
                    assign[places[0]] = d
        if not assign:
            return -1
        for c, d in assign.items():
            g[c] = d
        rounds += 1
    return rounds


def _grids(n: int, seed: int = 0) -> np.ndarray:
    """``n`` symmetric variants of EASY's solution, uint8 (n, 81)."""
    sol = np.repeat(S.solve(EASY).solution[None], n, axis=0)
    return S.augment_batch(sol, sol, np.random.default_rng(seed))[1]


# ------------------------------------------------------------------------------------------ grader


def test_grader_hand_made_cases():
    sol = S.solve(EASY).solution
    one = sol.copy()
    one[40] = 0
    assert L.propagation_rounds(np.stack([sol, one])).tolist() == [0, 1]  # full grid; one blank
    assert L.propagation_rounds(S.parse_puzzles(HARD)).tolist() == [-1]  # needs search (solver guesses)
    assert S.solve(HARD).guesses > 0
    easy = L.propagation_rounds(S.parse_puzzles(EASY))[0]
    assert easy == reference_rounds(S.as_grid(EASY)) and easy >= 2
    bad = S.as_grid(EASY).copy()
    bad[2] = 5  # a second 5 in row 0
    with pytest.raises(ValueError, match="no solution"):
        L.propagation_rounds(bad[None])


def test_grader_matches_reference_and_solver():
    rng = np.random.default_rng(1)
    puzzles = L.blank_cells(_grids(48), np.repeat([20, 35, 45, 50, 52, 55], 8), rng)
    rounds = L.propagation_rounds(puzzles)
    assert rounds.tolist() == [reference_rounds(p) for p in puzzles]
    _, nsol, guesses = S.solve_many(puzzles)
    assert (nsol == 1).all() and ((rounds < 0) == (guesses > 0)).all()
    assert (rounds > 0).any() and (rounds < 0).any() and rounds.max() >= 3  # the sample spans grades
    aug = S.augment_batch(puzzles, puzzles, rng)[0]
    assert (L.propagation_rounds(aug) == rounds).all()  # a grade of the puzzle, not of its layout


# ---------------------------------------------------------------------------------------- blanking


def test_blank_cells_are_exact_and_unique():
    grids = _grids(30, seed=2)
    ks = np.repeat([1, 5, 10, 30, 50], 6)
    puzzles = L.blank_cells(grids, ks, np.random.default_rng(0))
    assert ((puzzles == 0).sum(1) == ks).all()
    assert ((puzzles == grids) | (puzzles == 0)).all()
    sol, nsol, _ = S.solve_many(puzzles, limit=2)
    assert (nsol == 1).all() and (sol == grids).all()
    with pytest.raises(ValueError, match="blanks=64"):  # greedy removal never gets that far
        L.blank_cells(grids[:1], 64, np.random.default_rng(0))


def _swap_rectangle(grid: np.ndarray) -> np.ndarray:
    """Another valid grid: swap a,b / b,a in two rows of one band (a "deadly rectangle")."""
    g = grid.reshape(9, 9).copy()
    for r1, r2, c1, c2 in ((r1, r2, c1, c2) for r1 in range(9) for r2 in range(r1 + 1, r1 // 3 * 3 + 3)
                           for c1 in range(9) for c2 in range(c1 + 1, 9)):  # fmt: skip
        if g[r1, c1] == g[r2, c2] and g[r1, c2] == g[r2, c1]:
            g[[r1, r1, r2, r2], [c1, c2, c1, c2]] = g[[r1, r1, r2, r2], [c2, c1, c2, c1]]
            return g.reshape(81)
    raise AssertionError("no rectangle")


def test_grid_invariants():
    easy = _grids(1)[0]
    grids = np.stack([easy, S.solve(HARD).solution, _swap_rectangle(easy)])
    assert all(S.is_valid_solution(g, g) for g in grids)
    assert len({c.tobytes() for c in S.canonical_forms(grids)}) == 3  # three distinct grids ...
    inv = L.grid_invariants(grids)
    assert inv.shape == (3, 72) and len({k.tobytes() for k in inv}) == 3  # ... told apart
    rng = np.random.default_rng(5)
    for _ in range(5):  # symmetric variants (relabelling, transpose, bands, rows, stacks, columns)
        assert (L.grid_invariants(S.augment_batch(grids, grids, rng)[1]) == inv).all()
    with pytest.raises(ValueError, match="full"):
        L.grid_invariants(S.parse_puzzles(EASY))


def test_blank_accuracy_numpy_and_torch():
    x = np.array([[1, 1, 2, 3], [2, 3, 4, 5]])
    y = np.array([[4, 5, 2, 3], [2, 3, 4, 5]])
    p = np.array([[4, 6, 2, 3], [2, 3, 4, 5]])
    np.testing.assert_allclose(S.blank_accuracy(p, y, x), [0.5, 0.0])
    t = S.blank_accuracy(torch.from_numpy(p), torch.from_numpy(y), torch.from_numpy(x))
    assert t.dtype == torch.float32 and t.tolist() == [0.5, 0.0]


# ------------------------------------------------------------------------------------------ ladder


@pytest.mark.parametrize(
    "kw, name",
    [(dict(n_train_per_level=-1), "n_train_per_level"), (dict(n_test_per_level=-2), "n_test_per_level"),
     (dict(n_aug=-1), "n_aug"), (dict(blanks=(5, 65)), "blanks"), (dict(blanks=(5, "extreme")), "blanks"),
     (dict(blanks=(5, 5)), "blanks"), (dict(blanks=()), "blanks")],
)  # fmt: skip
def test_build_ladder_rejects_bad_arguments(kw, name):
    args = dict(n_train_per_level=2, n_test_per_level=1, n_aug=0, seed=0) | kw
    with pytest.raises(ValueError, match=f"^{name}="):
        L.build_ladder(**args)


@pytest.fixture
def shared_data(monkeypatch, tmp_path):
    monkeypatch.setenv("POTLIB_DATA", str(SHARED))
    monkeypatch.setenv("POTLIB_DATA_CACHE", str(tmp_path / "data"))  # a fresh ladder cache


@needs_sudoku
def test_small_ladder(shared_data, monkeypatch):
    blanks, n_tr, n_te, n_aug = (5, 20, 45, "hard"), 6, 3, 2
    lad = L.build_ladder(n_tr, n_te, n_aug, seed=0, blanks=blanks)
    tri, trl, trv, tei, tel, tev, info = lad
    assert tri.shape == trl.shape == (4 * n_tr * (1 + n_aug), 81) and tei.shape == tel.shape == (4 * n_te, 81)
    assert all(a.dtype == np.int64 for a in lad[:6]) and tri.min() >= 1 and trl.min() >= 2 and tri.max() <= 10
    assert info["levels"] == ["b5", "b20", "b45", "hard"] and info["dataset"] == L.DATASET
    assert np.bincount(trv).tolist() == [n_tr * (1 + n_aug)] * 4 and np.bincount(tev).tolist() == [n_te] * 4
    x, y = S.detokenise(np.concatenate([tri, tei])), S.detokenise(np.concatenate([trl, tel]))
    lv = np.concatenate([trv, tev])
    sol, nsol, guesses = S.solve_many(x, limit=2)
    assert (nsol == 1).all() and (sol == y).all()  # every row unique, its label the solution
    nb = (x == 0).sum(1)
    for n, k in enumerate(blanks[:3]):
        assert (nb[lv == n] == k).all()
    assert nb[lv == 3].min() >= 55 and (guesses[lv == 3] > 0).all()
    # No solution grid of test in train up to symmetry: the exact canonical form, all levels pooled.
    train_keys = {k.tobytes() for k in S.canonical_forms(S.detokenise(trl))}
    assert not any(k.tobytes() in train_keys for k in S.canonical_forms(S.detokenise(tel)))
    assert info["n_test_grids_in_train_up_to_symmetry"] == 0
    originals = np.arange(len(tri)) % (1 + n_aug) == 0
    rounds = L.propagation_rounds(np.concatenate([S.detokenise(tri[originals]), S.detokenise(tei)]))
    lvo = np.concatenate([trv[originals], tev])
    for n, name in enumerate(info["levels"]):
        st = info["level_stats"][name]
        assert st["n"] == n_tr + n_te
        assert st["frac_needs_search"] == pytest.approx((rounds[lvo == n] < 0).mean(), abs=1e-3)
    monkeypatch.setattr(S, "solve_many", lambda *a, **k: pytest.fail("not served from cache"))
    again = L.build_ladder(n_tr, n_te, n_aug, seed=0, blanks=blanks)
    assert all((a == b).all() for a, b in zip(again[:6], lad[:6])) and again.info == info


@needs_sudoku
@pytest.mark.parametrize("model", ["hrm", "transformer"])
def test_hrm_train_on_the_ladder(shared_data, model):
    from potlib.hrm_train import HRMTrainConfig, run_outcome, smoke_base

    cfg = HRMTrainConfig(**smoke_base(data="ladder", model=model, n_train=4, n_test=2, ladder_blanks=(5, 40)))
    out = run_outcome(cfg, torch.device("cpu"))
    m = out.metrics
    assert out.dataset == L.DATASET and out.dataset_sha256 == S.dataset_sha256()
    assert m["n_train_rows"] == 3 * 4 * (1 + cfg.n_aug)
    names = ("b5", "b40", "hard")
    for k in ("exact_accuracy", "cell_accuracy", "blank_cell_accuracy",
              *(f"{a}_acc_level_{n}" for a in ("exact", "blank") for n in names)):  # fmt: skip
        assert k in m and 0.0 <= m[k] <= 1.0, k
    # equal test puzzles per level: the level means average to the overall metric
    assert math.isclose(np.mean([m[f"blank_acc_level_{n}"] for n in names]), m["blank_cell_accuracy"], rel_tol=1e-5)
    assert math.isclose(np.mean([m[f"exact_acc_level_{n}"] for n in names]), m["exact_accuracy"], abs_tol=1e-6)


def test_ladder_config_errors_name_the_field():
    from potlib.hrm_train import HRMTrainConfig

    for bad in ((0,), (70,), (5, 5)):
        with pytest.raises(ConfigError, match="ladder_blanks"):
            HRMTrainConfig(data="ladder", ladder_blanks=bad)
    with pytest.raises(ConfigError, match="ladder_blanks"):
        HRMTrainConfig(data="ladder", ladder_blanks=(), ladder_hard=False)
    assert HRMTrainConfig(data="ladder", ladder_blanks=(), ladder_hard=True).ladder_hard
