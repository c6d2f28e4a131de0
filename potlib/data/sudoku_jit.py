"""Numba kernels for Sudoku: a counting solver and an exact canonical form.

Grids are flat ``uint8[81]`` in row-major order, 0 = blank, 1..9 = digits.

**Solver.** Depth-first search over bitmask candidates (a 9-bit mask per row, column and box of the
digits already placed). Every node is first propagated to a fixed point with naked singles (a cell
with one candidate) and hidden singles (a digit with one place in a unit); then the search branches
on the empty cell with the fewest candidates (MRV). It does not stop at the first solution: it
counts solutions up to ``limit`` (2 proves uniqueness: the whole tree is searched). ``guesses``
counts the values tried at a branching cell while other candidates remain (the last candidate of a
cell is forced, not guessed), so a puzzle solved by propagation alone has 0. The count depends on
the solver's propagation and branching order: ours is comparable to, not identical with, tdoku's
(the medians in the dataset README).

**Canonical form.** Minimum, in lexicographic order, over the geometric group (transpose x band
permutation x row permutations within bands x stack permutation x column permutations within
stacks: 2 * 6^8 = 3,359,232 elements) of the transformed grid with its digits relabelled 1, 2, ...
by first appearance (blanks stay 0, so they sort first). Every symmetric variant, digit relabelling
included, has the same form; two puzzles have the same form iff one is a symmetric variant of the
other. Exact, not a hash. Cost: for each transpose and each of the 1,296 column permutations a
branch-and-bound search over the 1,296 row orders that compares row by row with the best so far
and prunes as soon as a prefix is larger; see ``canonical_form`` in ``sudoku.py`` for timings.
"""

from __future__ import annotations

import itertools

import numpy as np
from numba import njit, prange

