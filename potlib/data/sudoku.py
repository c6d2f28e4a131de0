"""Hard Sudoku for the HRM chapter (SPEC 3.2): collections, solver, symmetries, split, tokens.

Data: tdoku's benchmark collections (``sudoku_tdoku.tar.gz`` -> ``sudoku/``), the community sources
of HRM's Sudoku-Extreme (Wang et al. 2025, arXiv 2506.21734); the full Sudoku-Extreme set is not
available here. The files carry no solutions: :func:`solve_many` produces them and proves uniqueness
(:mod:`potlib.data.sudoku_jit` documents the solver and the canonical form).

Tokens follow HRM: 81 tokens, vocabulary 11: 0 pad, 1 blank, 2..10 digits 1..9; the target is the
solution. Augmentation follows HRM's ``shuffle_sudoku`` (``dataset/build_sudoku_dataset.py``): digit
relabelling, transpose, band and row-within-band permutations, stack and column-within-stack
permutations, all validity-preserving.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from potlib.data import sudoku_jit as jit
from potlib.data.root import ARCHIVES, INNER_FILES, data_cache, locate, verify
from potlib.results import atomic_write_bytes

ARCHIVE = "sudoku_tdoku.tar.gz"
FOLDER = "sudoku"
COLLECTIONS = {
    "top1465": "puzzles3_magictour_top1465",
    "forum_hardest_1905": "puzzles5_forum_hardest_1905_11+",
    "forum_hardest_1106": "puzzles6_forum_hardest_1106",
    "17_clue": "puzzles2_17_clue",  # Royle's minimal puzzles: easy for a solver (median 1 guess)
}
HARD = ("forum_hardest_1905", "forum_hardest_1106", "top1465")
VOCAB_SIZE = 11  # 0 pad, 1 blank, 2..10 digits
SEQ_LEN = 81
_SPLIT_VERSION = 2
_CHARS = frozenset(".0123456789")


# -- collections -----------------------------------------------------------------------------------
def parse_puzzles(text: str) -> np.ndarray:
    """81-character lines (``.`` or ``0`` blank, ``#`` comments) -> uint8 (N, 81), 0 = blank."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(line) != 81 or not set(line) <= _CHARS:  # a set test: ~10x faster than per char
            raise ValueError(f"line {n}: expected 81 characters of '.', 0-9; got {line[:90]!r}")
        rows.append(line.replace(".", "0"))
    if not rows:
        return np.zeros((0, 81), dtype=np.uint8)
    raw = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8)
    return (raw - ord("0")).reshape(-1, 81)


def load_collection(name: str) -> np.ndarray:
    """Puzzles of collection ``name`` (a key of COLLECTIONS) as uint8 (N, 81), file order."""
    if name not in COLLECTIONS:
        raise ValueError(f"collection={name!r} is not allowed; allowed: {', '.join(COLLECTIONS)}")
    rel = f"{FOLDER}/{COLLECTIONS[name]}"
    path = locate(FOLDER, ARCHIVE) / rel
    verify(path, INNER_FILES[rel][0])
    return parse_puzzles(path.read_text(encoding="ascii"))


def dataset_sha256() -> str:
    return ARCHIVES[ARCHIVE].sha256


# -- solver ----------------------------------------------------------------------------------------
class Solved(NamedTuple):
    solution: np.ndarray | None  # (81,) uint8, None when there is no solution
    n_solutions: int  # 0, 1 or 2 (2 means "at least two")
    guesses: int


def as_grid(puzzle: Any) -> np.ndarray:
    """An 81-char string, or anything array-like of 81 digits 0..9, as uint8 (81,)."""
    if isinstance(puzzle, str):
        return parse_puzzles(puzzle)[0]
    g = np.asarray(puzzle)
    if g.size != 81 or g.min(initial=0) < 0 or g.max(initial=0) > 9:
        raise ValueError(f"puzzle must have 81 digits 0..9; got shape {g.shape}")
    return g.reshape(81).astype(np.uint8)


def _as_batch(puzzles: Any, what: str = "puzzles") -> np.ndarray:
    p = np.ascontiguousarray(np.asarray(puzzles, dtype=np.uint8))
    if p.ndim != 2 or p.shape[1] != 81 or (p.size and p.max() > 9):
        raise ValueError(f"{what} must be (N, 81) digits 0..9; got shape {p.shape}")
    return p


