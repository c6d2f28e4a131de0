"""Sudoku: parsing, the counting solver, symmetries (property tests), canonical form, split, tokens."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from potlib.data import sudoku as S
from potlib.data.overlap import overlap_report
from potlib.provenance import REPO_ROOT

SHARED = Path(os.environ.get("POTLIB_DATA") or REPO_ROOT.parent / "shared" / "datasets")
HAS_SUDOKU = (SHARED / S.ARCHIVE).is_file()
needs_sudoku = pytest.mark.skipif(not HAS_SUDOKU, reason=f"{S.ARCHIVE} not found in {SHARED}")

EASY = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
HARD = "4...3.......6..8..........1....5..9..8....6...7.2........1.27..5.3....4.9........"  # top1465 #1


def test_parse_puzzles():
    text = "# comment\r\n" + EASY + "\r\n\n" + EASY.replace(".", "0") + "\n"
    p = S.parse_puzzles(text)
    assert p.shape == (2, 81) and p.dtype == np.uint8 and (p[0] == p[1]).all()
    assert p[0, 0] == 5 and p[0, 2] == 0
    with pytest.raises(ValueError, match="line 1"):
        S.parse_puzzles("123")


def test_solver_solves_and_counts_guesses():
    easy = S.solve(EASY)
    assert easy.n_solutions == 1 and S.is_valid_solution(EASY, easy.solution)
    assert easy.guesses == 0  # singles alone solve it
    hard = S.solve(HARD)
    assert hard.n_solutions == 1 and S.is_valid_solution(HARD, hard.solution)
    assert hard.guesses > 0
    sol, nsol, guesses = S.solve_many(S.parse_puzzles(EASY + "\n" + HARD))
    assert nsol.tolist() == [1, 1] and guesses.tolist() == [0, hard.guesses]
    assert (sol[1] == hard.solution).all()


def _deadly_rectangle(solution: np.ndarray) -> np.ndarray:
    """Blank 4 cells a,b / b,a in two rows of one band and two columns of two stacks: 2 solutions."""
    g = solution.reshape(9, 9)
    for r1 in range(9):
        for r2 in range(r1 + 1, (r1 // 3) * 3 + 3):
            for c1 in range(9):
                for c2 in range(c1 + 1, 9):
                    if g[r1, c1] == g[r2, c2] and g[r1, c2] == g[r2, c1]:
                        p = g.copy()
                        p[[r1, r1, r2, r2], [c1, c2, c1, c2]] = 0
                        return p.reshape(81)
    raise AssertionError("no rectangle")


def test_uniqueness_detection():
    sol = S.solve(EASY).solution
    two = _deadly_rectangle(sol)
    r = S.solve(two)
    assert r.n_solutions == 2 and S.is_valid_solution(two, r.solution)
    assert S.solve(np.zeros(81, dtype=np.uint8)).n_solutions == 2
    assert S.solve(two, limit=1).n_solutions == 1
    bad = S.as_grid(EASY).copy()
    bad[1] = 5  # a second 5 in row 0
    assert S.solve(bad).n_solutions == 0 and S.solve(bad).solution is None


@pytest.mark.parametrize("seed", range(8))
def test_augment_keeps_validity_and_canonical_form(seed):
    rng = np.random.default_rng(seed)
    puzzles = S.parse_puzzles(EASY + "\n" + HARD)
    sols, _, _ = S.solve_many(puzzles)
    keys = [S.canonical_form(p) for p in puzzles]
    for p, s, k in zip(puzzles, sols, keys):
        a, b = S.augment(p, s, rng)
        assert S.is_valid_solution(a, b)  # solution valid, consistent with every clue
        assert (a != 0).sum() == (p != 0).sum()
        r = S.solve(a)
        assert r.n_solutions == 1 and (r.solution == b).all()  # still unique, same solution
        assert S.canonical_form(a) == k
    assert keys[0] != keys[1]


def test_canonical_form_separates_and_is_invariant():
    p = S.as_grid(HARD)
    key = S.canonical_form(p)
    assert S.canonical_form(p.reshape(9, 9).T) == key
    relabel = np.array([0, 9, 8, 7, 6, 5, 4, 3, 2, 1], dtype=np.uint8)
    assert S.canonical_form(relabel[p]) == key
    swapped = p.reshape(9, 9)[[3, 4, 5, 0, 1, 2, 6, 7, 8]][:, [2, 1, 0, 3, 4, 5, 8, 7, 6]]
    assert S.canonical_form(swapped) == key
    q = p.copy()
    q[np.flatnonzero(q)[0]] = 0  # one clue fewer: a different puzzle
    assert S.canonical_form(q) != key
    bad_geometry = p.reshape(9, 9)[[1, 2, 3, 0, 4, 5, 6, 7, 8]]  # row 3 moved into band 0
    assert S.canonical_form(bad_geometry) != key


def test_tokens_and_metrics():
    g = S.parse_puzzles(EASY)
    t = S.tokenise(g)
    assert t.dtype == np.int64 and t.min() >= 1 and t.max() <= S.VOCAB_SIZE - 1
    assert (t[g == 0] == 1).all() and (S.detokenise(t) == g).all()
    labels = S.tokenise(S.solve(EASY).solution[None])
    pred = labels.copy()
    pred[0, np.flatnonzero(g[0] == 0)[0]] = 2 if labels[0, 2] != 2 else 3
    both_l = np.concatenate([labels, labels])
    both_p = np.concatenate([labels, pred])
    assert S.exact_accuracy(both_p, both_l) == 0.5
    assert S.cell_accuracy(both_p, both_l) == pytest.approx(1 - 1 / 162)
    blanks = int((g == 0).sum())
    assert S.cell_accuracy(both_p, both_l, np.concatenate([t, t])) == pytest.approx(
        1 - 1 / (2 * blanks)
    )
    assert S.exact_accuracy(torch.from_numpy(both_p), torch.from_numpy(both_l)) == 0.5


def test_overlap_report_sudoku():
    puzzles = S.parse_puzzles(EASY + "\n" + HARD)
    sols, _, _ = S.solve_many(puzzles)
    aug, _ = S.augment_batch(puzzles, sols, np.random.default_rng(3))
    rep = overlap_report(puzzles[:1], aug, "sudoku")
    assert (rep.n_train, rep.n_eval, rep.n_eval_in_train, rep.fraction) == (1, 2, 1, 0.5)
    rep_tok = overlap_report(S.tokenise(puzzles), S.tokenise(aug), "sudoku")
    assert rep_tok.fraction == 1.0 and len(rep_tok.examples) == 2


@pytest.fixture
def shared_data(monkeypatch, tmp_path):
    monkeypatch.setenv("POTLIB_DATA", str(SHARED))
    monkeypatch.setenv("POTLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POTLIB_DATA_CACHE", raising=False)  # the split's cache test needs it fresh


@needs_sudoku
def test_collections_load(shared_data):
    sizes = {k: len(S.load_collection(k)) for k in S.COLLECTIONS}
    assert sizes == {"top1465": 1465, "forum_hardest_1905": 48766, "forum_hardest_1106": 375,
                     "17_clue": 49158}  # fmt: skip
    top = S.load_collection("top1465")[:200]
    sol, nsol, guesses = S.solve_many(top)
    assert (nsol == 1).all() and all(S.is_valid_solution(p, s) for p, s in zip(top, sol))
    assert guesses.min() >= 0 and np.median(guesses) > 5


@needs_sudoku
def test_build_split_has_no_overlap_and_is_cached(shared_data, monkeypatch):
    tri, trl, tei, tel, info = S.build_split(12, 6, 3, seed=0)
    assert tri.shape == trl.shape == (48, 81) and tei.shape == tel.shape == (6, 81)
    assert all(a.dtype == np.int64 for a in (tri, trl, tei, tel))
    assert tri.min() >= 1 and tri.max() <= 10 and trl.min() >= 2
    for x, y in zip(np.concatenate([tri, tei]), np.concatenate([trl, tel])):
        assert S.is_valid_solution(S.detokenise(x), S.detokenise(y))
    originals = S.detokenise(tri[::4])
    assert overlap_report(originals, S.detokenise(tei), "sudoku").n_eval_in_train == 0
    assert overlap_report(S.detokenise(tri), S.detokenise(tei), "sudoku").n_eval_in_train == 0
    # each group is one puzzle and its augmentations
    assert overlap_report(originals[:1], S.detokenise(tri[:4]), "sudoku").fraction == 1.0
    assert info["n_test_in_train_up_to_symmetry"] == 0 and info["n_train_rows"] == 48
    assert sum(info["train_sources"].values()) == 12
    monkeypatch.setattr(S, "solve_many", lambda *a, **k: pytest.fail("not served from cache"))
    again = S.build_split(12, 6, 3, seed=0)
    assert (again[0] == tri).all() and again[4] == info


@needs_sudoku
def test_build_split_drops_symmetric_duplicates(shared_data, monkeypatch):
    """A pool made of 10 puzzles and 3 symmetric variants of each: the split must not leak."""
    base = S.load_collection("forum_hardest_1106")[:10]
    sols, _, _ = S.solve_many(base)
    rng = np.random.default_rng(0)
    pool = np.concatenate([base] + [S.augment_batch(base, sols, rng)[0] for _ in range(3)])
    monkeypatch.setattr(S, "load_collection", lambda name: pool)
    tri, _, tei, _, info = S.build_split(6, 4, 0, seed=1, sources=("top1465",))
    keys_tr = {S.canonical_form(p) for p in S.detokenise(tri)}
    keys_te = {S.canonical_form(p) for p in S.detokenise(tei)}
    assert len(keys_tr) == 6 and len(keys_te) == 4 and not keys_tr & keys_te
    with pytest.raises(ValueError, match="only 10 distinct"):
        S.build_split(8, 4, 0, seed=1, sources=("top1465",))


def test_build_split_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_train=0"):
        S.build_split(0, 1, 0, seed=0)
    with pytest.raises(ValueError, match="unknown"):
        S.build_split(1, 1, 0, seed=0, sources=("sudoku_extreme",))
