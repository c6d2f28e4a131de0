"""UD English EWT: CoNLL-U parsing rules, split counts, the two protocols and their overlap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from potlib.data import ud
from potlib.data.overlap import overlap_report
from potlib.provenance import REPO_ROOT

SHARED = Path(os.environ.get("POTLIB_DATA") or REPO_ROOT.parent / "shared" / "datasets")
HAS_UD = (SHARED / ud.ARCHIVE).is_file()
# Derived data is keyed by sha256, so real-data tests reuse the data cache of the environment that
# started pytest (conftest gives each session a fresh POTLIB_CACHE, which would re-decode every run).
OUTER_DATA_CACHE = os.environ.get("POTLIB_DATA_CACHE") or str(
    Path(os.environ.get("POTLIB_CACHE") or Path.home() / ".cache" / "potlib") / "data"
)
needs_ud = pytest.mark.skipif(not HAS_UD, reason=f"{ud.ARCHIVE} not found in {SHARED}")

CONLLU = """# sent_id = s1
# text = I don't know.
1\tI\tI\tPRON\tPRP\t_\t4\tnsubj\t_\t_
2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
2\tdo\tdo\tAUX\tVBP\t_\t4\taux\t_\t_
3\tn't\tnot\tPART\tRB\t_\t4\tadvmod\t_\t_
4\tknow\tknow\tVERB\tVB\t_\t0\troot\t_\t_
4.1\tknows\tknow\tVERB\tVB\t_\t_\t_\t4:conj\t_
5\t.\t.\tPUNCT\t.\t_\t4\tpunct\t_\t_