def solve(puzzle: Any, limit: int = 2) -> Solved:
    """Solve one puzzle, counting solutions up to ``limit`` (2 proves uniqueness) and guesses."""
    out = np.zeros(81, dtype=np.uint8)
    n, g = jit.solve_one(as_grid(puzzle), out, limit)
    return Solved(out if n > 0 else None, int(n), int(g))


def solve_many(puzzles: Any, limit: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve (N, 81) puzzles in a parallel numba loop.

    Returns ``(solutions uint8 (N,81), n_solutions int64 (N,), guesses int64 (N,))``; rows without
    a solution are zeros. Measured (one thread, uniqueness proved): ~3.9k puzzles per CPU-second
    on forum_hardest_1905, ~2.0k on forum_hardest_1106, ~15k on top1465, ~90k on 17-clue.
    """
    p = _as_batch(puzzles)
    out = np.zeros_like(p)
    nsol = np.zeros(len(p), dtype=np.int64)
    guesses = np.zeros(len(p), dtype=np.int64)
    if len(p):
        jit.solve_batch(p, out, nsol, guesses, limit)
    return out, nsol, guesses


def is_valid_solution(puzzle: Any, solution: Any) -> bool:
    """True iff ``solution`` is a complete valid grid that agrees with every clue of ``puzzle``."""
    p, s = as_grid(puzzle), as_grid(solution)
    if (s == 0).any() or ((p != 0) & (p != s)).any():
        return False
    return all(sorted(s[u]) == list(range(1, 10)) for u in jit.UNITS)


def collection_solutions(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``solve_many`` over a whole collection, cached in ``<cache>/data`` (forum_hardest: ~30 s)."""
    puzzles = load_collection(name)
    path = data_cache() / f"sudoku_solved-{name}-{dataset_sha256()[:12]}.npz"
    if path.is_file():
        z = np.load(path)
        return z["solutions"], z["n_solutions"], z["guesses"]
    sol, nsol, guesses = solve_many(puzzles)
    _save_npz(path, solutions=sol, n_solutions=nsol, guesses=guesses)
    return sol, nsol, guesses


# -- symmetries ------------------------------------------------------------------------------------
def _line_perms(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 9) random permutations of lines that keep bands together."""
    bands = np.argsort(rng.random((n, 3)), axis=1)  # (n, 3)
    within = np.argsort(rng.random((n, 3, 3)), axis=2)  # (n, 3, 3)
    return (bands[:, :, None] * 3 + within).reshape(n, 9)


def augment_batch(
    puzzles: Any, solutions: Any, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One random validity-preserving symmetry per row, the same one for puzzle and solution."""
    p, s = _as_batch(puzzles), _as_batch(solutions, "solutions")
    n = len(p)
    digit_map = np.zeros((n, 10), dtype=np.uint8)  # 0 (blank) stays 0
    digit_map[:, 1:] = np.argsort(rng.random((n, 9)), axis=1) + 1
    transpose = rng.random(n) < 0.5
    rows, cols = _line_perms(rng, n), _line_perms(rng, n)
    # out[i, j] = g'[rows[i], cols[j]] with g' = g or g.T: source flat index per target cell.
    src = np.where(
        transpose[:, None, None],
        cols[:, None, :] * 9 + rows[:, :, None],
        rows[:, :, None] * 9 + cols[:, None, :],
    ).reshape(n, 81)
    idx = np.arange(n)[:, None]
    return digit_map[idx, p[idx, src]], digit_map[idx, s[idx, src]]


def augment(puzzle: Any, solution: Any, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random symmetric variant of one (puzzle, solution) pair, both uint8 (81,)."""
    p, s = augment_batch(as_grid(puzzle)[None], as_grid(solution)[None], rng)
    return p[0], s[0]


def canonical_forms(puzzles: Any) -> np.ndarray:
    """Exact canonical form of each row, uint8 (N, 81): equal iff the puzzles are symmetric variants.

    Minimum over the 3,359,232 geometric symmetries with digits relabelled by first appearance,
    by branch and bound in numba (``sudoku_jit``). Measured ~1-3 ms per puzzle on one core.
    """
    p = _as_batch(puzzles)
    out = np.zeros_like(p)
    if len(p):
        jit.canonical_batch(p, out)
    return out


def canonical_form(puzzle: Any) -> bytes:
    """Hashable canonical key of one puzzle (81 bytes); see :func:`canonical_forms`."""
    return canonical_forms(as_grid(puzzle)[None])[0].tobytes()


# -- tokens and metrics ----------------------------------------------------------------------------
def tokenise(grids: Any) -> np.ndarray:
    """Digits (…, 81), 0 = blank -> int64 tokens: 1 blank, 2..10 digits (0 is left for padding)."""
    g = np.asarray(grids)
    if g.size and (g.min() < 0 or g.max() > 9):
        raise ValueError("grids must hold digits 0..9 (0 = blank)")
    return g.astype(np.int64) + 1


def detokenise(tokens: Any) -> np.ndarray:
    """Inverse of :func:`tokenise`: tokens 1..10 -> uint8 digits 0..9."""
    t = np.asarray(tokens)
    if t.size and (t.min() < 1 or t.max() > 10):
        raise ValueError("tokens must be 1..10 (0 is padding, which a Sudoku never has)")
    return (t - 1).astype(np.uint8)


def _eq(pred: Any, labels: Any):
    if getattr(pred, "shape", None) != getattr(labels, "shape", None):
        raise ValueError(f"pred and labels differ in shape: {pred.shape} vs {labels.shape}")
    return pred == labels


def exact_accuracy(pred: Any, labels: Any) -> float:
    """Fraction of puzzles with all 81 cells right (numpy arrays or torch tensors, (N, 81))."""
    eq = _eq(pred, labels)
    return float(eq.all(-1).float().mean()) if hasattr(eq, "float") else float(eq.all(-1).mean())


def cell_accuracy(pred: Any, labels: Any, inputs: Any = None) -> float:
    """Fraction of cells right; with ``inputs`` (tokens), only over the blanks (token 1)."""
    eq = _eq(pred, labels)
    if inputs is not None:
        eq = eq[inputs == 1]
    return float(eq.float().mean()) if hasattr(eq, "float") else float(eq.mean())


def blank_accuracy(pred: Any, labels: Any, inputs: Any):
    """Per-puzzle fraction of the blank cells (token 1 in ``inputs``) right: (N,) float, numpy or
    torch as given; 0 for a puzzle without blanks. The mean over puzzles is HRM-chapter's
    ``blank_cell_accuracy`` (:func:`cell_accuracy` with ``inputs`` pools the cells instead)."""
    blank = inputs == 1
    right = (_eq(pred, labels) & blank).sum(-1)
    if hasattr(right, "float"):
        return right.float() / blank.sum(-1).clamp_min(1)
    return right / np.maximum(blank.sum(-1), 1)


# -- the split -------------------------------------------------------------------------------------
def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _select(pool: np.ndarray, order: np.ndarray, n_test: int, n_train: int):
    """Walk ``order``, keep puzzles whose canonical form is new: first n_test to test, then train."""
    seen: set[bytes] = set()
    n_dup = 0
    test_idx: list[int] = []
    train_idx: list[int] = []
    pos, chunk = 0, 64 + (n_test + n_train) * 11 // 10  # ~1.1x: few duplicates in the pool
    while len(train_idx) < n_train and pos < len(order):
        idx = order[pos : pos + chunk]
        pos += len(idx)
        for i, key in zip(idx, canonical_forms(pool[idx])):
            k = key.tobytes()
            if k in seen:
                n_dup += 1
                continue  # a duplicate up to symmetry, within or across collections
            seen.add(k)
            (test_idx if len(test_idx) < n_test else train_idx).append(int(i))
            if len(train_idx) == n_train:
                break
    if len(train_idx) < n_train:
        raise ValueError(
            f"n_train={n_train}, n_test={n_test}: the pool has only {len(seen)} distinct puzzles"
        )
    return np.array(test_idx, dtype=np.int64), np.array(train_idx, dtype=np.int64), n_dup


def build_split(
    n_train: int,
    n_test: int,
    n_aug: int,
    seed: int,
    sources: tuple[str, ...] = HARD,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """A "Sudoku-Extreme-like" split: ``(train_inputs, train_labels, test_inputs, test_labels, info)``.

    Puzzles are drawn without replacement from ``sources`` (default: the hard collections; add
    ``"17_clue"`` for easy ones) in a seeded order; test takes the first ``n_test`` distinct
    puzzles, train the next ``n_train`` whose canonical form differs from every test puzzle, so no
    test puzzle is in train up to symmetry (checked again before returning). Each training puzzle
    appears once as drawn and ``n_aug`` times augmented (HRM's layout: ``n_train * (1 + n_aug)``
    rows, grouped by puzzle). Token arrays are int64 (N, 81); the cache keeps uint8 (81 bytes a
    row: 1000 x 1000 augmentations is 81 MB on disk, 650 MB as int64 in memory).
    """
    for name, v, lo in (("n_train", n_train, 1), ("n_test", n_test, 0), ("n_aug", n_aug, 0),
                        ("seed", seed, 0)):  # fmt: skip
        if not isinstance(v, int) or v < lo:
            raise ValueError(f"{name}={v!r} is not allowed; allowed: an int >= {lo}")
    bad = [s for s in sources if s not in COLLECTIONS] or ([] if sources else ["(empty)"])
    if bad:
        raise ValueError(f"sources={sources!r}: unknown {bad}; allowed: {', '.join(COLLECTIONS)}")
    args = dict(n_train=n_train, n_test=n_test, n_aug=n_aug, seed=seed, sources=list(sources),
                sha256=dataset_sha256(), version=_SPLIT_VERSION)  # fmt: skip
    key = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:16]
    path = data_cache() / f"sudoku_split-{key}.npz"
    if path.is_file():
        z = np.load(path)
        info = json.loads(str(z["info"]))
        return (*(z[k].astype(np.int64) for k in ("tri", "trl", "tei", "tel")), info)  # type: ignore

    t0 = time.perf_counter()
    parts = [load_collection(s) for s in sources]
    pool = np.concatenate(parts)
    src = np.concatenate([np.full(len(p), k) for k, p in enumerate(parts)])
    rng = np.random.default_rng(seed)
    test_idx, train_idx, n_dup = _select(pool, rng.permutation(len(pool)), n_test, n_train)
    chosen = np.concatenate([test_idx, train_idx])
    sol, nsol, guesses = solve_many(pool[chosen])
    if (nsol != 1).any():
        raise ValueError(f"{int((nsol != 1).sum())} drawn puzzles do not have a unique solution")
    te_sol, tr_sol = sol[: len(test_idx)], sol[len(test_idx) :]
    te_g, tr_g = guesses[: len(test_idx)], guesses[len(test_idx) :]

    # The overlap check, independent of the selection logic.
    train_keys = {k.tobytes() for k in canonical_forms(pool[train_idx])}
    n_overlap = sum(k.tobytes() in train_keys for k in canonical_forms(pool[test_idx]))
    if n_overlap:
        raise AssertionError(f"{n_overlap} test puzzles are in train up to symmetry")

    tr_p = np.repeat(pool[train_idx], 1 + n_aug, axis=0)
    tr_s = np.repeat(tr_sol, 1 + n_aug, axis=0)
    aug = np.ones(len(tr_p), dtype=bool)
    aug[:: 1 + n_aug] = False  # the first row of each group is the puzzle as drawn
    rows = np.flatnonzero(aug)
    for lo in range(0, len(rows), 65536):  # chunks bound the (rows, 81) int64 index temporaries
        r = rows[lo : lo + 65536]
        tr_p[r], tr_s[r] = augment_batch(tr_p[r], tr_s[r], rng)

    def counts(idx: np.ndarray) -> dict[str, int]:
        return {s: int((src[idx] == k).sum()) for k, s in enumerate(sources)}

    info = {
        "dataset": f"Sudoku-Extreme-like ({'+'.join(sources)}; tdoku collections)",
        "dataset_sha256": dataset_sha256(),
        **{k: v for k, v in args.items() if k not in ("sha256", "version")},
        "n_train_rows": int(len(tr_p)),
        "train_sources": counts(train_idx),
        "test_sources": counts(test_idx),
        "train_guesses_median": float(np.median(tr_g)) if len(tr_g) else None,
        "test_guesses_median": float(np.median(te_g)) if len(te_g) else None,
        "train_guesses_mean": float(tr_g.mean()) if len(tr_g) else None,
        "test_guesses_mean": float(te_g.mean()) if len(te_g) else None,
        "n_test_in_train_up_to_symmetry": int(n_overlap),
        "n_skipped_duplicates": int(n_dup),  # drawn puzzles equal, up to symmetry, to one kept
        "overlap_method": "exact canonical form (minlex over 3,359,232 symmetries + relabelling)",
        "build_seconds": round(time.perf_counter() - t0, 2),
    }
    tri, trl, tei, tel = tr_p + 1, tr_s + 1, pool[test_idx] + 1, te_sol + 1  # uint8 tokens
    _save_npz(path, tri=tri, trl=trl, tei=tei, tel=tel, info=np.array(json.dumps(info)))
    return tri.astype(np.int64), trl.astype(np.int64), tei.astype(np.int64), tel.astype(np.int64), info
