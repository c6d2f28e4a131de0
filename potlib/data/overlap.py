"""Leakage check: how much of an evaluation split already appears in training (SPEC section 2).

``kind="sentences"``: identical word sequences (UD :class:`~potlib.data.ud.Sentence` objects, dicts
with ``words``/``tokens``, or plain sequences of words). ``kind="sudoku"``: identical puzzles up to
symmetry (the exact canonical form of :mod:`potlib.data.sudoku`), given as digits (0 = blank) or as
HRM tokens (1 = blank, 2..10 digits). Counts are over evaluation items: an evaluation item counts
once however often it occurs in training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal

import numpy as np

Kind = Literal["sentences", "sudoku"]


@dataclass(frozen=True)
class OverlapReport:
    kind: str
    n_train: int
    n_eval: int
    n_eval_in_train: int
    fraction: float  # n_eval_in_train / n_eval (0.0 for an empty eval split)
    examples: list[str] = field(default_factory=list)  # a few overlapping items, readable
    # sentences only: share of eval *words* in overlapping sentences (UAS is a per-word metric)
    word_fraction: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.kind}: {self.n_eval_in_train} of {self.n_eval} eval items in train "
            f"({100 * self.fraction:.2f}%; train has {self.n_train})"
        )


def _words(item: Any) -> tuple[str, ...]:
    if hasattr(item, "words"):
        return tuple(item.words)
    if isinstance(item, dict):
        for k in ("words", "tokens"):
            if k in item:
                return tuple(item[k])
        raise ValueError(f"a sentence dict needs 'words' or 'tokens'; got keys {sorted(item)}")
    if isinstance(item, str):
        return tuple(item.split())
    return tuple(item)


def _sudoku_digits(grids: Any, encoding: str) -> np.ndarray:
    g = np.asarray(grids)
    if g.ndim != 2 or g.shape[1] != 81:
        raise ValueError(f"sudoku splits must be (N, 81) arrays; got shape {g.shape}")
    if encoding == "auto":
        if g.size == 0 or (g == 0).any():
            encoding = "digits"
        elif (g == 10).any():  # digit 9 as a token; digits never exceed 9
            encoding = "tokens"
        else:
            raise ValueError("cannot tell digits from tokens: pass encoding='digits' or 'tokens'")
    if encoding == "tokens":
        return (g - 1).astype(np.uint8)
    if encoding == "digits":
        return g.astype(np.uint8)
    raise ValueError(f"encoding={encoding!r} is not allowed; allowed: 'auto', 'digits', 'tokens'")


def overlap_report(
    train: Iterable[Any] | np.ndarray,
    eval: Iterable[Any] | np.ndarray,  # noqa: A002 (the split's name)
    kind: Kind,
    n_examples: int = 5,
    encoding: str = "auto",
) -> OverlapReport:
    """Overlap between a training and an evaluation split; see the module docstring."""
    if kind == "sentences":
        train_keys = {_words(s) for s in train}
        eval_keys = [_words(s) for s in eval]
        hits = [k for k in eval_keys if k in train_keys]
        examples = [" ".join(k) for k in dict.fromkeys(hits)][:n_examples]
        n_train = len(train) if hasattr(train, "__len__") else len(train_keys)
        n_words = sum(len(k) for k in eval_keys)
        word_fraction = sum(len(k) for k in hits) / n_words if n_words else 0.0
    elif kind == "sudoku":
        from potlib.data.sudoku import canonical_forms

        tr, ev = _sudoku_digits(train, encoding), _sudoku_digits(eval, encoding)
        train_keys = {k.tobytes() for k in canonical_forms(tr)}
        eval_keys = [k.tobytes() for k in canonical_forms(ev)]
        hits = [i for i, k in enumerate(eval_keys) if k in train_keys]
        examples = ["".join(str(d) if d else "." for d in ev[i]) for i in hits[:n_examples]]
        n_train = len(tr)
        word_fraction = None
    else:
        raise ValueError(f"kind={kind!r} is not allowed; allowed: 'sentences', 'sudoku'")
    n_eval = len(eval_keys)
    return OverlapReport(
        kind=kind,
        n_train=n_train,
        n_eval=n_eval,
        n_eval_in_train=len(hits),
        fraction=len(hits) / n_eval if n_eval else 0.0,
        examples=examples,
        word_fraction=word_fraction,
    )