"""


def test_parse_skips_multiword_tokens_and_empty_nodes():
    (s,) = ud.parse_conllu(CONLLU)
    assert s.sent_id == "s1"
    assert s.words == ("I", "do", "n't", "know", ".")
    assert s.heads == (4, 4, 4, 0, 4)
    assert s.deprels == ("nsubj", "aux", "advmod", "root", "punct")
    assert s.upos[-1] == "PUNCT" and s.punct == (False, False, False, False, True)
    assert len(s) == 5


def _tree(rows: list[str], sid: str = "c1") -> str:
    return f"# sent_id = {sid}\n" + "\n".join("\t".join(r.split()) for r in rows) + "\n\n"


GOOD = ["1 Dogs dog NOUN _ _ 2 nsubj _ _", "2 bark bark VERB _ _ 0 root _ _"]
MALFORMED = {
    "head is _": (["1 Dogs dog NOUN _ _ _ nsubj _ _", GOOD[1]], r"word 1: HEAD is '_'"),
    "head out of range": (["1 Dogs dog NOUN _ _ 7 nsubj _ _", GOOD[1]], r"word 1: HEAD 7 is not allowed; allowed: an int in \[0, 2\]"),
    "head not an int": (["1 Dogs dog NOUN _ _ x nsubj _ _", GOOD[1]], r"sentence c1 \(line 5\).*head"),
    "self loop": (["1 Dogs dog NOUN _ _ 1 nsubj _ _", GOOD[1]], r"word 1: HEAD 1 points to the word itself"),
    "two roots": (["1 Dogs dog NOUN _ _ 0 nsubj _ _", GOOD[1]], r"2 words have HEAD 0"),
    "no root": (["1 Dogs dog NOUN _ _ 2 nsubj _ _", "2 bark bark VERB _ _ 1 root _ _"], r"0 words have HEAD 0"),
    "cycle": (["1 a a X _ _ 2 dep _ _", "2 b b X _ _ 1 dep _ _", "3 c c X _ _ 0 root _ _"], r"cycle"),
    "ids skip": (["1 Dogs dog NOUN _ _ 3 nsubj _ _", "3 bark bark VERB _ _ 0 root _ _"], r"word ids must run 1, 2"),
    "id not an int": (["x Dogs dog NOUN _ _ 0 root _ _"], r"sentence c1.*'x' is not a valid ID"),
    "missing deprel": (["1 Dogs dog NOUN _ _ 2 _ _ _", GOOD[1]], r"word 1: DEPREL is '_'"),
    "too few fields": (["1 Dogs dog NOUN _ _ 2 nsubj", GOOD[1]], r"line 6, sentence c1: 8 tab-separated fields"),
    "no words": (["# only a comment"], r"the sentence has no words"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_every_malformed_tree_raises_one_error_naming_file_sentence_and_word(case):
    rows, message = MALFORMED[case]
    text = _tree(GOOD, "ok0") + _tree(rows)
    with pytest.raises(ud.ConlluError, match=message) as info:
        ud.parse_conllu(text, source="bad.conllu")
    assert "bad.conllu" in str(info.value) and isinstance(info.value, ValueError)


def test_the_issue_example_names_file_sentence_and_word(tmp_path):
    path = tmp_path / "c.conllu"
    path.write_text("# sent_id = c1\n1\tDogs\tdog\tNOUN\t_\t_\t_\tnsubj\t_\t_\n2\tbark\tbark\tVERB\t_\t_\t0\troot\t_\t_\n")
    with open(path, encoding="utf-8") as f, pytest.raises(ud.ConlluError) as info:
        ud.parse_conllu(f, source=str(path))
    assert str(info.value).startswith(f"{path}, sentence c1 (line 1), word 1: HEAD is '_'")


def test_bad_protocol_and_split():
    with pytest.raises(ValueError, match="protocol='leaky'"):
        ud.protocol_splits("leaky")
    with pytest.raises(ValueError, match="split='validation'"):
        ud.load_ud_ewt("validation")


@pytest.fixture
def shared_data(monkeypatch):
    monkeypatch.setenv("POTLIB_DATA", str(SHARED))
    monkeypatch.setenv("POTLIB_DATA_CACHE", OUTER_DATA_CACHE)


@needs_ud
def test_split_counts(shared_data):
    for split in ud.SPLITS:
        sents = ud.load_ud_ewt(split)
        assert len(sents) == ud.EXPECTED_SENTENCES[split]
        assert sum(len(s) for s in sents) == ud.EXPECTED_WORDS[split]
    for s in ud.load_ud_ewt("dev"):
        assert s.heads.count(0) == 1  # one root per sentence
        assert all(0 <= h <= len(s) for h in s.heads)
        assert len(s.words) == len(s.heads) == len(s.deprels) == len(s.upos)
    assert ud.dataset_info()["dataset"] == "UD English EWT v2.16"


@needs_ud
def test_published_protocol_is_the_leak(shared_data):
    pub = ud.protocol_splits("published")
    n_all = sum(ud.EXPECTED_SENTENCES.values())
    assert len(pub["train"]) == len(pub["dev"]) == n_all and pub["test"] is None
    # sorted file order: en_ewt-ud-dev, en_ewt-ud-test, en_ewt-ud-train
    assert pub["train"][0] == ud.load_ud_ewt("dev")[0]
    assert pub["train"][2001] == ud.load_ud_ewt("test")[0]
    assert pub["train"][-1] == ud.load_ud_ewt("train")[-1]
    rep = overlap_report(pub["train"], pub["dev"], "sentences")
    assert rep.n_eval_in_train == rep.n_eval == n_all and rep.fraction == 1.0


@needs_ud
def test_clean_protocol_overlap_is_small(shared_data):
    clean = ud.protocol_splits("clean")
    assert [len(clean[s]) for s in ud.SPLITS] == [12544, 2001, 2077]
    rep = overlap_report(clean["train"], clean["dev"], "sentences")
    # Measured: 68 of 2,001 dev sentences (3.4%) also occur in train, all short ("Thanks .",
    # "Regards ,"): 0.54% of dev words. Genuine duplicates of the treebank, not a loader leak.
    print(rep, rep.examples, f"word_fraction={rep.word_fraction:.4f}")
    assert rep.fraction < 0.05 and rep.word_fraction < 0.01
    assert all(len(e.split()) <= 12 for e in rep.examples)