# Unit tables: units 0-8 rows, 9-17 columns, 18-26 boxes; the mask array has the same order.
ROW = np.array([c // 9 for c in range(81)], dtype=np.int64)
COL = np.array([c % 9 for c in range(81)], dtype=np.int64)
BOX = np.array([(c // 27) * 3 + (c % 9) // 3 for c in range(81)], dtype=np.int64)
UNITS = np.array(
    [[r * 9 + c for c in range(9)] for r in range(9)]
    + [[r * 9 + c for r in range(9)] for c in range(9)]
    + [[(b // 3) * 27 + (b % 3) * 3 + (k // 3) * 9 + k % 3 for k in range(9)] for b in range(9)],
    dtype=np.int64,
)
POPCOUNT = np.array([bin(i).count("1") for i in range(512)], dtype=np.int64)
LOWBIT = np.array([(i & -i).bit_length() - 1 if i else -1 for i in range(512)], dtype=np.int64)
FULL = 0x1FF


def _line_perms() -> np.ndarray:
    """The 1,296 permutations of 9 lines that keep bands (groups of 3) together."""
    out = []
    for bands in itertools.permutations(range(3)):
        for a, b, c in itertools.product(itertools.permutations(range(3)), repeat=3):
            within = (a, b, c)
            out.append([bands[k] * 3 + within[k][i] for k in range(3) for i in range(3)])
    return np.array(out, dtype=np.int64)


LINE_PERMS = _line_perms()  # (1296, 9)


@njit(cache=True)
def _place(grid, m, cell, d):
    grid[cell] = d
    bit = 1 << (d - 1)
    m[ROW[cell]] |= bit
    m[9 + COL[cell]] |= bit
    m[18 + BOX[cell]] |= bit


@njit(cache=True)
def _cand(m, cell):
    return ~(m[ROW[cell]] | m[9 + COL[cell]] | m[18 + BOX[cell]]) & FULL


@njit(cache=True)
def _propagate(grid, m, cand):
    """Singles to a fixed point. Returns (status, cell): 0 dead end, 1 open (branch on cell), 2 solved.

    ``cand`` is scratch space for the candidate masks of the sweep; during the hidden-single pass it
    may be stale (a superset, as placements only remove candidates), which can miss a single or a
    dead end for one round but never invent one: each placement re-checks the live mask.
    """
    while True:
        changed = False
        best, best_n = -1, 10
        for cell in range(81):
            if grid[cell] != 0:
                cand[cell] = 0
                continue
            c = _cand(m, cell)
            if c == 0:
                return 0, -1
            if c & (c - 1) == 0:  # naked single
                _place(grid, m, cell, LOWBIT[c] + 1)
                changed = True
                c = 0
            elif POPCOUNT[c] < best_n:
                best, best_n = cell, POPCOUNT[c]
            cand[cell] = c
        if changed:
            continue
        if best == -1:
            return 2, -1
        for u in range(27):  # hidden singles
            once, twice = 0, 0
            for k in range(9):
                c = cand[UNITS[u, k]]
                twice |= once & c
                once |= c
            if (once | m[u]) != FULL:  # some digit has no place left in this unit
                return 0, -1
            hidden = once & ~twice & ~m[u]
            if hidden:
                for k in range(9):
                    cell = UNITS[u, k]
                    if grid[cell] == 0 and cand[cell] & hidden:
                        h = _cand(m, cell) & hidden
                        if h & (h - 1):  # one cell is the only place of two digits
                            return 0, -1
                        if h:
                            _place(grid, m, cell, LOWBIT[h] + 1)
                            cand[cell] = 0
                            changed = True
        if not changed:
            return 1, best


@njit(cache=True)
def solve_one(puzzle, out, limit):
    """Solve ``puzzle``; write the first solution to ``out``. Returns (n_solutions <= limit, guesses)."""
    grids = np.zeros((82, 81), dtype=np.uint8)
    masks = np.zeros((82, 27), dtype=np.int64)
    cells = np.zeros(82, dtype=np.int64)
    cands = np.zeros(82, dtype=np.int64)
    scratch = np.zeros(81, dtype=np.int64)
    for cell in range(81):
        d = puzzle[cell]
        if d != 0:
            if d > 9 or _cand(masks[0], cell) & (1 << (d - 1)) == 0:
                return 0, 0  # a digit out of range or repeated in a unit
            _place(grids[0], masks[0], cell, d)
    status, cell = _propagate(grids[0], masks[0], scratch)
    if status == 0:
        return 0, 0
    if status == 2:
        out[:] = grids[0]
        return 1, 0
    nsol, guesses, depth = 0, 0, 0
    cells[0] = cell
    cands[0] = _cand(masks[0], cell)
    while depth >= 0:
        c = cands[depth]
        if c == 0:
            depth -= 1
            continue
        low = c & -c
        cands[depth] = c ^ low
        grids[depth + 1, :] = grids[depth]
        masks[depth + 1, :] = masks[depth]
        _place(grids[depth + 1], masks[depth + 1], cells[depth], LOWBIT[low] + 1)
        if cands[depth] != 0:  # a guess while alternatives remain; the last one is forced
            guesses += 1
        status, cell = _propagate(grids[depth + 1], masks[depth + 1], scratch)
        if status == 0:
            continue
        if status == 2:
            nsol += 1
            if nsol == 1:
                out[:] = grids[depth + 1]
            if nsol >= limit:
                return nsol, guesses
            continue
        depth += 1
        cells[depth] = cell
        cands[depth] = _cand(masks[depth], cell)
    return nsol, guesses


@njit(cache=True, parallel=True)
def solve_batch(puzzles, out, nsol, guesses, limit):
    for i in prange(puzzles.shape[0]):
        nsol[i], guesses[i] = solve_one(puzzles[i], out[i], limit)


@njit(cache=True)
def _rows_search(g, cp, best, used, rows_sel, next_r, labs, nxt):
    """Branch and bound over row orders for a fixed column order ``cp`` (see module docstring).

    Iterative depth-first search (numba cannot cache recursive functions). ``best`` holds the
    smallest grid found so far; rows not yet defined hold 255, larger than any label, so the first
    branch to reach them always improves on them. ``labs[d]`` is the digit relabelling in force at
    depth ``d`` (0 = not seen yet) and ``nxt[d]`` the next free label.
    """
    labs[0, :] = 0
    nxt[0] = 1
    used[:] = 0
    next_r[0] = 0
    depth = 0
    while depth >= 0:
        r = next_r[depth]
        if r == 9:  # all rows tried at this depth: backtrack
            depth -= 1
            if depth >= 0:
                used[rows_sel[depth]] = 0
            continue
        next_r[depth] = r + 1
        if used[r]:
            continue
        b0 = (r // 3) * 3
        if depth % 3 == 0:
            if used[b0] + used[b0 + 1] + used[b0 + 2] > 0:
                continue  # a new band must start in an untouched band
        elif r // 3 != rows_sel[depth - 1] // 3:
            continue  # rows of a band stay together
        lab = labs[depth + 1]
        lab[:] = labs[depth]
        n = nxt[depth]
        cmp = 0  # -1: this prefix is smaller than best's, 1: larger (prune), 0: equal so far
        base = depth * 9
        for j in range(9):
            d = g[r * 9 + cp[j]]
            v = 0
            if d != 0:
                if lab[d] == 0:
                    lab[d] = n
                    n += 1
                v = lab[d]
            if cmp == 0:
                b = best[base + j]
                if v > b:
                    cmp = 1
                    break
                if v < b:
                    cmp = -1
                    best[base + 9 :] = 255  # later rows of the old best no longer apply
            if cmp == -1:
                best[base + j] = v
        if cmp == 1 or depth == 8:
            continue
        used[r] = 1
        rows_sel[depth] = r
        depth += 1
        nxt[depth] = n
        next_r[depth] = 0


@njit(cache=True)
def canonical_one(puzzle, out):
    best = np.full(81, 255, dtype=np.uint8)
    used = np.zeros(9, dtype=np.int64)
    rows_sel = np.zeros(9, dtype=np.int64)
    next_r = np.zeros(9, dtype=np.int64)
    labs = np.zeros((10, 10), dtype=np.int64)
    nxt = np.zeros(10, dtype=np.int64)
    g = np.empty(81, dtype=np.uint8)
    for t in range(2):
        for i in range(81):
            g[i] = puzzle[i] if t == 0 else puzzle[(i % 9) * 9 + i // 9]
        for p in range(LINE_PERMS.shape[0]):
            _rows_search(g, LINE_PERMS[p], best, used, rows_sel, next_r, labs, nxt)
    out[:] = best


@njit(cache=True, parallel=True)
def canonical_batch(puzzles, out):
    for i in prange(puzzles.shape[0]):
        canonical_one(puzzles[i], out[i])
