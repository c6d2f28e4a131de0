"""Training states kept between HRM runs (potlib.checkpoints, hrm_train.train(store=True)): a run that starts
from a saved state of a shorter run ends, bit for bit, where the uninterrupted run ends."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from potlib import checkpoints, hrm_train
from potlib.data import sudoku
from potlib.provenance import REPO_ROOT
from potlib.hrm_train import HRMTrainConfig, smoke_base, train_and_evaluate

CPU = torch.device("cpu")
SHARED = Path(os.environ.get("POTLIB_DATA") or REPO_ROOT.parent / "shared" / "datasets")
KINDS = {
    "transformer": dict(model="transformer"),
    "hrm_fixed_M": dict(model="hrm", act=False),
    "hrm_act": dict(model="hrm", act=True, halt_exploration_prob=0.5),
}


@pytest.fixture
def store_on(tmp_path, monkeypatch):
    monkeypatch.setenv("POTLIB_TRAIN_CACHE", "1")
    monkeypatch.setenv("POTLIB_CACHE", str(tmp_path))
    monkeypatch.setattr(hrm_train, "SAVE_EVERY", 3)
    return tmp_path


def _run(cfg, store):
    model, _, metrics, arts = train_and_evaluate(cfg, CPU, store=store)
    return metrics, arts, {k: v.clone() for k, v in model.state_dict().items()}


def _assert_same(a, b):
    (ma, aa, pa), (mb, ab, pb) = a, b
    skip = {"train_seconds", "train_steps_reused"}
    assert {k: v for k, v in ma.items() if k not in skip} == {k: v for k, v in mb.items() if k not in skip}
    assert aa.keys() == ab.keys()
    for k in aa:
        np.testing.assert_array_equal(aa[k], ab[k], err_msg=k)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_resuming_a_shorter_runs_state_gives_the_uninterrupted_run(kind, store_on):
    cfg = HRMTrainConfig(**smoke_base(train_steps=8, **KINDS[kind]))
    reference = _run(cfg, store=False)
    assert reference[0]["train_steps_reused"] == 0
    short = _run(cfg.replace(train_steps=5), store=True)  # saves after 3 and 5 steps
    assert short[0]["train_steps_reused"] == 0
    store = checkpoints.TrainingStore(hrm_train.training_key(cfg, CPU))
    assert store.steps_saved() == [3, 5]
    resumed = _run(cfg, store=True)
    assert resumed[0]["train_steps_reused"] == 5
    _assert_same(resumed, reference)
    assert store.steps_saved() == [3, 5, 6, 8]
    again = _run(cfg, store=True)  # the whole run reused: nothing left to train
    assert again[0]["train_steps_reused"] == 8
    _assert_same(again, reference)
    assert _run(cfg.replace(train_steps=4), store=True)[0]["train_steps_reused"] == 3


def test_a_damaged_state_is_reported_and_skipped(store_on):
    cfg = HRMTrainConfig(**smoke_base(train_steps=8, model="hrm", act=False))
    reference = _run(cfg, store=False)
    _run(cfg.replace(train_steps=6), store=True)
    store = checkpoints.TrainingStore(hrm_train.training_key(cfg, CPU))
    (store.dir / "6.pt").write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="6.pt cannot be read"):
        resumed = _run(cfg, store=True)
    assert resumed[0]["train_steps_reused"] == 3
    _assert_same(resumed, reference)


def test_the_store_is_off_with_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("POTLIB_TRAIN_CACHE", "0")
    monkeypatch.setenv("POTLIB_CACHE", str(tmp_path))
    cfg = HRMTrainConfig(**smoke_base(train_steps=3, model="transformer"))
    _run(cfg, store=True)
    assert not (tmp_path / "trained").exists()


def test_the_key_names_what_training_depends_on_and_not_its_length_or_evaluation():
    hrm = HRMTrainConfig(**smoke_base(model="hrm"))
    key = lambda c: hrm_train.training_key(c, CPU)  # noqa: E731
    assert key(hrm) == key(hrm.replace(train_steps=99, eval_M=(2, 4), eval_batch_size=3, n_layers=7))
    assert key(hrm) != key(hrm.replace(lr=2e-3)) != key(hrm.replace(halt_max_steps=3))
    tf = HRMTrainConfig(**smoke_base(model="transformer"))
    assert key(tf) == key(tf.replace(H_cycles=3, act=False)) != key(tf.replace(n_layers=3))
    assert {"code", "torch", "device", "processor"} <= set(key(tf))


@pytest.mark.skipif(not (SHARED / sudoku.ARCHIVE).is_file(), reason=f"{sudoku.ARCHIVE} not found in {SHARED}")
def test_building_the_ladder_leaves_torch_on_its_thread_count(tmp_path, monkeypatch):
    """numba's parallel solver, run when the ladder is first built, sets OpenMP's thread count, which torch shares:
    load_data puts torch back on the count it had (a one-thread sweep worker must not train on two threads)."""
    monkeypatch.setenv("POTLIB_DATA_CACHE", str(tmp_path))  # an empty cache: the ladder is built, not read
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = HRMTrainConfig(data="ladder", n_train=20, n_test=5, n_aug=1, seed=7)
        hrm_train.load_data(cfg)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
