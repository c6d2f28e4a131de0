"""A Sudoku difficulty ladder the CPU budget can learn (SPEC 3.2; SPEC 4, "Sudoku at CPU scale").

Levels: ``b<k>``, a solution grid with ``k`` cells blanked in a random order, a removal that breaks
uniqueness (the counting solver of :mod:`potlib.data.sudoku_jit`, ``limit=2``) being undone and the
next cell tried; ``hard``, the hard collections' puzzles as drawn (55+ blanks). No solution grid is
used twice up to symmetry, so test and train share none across levels. Every puzzle is graded by
:func:`propagation_rounds`. Tokens, augmentation, row layout and caching follow ``sudoku.build_split``.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from potlib.data import sudoku as S
from potlib.data import sudoku_jit as jit
from potlib.data.root import data_cache

DATASET = "Sudoku difficulty ladder (from tdoku solution grids)"
DEFAULT_BLANKS: tuple[int | str, ...] = (5, 10, 20, 30, 40, 50, "hard")
MAX_BLANKS = 64  # a unique puzzle has >= 17 clues (McGuire et al. 2012)
GRID_SOURCES = ("17_clue",)  # grids to blank: solved at ~90k/s (forum collections: 2-4k/s); as SPEC 4
_LADDER_VERSION = 1
_KEYS = ("tri", "trl", "trv", "tei", "tel", "tev")  # arrays in the cache file, in Ladder's order
_MAX_TRIES = 20  # fresh random cell orders for a grid whose greedy removal got stuck short of k


class Ladder(NamedTuple):
    train_x: np.ndarray  # (N_train_rows, 81) int64 tokens: 1 blank, 2..10 digits
    train_y: np.ndarray  # (N_train_rows, 81) int64 solution tokens
    train_level: np.ndarray  # (N_train_rows,) int64 index into info["levels"]
    test_x: np.ndarray  # (N_test, 81) int64
    test_y: np.ndarray  # (N_test, 81) int64
    test_level: np.ndarray  # (N_test,) int64
    info: dict[str, Any]


# -- grading ---------------------------------------------------------------------------------------
@njit(cache=True)
def _rounds_one(puzzle):
    """Rounds of simultaneous singles. Returns (rounds, status): 2 solved, 1 stuck, 0 contradiction."""
    grid, m = np.zeros(81, dtype=np.uint8), np.zeros(27, dtype=np.int64)
    cand, assign = np.zeros(81, dtype=np.int64), puzzle.astype(np.int64)  # the givens are "round 0"
    rounds = -1
    while True:
        placed = np.flatnonzero(assign)
        for cell in placed:
            if jit._cand(m, cell) & (1 << (assign[cell] - 1)) == 0:
                return max(rounds, 0), 0  # a digit twice in a unit
            jit._place(grid, m, cell, assign[cell])
        if len(placed) == 0:
            return rounds, 1
        rounds += 1
        blank = np.flatnonzero(grid == 0)
        if len(blank) == 0:
            return rounds, 2
        assign[:] = cand[:] = 0
        for cell in blank:  # naked singles, from the grid at the start of the round
            cand[cell] = c = jit._cand(m, cell)
            if c == 0:
                return rounds, 0
            if c & (c - 1) == 0:
                assign[cell] = jit.LOWBIT[c] + 1
        for u in range(27):  # hidden singles, from the same candidates
            for d in range(9):
                n, where = 0, -1
                for k in range(9):
                    if cand[jit.UNITS[u, k]] & (1 << d):
                        n, where = n + 1, jit.UNITS[u, k]
                if (n == 0 and not m[u] & (1 << d)) or (n == 1 and assign[where] != 0 and assign[where] != d + 1):
                    return rounds, 0  # a digit without a place, or one cell the only place of two
                if n == 1:
                    assign[where] = d + 1


@njit(cache=True, parallel=True)
def _rounds_batch(puzzles, rounds, status):
    for i in prange(puzzles.shape[0]):
        rounds[i], status[i] = _rounds_one(puzzles[i])


def propagation_rounds(puzzles: Any) -> np.ndarray:
    """Difficulty of (N, 81) puzzles by constraint propagation: int64 (N,), -1 = "needs search".

    A round finds every naked single (a blank with one candidate) and hidden single (a digit with
    one place in a row, column or box) of the grid as it stands and places them all; the grade is
    the number of rounds to a full grid (0 for a full grid, 1 for one blank), -1 when singles stall.
    With a solution, singles reach one fixed point in any order: -1 iff ``sudoku_jit``'s solver guesses.
    Raises ValueError when propagation meets a contradiction (no solution).
    """
    p = S._as_batch(puzzles)
    rounds, status = np.zeros(len(p), dtype=np.int64), np.zeros(len(p), dtype=np.int64)
    _rounds_batch(p, rounds, status)
    if (status == 0).any():
        raise ValueError(f"puzzles {np.flatnonzero(status == 0)[:5].tolist()}...: no solution")
    return np.where(status == 2, rounds, -1)


# -- blanking --------------------------------------------------------------------------------------
@njit(cache=True)
def _blank_one(grid, order, k, out):
    """Blank up to ``k`` cells of ``grid`` in ``order``, undoing removals that break uniqueness."""
    out[:], scratch, removed = grid, np.zeros(81, dtype=np.uint8), 0
    for cell in order:
        if removed == k:
            break
        d, out[cell] = out[cell], 0
        if jit.solve_one(out, scratch, 2)[0] == 1:
            removed += 1
        else:
            out[cell] = d
    return removed


@njit(cache=True, parallel=True)
def _blank_batch(grids, orders, ks, out, removed):
    for i in prange(grids.shape[0]):
        removed[i] = _blank_one(grids[i], orders[i], ks[i], out[i])


def blank_cells(grids: Any, ks: Any, rng: np.random.Generator) -> np.ndarray:
    """Puzzles with exactly ``ks[i]`` blanks and a unique solution, from full grids: uint8 (N, 81).
    A grid stuck short of ``k`` is retried in a fresh order; ValueError after ``_MAX_TRIES``."""
    g = S._as_batch(grids, "grids")
    ks = np.broadcast_to(np.asarray(ks, dtype=np.int64), (len(g),))
    out, todo = np.zeros_like(g), np.arange(len(g))
    for _ in range(_MAX_TRIES):
        orders = np.argsort(rng.random((len(todo), 81)), axis=1)  # (n, 81): a random order per grid
        o, r = np.zeros((len(todo), 81), dtype=np.uint8), np.zeros(len(todo), dtype=np.int64)
        _blank_batch(g[todo], orders, ks[todo], o, r)
        out[todo] = o
        todo = todo[r < ks[todo]]
        if not len(todo):
            return out
    raise ValueError(f"blanks={int(ks[todo[0]])}: {len(todo)} grids got stuck short of it in {_MAX_TRIES} "
                     "random orders (greedy removal keeping a unique solution rarely passes ~58)")  # fmt: skip


# -- distinct solution grids -----------------------------------------------------------------------
@njit(cache=True)
def _invariant_one(g, out):
    sig, n = np.zeros(9, dtype=np.int64), 0
    for t in range(2):  # row pairs, then column pairs
        for i in range(9):
            for j in range(i + 1, 9):
                for c in range(9):  # sig: line i's digit in column c -> line j's digit there
                    a, b = (i * 9 + c, j * 9 + c) if t == 0 else (c * 9 + i, c * 9 + j)
                    sig[g[a] - 1] = g[b] - 1
                lens = np.ones(9, dtype=np.int64)  # the cycle length of each element
                for e in range(9):
                    x = sig[e]
                    while x != e:
                        x, lens[e] = sig[x], lens[e] + 1
                code = 10**9 if i // 3 == j // 3 else 0  # "same band", then the sorted lengths as 9 digits
                for q, length in enumerate(np.sort(lens)):
                    code += length * 10**q
                out[n], n = code, n + 1
    out.sort()


@njit(cache=True, parallel=True)
def _invariant_batch(grids, out):
    for i in prange(grids.shape[0]):
        _invariant_one(grids[i], out[i])


def grid_invariants(grids: Any) -> np.ndarray:
    """A symmetry invariant of full (N, 81) grids, int64 (N, 72): equal for symmetric variants.

    The map from row i's digit in column c to row j's digit there has a cycle type that digit
    relabelling (conjugation) and column permutations keep; row permutations only reorder the
    pairs (a flag keeps "same band"). The sorted codes of the 36 row and 36 column pairs, pooled
    against transposition, are the key. Different keys prove two grids are not symmetric variants;
    equal ones may differ (``sudoku.canonical_forms`` is exact, ~3.5 ms a grid vs ~10 us here).
    """
    g = S._as_batch(grids, "grids")
    if len(g) and g.min() == 0:
        raise ValueError("grids must be full (no blanks)")
    _invariant_batch(g, out := np.zeros((len(g), 72), dtype=np.int64))
    return out


def _draw(pool: np.ndarray, order: np.ndarray, need: int, seen: set[bytes]):
    """Walk ``order`` for puzzles whose solution grid's invariant is new to ``seen`` (and add it).
    A tie counts as a duplicate (at worst a distinct grid is skipped). Returns (indices, solutions
    uint8 (need, 81), number skipped)."""
    idx, sols, n_dup, pos = [], [], 0, 0
    while len(idx) < need and pos < len(order):
        chunk = order[pos : pos + 64 + (need - len(idx)) * 11 // 10]
        pos += len(chunk)
        sol, nsol, _ = S.solve_many(pool[chunk])
        chunk, sol = chunk[nsol == 1], sol[nsol == 1]  # every tdoku puzzle has one; be safe
        for i, s, key in zip(chunk, sol, (k.tobytes() for k in grid_invariants(sol))):
            if len(idx) == need:
                break
            n_dup += key in seen
            if key not in seen:
                seen.add(key), idx.append(i), sols.append(s)
    if len(idx) < need:
        raise ValueError(f"the pool has only {len(idx)} usable distinct grids; {need} needed")
    return np.array(idx, dtype=np.int64), np.array(sols, dtype=np.uint8).reshape(-1, 81), n_dup


# -- the ladder ------------------------------------------------------------------------------------
def _check_args(n_train: int, n_test: int, n_aug: int, seed: int, blanks: tuple) -> None:
    for name, v, lo in (("n_train_per_level", n_train, 1), ("n_test_per_level", n_test, 0),
                        ("n_aug", n_aug, 0), ("seed", seed, 0)):  # fmt: skip
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"{name}={v!r} is not allowed; allowed: an int >= {lo}")
    bad = [b for b in blanks if not (b == "hard" or (type(b) is int and 1 <= b <= MAX_BLANKS))]
    if not blanks or bad or len(set(blanks)) != len(blanks):
        raise ValueError(f"blanks={blanks!r} is not allowed ({bad or 'empty or repeated'}); allowed: "
                         f"distinct ints in 1..{MAX_BLANKS} (cells blanked) and 'hard'")  # fmt: skip


def _stats(puzzles: np.ndarray, rounds: np.ndarray, guesses: np.ndarray) -> dict[str, Any]:
    nb, r, f = (puzzles == 0).sum(1), rounds[rounds >= 0], lambda v: round(float(v), 3)
    return {"n": len(puzzles), "blanks_min": int(nb.min()), "blanks_mean": f(nb.mean()), "blanks_max": int(nb.max()),
            "rounds_mean": f(r.mean()) if len(r) else None, "rounds_median": f(np.median(r)) if len(r) else None,
            "rounds_max": int(r.max()) if len(r) else None, "frac_needs_search": f((rounds < 0).mean()),
            "guesses_median": f(np.median(guesses)), "guesses_mean": f(guesses.mean())}  # fmt: skip


def build_ladder(n_train_per_level: int, n_test_per_level: int, n_aug: int, seed: int,
                 blanks: tuple[int | str, ...] = DEFAULT_BLANKS) -> Ladder:  # fmt: skip
    """The ladder: :class:`Ladder` of int64 token arrays, per-row level indices and ``info``.

    ``blanks`` lists the levels: an int ``k`` in 1..64 is a solution grid with ``k`` cells blanked,
    unique solution (named ``b<k>``); ``"hard"`` the hard collections' puzzles as drawn. A level has
    ``n_test_per_level`` test then ``n_train_per_level`` training puzzles, each on its own solution
    grid (none twice up to symmetry: test shares none with train, checked again before returning).
    Training rows: each puzzle as drawn, then ``n_aug`` augmented copies (HRM's layout), levels in
    the order of ``blanks``. ``info``: dataset name and sha256, ``levels`` (names ``*_level`` index)
    and ``level_stats`` of the distinct puzzles (blanks, propagation rounds, share needing search,
    solver guesses). Cached in ``data_cache()`` by arguments, archive sha256 and version. ~6 s for
    1,000 + 200 puzzles a level, n_aug=20, 7 levels, one busy core (+~25 s once: numba compiles).
    """
    blanks = tuple(blanks)
    _check_args(n_train_per_level, n_test_per_level, n_aug, seed, blanks)
    args = dict(n_train_per_level=n_train_per_level, n_test_per_level=n_test_per_level, n_aug=n_aug,
                seed=seed, blanks=list(blanks), sha256=S.dataset_sha256(), version=_LADDER_VERSION)  # fmt: skip
    key = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:16]
    path = data_cache() / f"sudoku_ladder-{key}.npz"
    if path.is_file():
        z = np.load(path)
        return Ladder(*(z[k].astype(np.int64) for k in _KEYS), json.loads(str(z["info"])))

    t0, rng, seen, n_dup = time.perf_counter(), np.random.default_rng(seed), set(), 0
    nt, per = n_test_per_level, n_test_per_level + n_train_per_level
    lv: dict[int | str, tuple[np.ndarray, np.ndarray]] = {}  # level -> (puzzles, grids), (per, 81) each
    if "hard" in blanks:  # first, so that no blanked level takes a hard puzzle's grid
        pool = np.concatenate([S.load_collection(h) for h in S.HARD])
        idx, sol, n_dup = _draw(pool, rng.permutation(len(pool)), per, seen)
        lv["hard"] = (pool[idx], sol)
    if ks := [b for b in blanks if b != "hard"]:
        pool = np.concatenate([S.load_collection(c) for c in GRID_SOURCES])
        _, sol, d = _draw(pool, rng.permutation(len(pool)), per * len(ks), seen)
        p, n_dup = blank_cells(sol, np.repeat(ks, per), rng), n_dup + d
        lv.update({k: (p[n * per : (n + 1) * per], sol[n * per : (n + 1) * per]) for n, k in enumerate(ks)})
    P, G = (np.stack([lv[b][i] for b in blanks]) for i in (0, 1))  # (L, per, 81): test rows first

    # Independent checks of what is returned: every puzzle unique and solved by its grid ...
    sol, nsol, guesses = S.solve_many(P.reshape(-1, 81))
    if (nsol != 1).any() or (sol != G.reshape(-1, 81)).any():
        raise AssertionError(f"{int((nsol != 1).sum())} ladder puzzles lack a unique solution")
    # ... and no test grid in train up to symmetry: symmetric grids have equal invariants, so test
    # invariants absent from train prove it (recomputed from the arrays, not taken from _draw).
    train_keys = {k.tobytes() for k in grid_invariants(G[:, nt:].reshape(-1, 81))}
    if n_overlap := sum(k.tobytes() in train_keys for k in grid_invariants(G[:, :nt].reshape(-1, 81))):
        raise AssertionError(f"{n_overlap} test solution grids may be in train up to symmetry")
    rounds, guesses = propagation_rounds(P.reshape(-1, 81)).reshape(P.shape[:2]), guesses.reshape(P.shape[:2])

    tr_x = np.repeat(P[:, nt:].reshape(-1, 81), 1 + n_aug, axis=0)
    tr_y = np.repeat(G[:, nt:].reshape(-1, 81), 1 + n_aug, axis=0)
    rows = np.flatnonzero(np.arange(len(tr_x)) % (1 + n_aug))  # all but the first row of each group
    for lo in range(0, len(rows), 65536):  # chunks bound the (rows, 81) int64 index temporaries
        r = rows[lo : lo + 65536]
        tr_x[r], tr_y[r] = S.augment_batch(tr_x[r], tr_y[r], rng)
    names = [b if b == "hard" else f"b{b}" for b in blanks]
    info = {
        "dataset": DATASET, "dataset_sha256": S.dataset_sha256(),
        **{k: v for k, v in args.items() if k not in ("sha256", "version")}, "levels": names,
        "level_stats": {nm: _stats(P[n], rounds[n], guesses[n]) for n, nm in enumerate(names)},
        "n_train_rows": len(tr_x), "grid_sources": {"hard": list(S.HARD), "blanked": list(GRID_SOURCES)},
        "n_test_grids_in_train_up_to_symmetry": int(n_overlap),
        "n_skipped_duplicate_grids": int(n_dup),  # drawn grids equal, up to symmetry, to one kept
        "overlap_method": "no test solution grid shares train's symmetry invariants (grid_invariants)",
        "grader": "propagation_rounds: rounds of simultaneous naked + hidden singles; -1 needs search",
        "build_seconds": round(time.perf_counter() - t0, 2),
    }
    level = np.arange(len(blanks), dtype=np.int8)
    out = dict(tri=tr_x + 1, trl=tr_y + 1, trv=np.repeat(level, n_train_per_level * (1 + n_aug)),
               tei=P[:, :nt].reshape(-1, 81) + 1, tel=G[:, :nt].reshape(-1, 81) + 1, tev=np.repeat(level, nt))
    S._save_npz(path, **out, info=np.array(json.dumps(info)))
    return Ladder(*(out[k].astype(np.int64) for k in _KEYS), info)
