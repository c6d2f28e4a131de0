"""Universal Dependencies English EWT v2.16 (CC BY-SA 4.0) for the PoT parser chapter (SPEC 3.1).

Sentences are parsed with the ``conllu`` package; multiword-token lines (``3-4``) and empty nodes
(``8.1``) have non-integer ids and are skipped, so word ``k`` of a sentence has CoNLL-U id ``k`` and
heads index words directly (0 = ROOT). Counts: 12,544 / 2,001 / 2,077 sentences, 204,577 / 25,147
/ 25,094 words. Parsing the train file takes ~2 s; parsed splits are cached as pickles keyed by the
file's sha256.

Two protocols (:func:`protocol_splits`):

- ``published``: what the original PoT loader did (Eran-BA/PoT ``ab_ud_pointer_vs_baseline.py``,
  ``load_conllu_dir``): every ``*.conllu`` file of the folder, in sorted order (dev, test, train),
  is read for *both* "train" and "dev". Train = dev = the whole treebank: the leak of SPEC 3.1.
- ``clean``: train -> dev, test held out.

Attribution (licence CC BY-SA 4.0): Silveira et al. 2014, UD English EWT, Universal Dependencies 2.16.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from potlib.errors import DataUnavailable
from potlib.data.root import (
    ARCHIVES,
    INNER_FILES,
    data_cache,
    data_root,
    find_archive,
    locate,
    verify,
)
from potlib.results import atomic_write_bytes

ARCHIVE = "ud_english_ewt_v2.16.tar.gz"
FOLDER = "ud_english_ewt"
SPLITS = ("train", "dev", "test")
DATASET = "UD English EWT v2.16"
LICENCE = "CC BY-SA 4.0"
EXPECTED_SENTENCES = {"train": 12544, "dev": 2001, "test": 2077}
EXPECTED_WORDS = {"train": 204577, "dev": 25147, "test": 25094}
Protocol = Literal["published", "clean"]
_CACHE_VERSION = 2  # 2: sentences validated as trees


@dataclass(frozen=True)
class Sentence:
    """One sentence: parallel tuples over its words (multiword tokens and empty nodes removed)."""

    sent_id: str
    words: tuple[str, ...]
    heads: tuple[int, ...]  # 0 = ROOT, k = word k (1-based)
    deprels: tuple[str, ...]
    upos: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.words)

    @property
    def punct(self) -> tuple[bool, ...]:
        """Per-word punctuation flag (UPOS == PUNCT), for UAS without punctuation."""
        return tuple(u == "PUNCT" for u in self.upos)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not allowed; allowed: 'train', 'dev', 'test'")


def split_file(split: str) -> tuple[Path, str]:
    """Verified path of the CoNLL-U file of ``split`` and its sha256."""
    _check_split(split)
    rel = f"{FOLDER}/en_ewt-ud-{split}.conllu"
    base = locate(FOLDER, ARCHIVE)
    sha = INNER_FILES[rel][0]
    verify(base / rel, sha)
    return base / rel, sha


class ConlluError(DataUnavailable, ValueError):
    """A malformed CoNLL-U line or dependency tree: names the file, the line, the sentence and the word."""


def _blocks(text: str):
    """(first line number, lines) of each blank-line-separated block of a CoNLL-U text."""
    block, start = [], 1
    for i, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            if not block:
                start = i
            block.append(line)
        elif block:
            yield start, block
            block = []
    if block:
        yield start, block


def _check_tree(where: str, ids: list[int], heads: list, deprels: list) -> None:
    """A dependency tree over words 1..n: integer heads in [0, n], no self-loop, one root, no cycle."""
    n = len(ids)
    for k, (h, rel) in enumerate(zip(heads, deprels), start=1):
        if h is None:
            raise ConlluError(f"{where}, word {k}: HEAD is '_' (every word needs a head; 0 = root)")
        if not isinstance(h, int) or not 0 <= h <= n:
            raise ConlluError(f"{where}, word {k}: HEAD {h!r} is not allowed; allowed: an int in [0, {n}]")
        if h == k:
            raise ConlluError(f"{where}, word {k}: HEAD {h} points to the word itself")
        if rel in (None, "_"):
            raise ConlluError(f"{where}, word {k}: DEPREL is '_' (every word needs a relation)")
    roots = [k for k, h in enumerate(heads, start=1) if h == 0]
    if len(roots) != 1:
        raise ConlluError(f"{where}: {len(roots)} words have HEAD 0 ({roots}); a tree has exactly one root")
    for k in range(1, n + 1):  # every word must reach the root without revisiting a word
        seen, j = set(), k
        while j != 0:
            if j in seen:
                raise ConlluError(f"{where}, word {k}: its heads form a cycle through words {sorted(seen)}")
            seen.add(j)
            j = heads[j - 1]


def parse_conllu(text_or_file, source: str = "<text>") -> list[Sentence]:
    """Parse CoNLL-U text (str) or an open text file into :class:`Sentence` objects.

    Every token line must have 10 tab-separated fields; word ids must run 1..n (multiword-token and
    empty-node lines are skipped); each sentence must be a tree (:func:`_check_tree`). Anything else
    raises :class:`ConlluError` naming ``source``, the line, the sentence id and the word.
    """
    from conllu import parse
    from conllu.exceptions import ParseException

    text = text_or_file if isinstance(text_or_file, str) else text_or_file.read()
    out = []
    for n, (line_no, lines) in enumerate(_blocks(text)):
        sid = next((ln.split("=", 1)[1].strip() for ln in lines if ln.startswith("# sent_id") and "=" in ln), f"#{n + 1}")
        where = f"{source}, sentence {sid} (line {line_no})"
        for i, ln in enumerate(lines):
            if not ln.startswith("#") and len(ln.split("\t")) != 10:
                raise ConlluError(f"{source}, line {line_no + i}, sentence {sid}: {len(ln.split(chr(9)))} "
                                  f"tab-separated fields; CoNLL-U token lines have 10")
        try:
            (sent,) = parse("\n".join(lines) + "\n\n")
        except (ParseException, ValueError, KeyError) as e:
            raise ConlluError(f"{where}: {e}") from None
        words, heads, deprels, upos = [], [], [], []
        for tok in sent:
            if not isinstance(tok["id"], int):  # multiword token (1-2) or empty node (8.1)
                continue
            if tok["id"] != len(words) + 1:
                raise ConlluError(f"{where}: word ids must run 1, 2, ...; found {tok['id']} after {len(words)}")
            words.append(tok["form"])
            heads.append(tok["head"])
            deprels.append(tok["deprel"])
            upos.append(tok["upos"])
        if not words:
            raise ConlluError(f"{where}: the sentence has no words")
        _check_tree(where, list(range(1, len(words) + 1)), heads, deprels)
        out.append(Sentence(sid if not sid.startswith("#") else str(n), tuple(words), tuple(heads), tuple(deprels),
                            tuple(upos)))
    return out


_MEMO: dict[str, list[Sentence]] = {}


def load_ud_ewt(split: str) -> list[Sentence]:
    """Sentences of ``split`` ('train', 'dev' or 'test'), verified against the release's sha256."""
    path, sha = split_file(split)
    if sha in _MEMO:
        return list(_MEMO[sha])
    cache = data_cache() / f"ud_ewt-{sha[:16]}-v{_CACHE_VERSION}.pkl"
    sents = None
    if cache.is_file():
        try:
            sents = pickle.loads(cache.read_bytes())
        except Exception:  # a damaged cache is rebuilt, never trusted
            sents = None
    if sents is None:
        with open(path, encoding="utf-8") as f:
            sents = parse_conllu(f, source=str(path))
        atomic_write_bytes(cache, pickle.dumps(sents, protocol=pickle.HIGHEST_PROTOCOL))
    _MEMO[sha] = sents
    return list(sents)


