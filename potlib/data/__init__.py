"""Datasets behind the book (SPEC section 2): where they live, how they are verified and loaded.

- :mod:`potlib.data.root`: data root (``POTLIB_DATA``), sha256 verification, unpacking, downloads.
- :mod:`potlib.data.cifar`: CIFAR-10 (JPEG-q75 archive or canonical batches) as uint8 arrays.
- :mod:`potlib.data.ud`: UD English EWT v2.16 sentences and the ``published``/``clean`` protocols.
- :mod:`potlib.data.sudoku`: hard Sudoku collections, solver, symmetries, the HRM split and tokens.
- :mod:`potlib.data.overlap`: the leakage check between any train and eval split.

Submodules import lazily (numba, Pillow and conllu load only when their data is used).
"""

from __future__ import annotations

import importlib
from typing import Any

from potlib.data.root import (
    ARCHIVES,
    INNER_FILES,
    ChecksumError,
    DataError,
    data_cache,
    data_root,
    ensure_archive,
    ensure_file,
    sha256_file,
    unpack,
    verify,
)

_LAZY = {
    # cifar
    "load_cifar10": "cifar", "cifar10_tensors": "cifar", "shuffled": "cifar",
    "normalise": "cifar", "CLASSES": "cifar", "MEAN": "cifar", "STD": "cifar",
    # ud
    "load_ud_ewt": "ud", "protocol_splits": "ud", "Sentence": "ud", "parse_conllu": "ud",
    # sudoku
    "load_collection": "sudoku", "parse_puzzles": "sudoku", "solve": "sudoku",
    "solve_many": "sudoku", "collection_solutions": "sudoku", "is_valid_solution": "sudoku",
    "augment": "sudoku", "augment_batch": "sudoku", "canonical_form": "sudoku",
    "canonical_forms": "sudoku", "tokenise": "sudoku", "detokenise": "sudoku",
    "exact_accuracy": "sudoku", "cell_accuracy": "sudoku", "build_split": "sudoku",
    # overlap
    "overlap_report": "overlap", "OverlapReport": "overlap",
}  # fmt: skip

__all__ = [
    "ARCHIVES", "INNER_FILES", "ChecksumError", "DataError", "data_cache", "data_root",
    "ensure_archive", "ensure_file", "sha256_file", "unpack", "verify", *_LAZY,
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"potlib.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'potlib.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