def protocol_splits(protocol: Protocol) -> dict[str, list[Sentence] | None]:
    """``{"train", "dev", "test"}`` for a protocol; ``test`` is None under ``published``.

    ``published`` reproduces the original loader: train = dev = dev + test + train (sorted file
    order of the folder), so every evaluation sentence was trained on. ``clean``: train -> dev,
    test held out (returned, for a final evaluation only).
    """
    if protocol == "published":
        everything = [s for split in sorted(SPLITS, key=lambda s: f"en_ewt-ud-{s}.conllu")
                      for s in load_ud_ewt(split)]  # fmt: skip
        return {"train": everything, "dev": list(everything), "test": None}
    if protocol == "clean":
        return {s: load_ud_ewt(s) for s in SPLITS}
    raise ValueError(f"protocol={protocol!r} is not allowed; allowed: 'published', 'clean'")


def dataset_info() -> dict[str, str]:
    """Label and sha256 for rows (``Outcome.dataset`` / ``dataset_sha256``).

    The archive's sha256 when it is in the data root, else (loose release files) a sha256 over the
    three files' sha256s, which are the release's.
    """
    if find_archive(ARCHIVE) is not None and not (data_root() / FOLDER).is_dir():
        sha = ARCHIVES[ARCHIVE].sha256
    else:
        joined = "".join(INNER_FILES[f"{FOLDER}/en_ewt-ud-{s}.conllu"][0] for s in SPLITS)
        sha = hashlib.sha256(joined.encode()).hexdigest()
    return {"dataset": DATASET, "sha256": sha, "licence": LICENCE}
