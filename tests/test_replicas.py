"""Replica training (potlib.credit.replicas) equals one-at-a-time training; the bench runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from potlib.credit.replicas import (
    ReplicaTrainer,
    StackedResMLP,
    check_group,
    train_replicas,
)
from potlib.credit.teacher import make_ladder
from potlib.credit.train import build, train, train_step
from potlib.experiments.credit_ladder import SMOKE_BASE
from potlib.models.resmlp import ResMLP
from potlib.runtime import set_seed

CFGS = [SMOKE_BASE.replace(method="BP", seed=42), SMOKE_BASE.replace(method="BP", seed=123),
        SMOKE_BASE.replace(method="DFA", seed=42)]


def _data(dtype=torch.float32):
    x, y, xt, yt, _ = make_ladder(1.0, SMOKE_BASE.n_layers, SMOKE_BASE.d, SMOKE_BASE.n_classes,
                                  SMOKE_BASE.n_train, SMOKE_BASE.n_test, 0)
    return x.to(dtype), y, xt.to(dtype), yt


def _alone(cfg, data, steps, dtype):
    """The loop of potlib.credit.train.train, cut after ``steps`` steps; returns (model, losses)."""
    set_seed(cfg.seed)
    model, rule = build(cfg, data[0].shape[1], cfg.n_classes, "cpu")
    model, rule = model.to(dtype), rule.to(dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = (cfg.n_train // cfg.batch_size) * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    gen = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(cfg.n_train, generator=gen).view(-1, cfg.batch_size)
    losses = []
    for idx in perm[:steps]:
        ce, _ = train_step(model, rule, opt, None, data[0][idx], data[1][idx], 0.0, cfg.credit_norm)
        sched.step()
        losses.append(float(ce))
    return model, losses


def _batched(cfgs, data, steps, dtype):
    tr = ReplicaTrainer(cfgs, data, "cpu", n_classes=cfgs[0].n_classes, dtype=dtype)
    perm = torch.stack([torch.randperm(cfgs[0].n_train, generator=g) for g in tr.gens])
    perm = perm.view(len(cfgs), -1, cfgs[0].batch_size).transpose(0, 1)  # (S, R, B)
    losses = [tr.step(idx).tolist() for idx in perm[:steps]]
    return tr, np.asarray(losses).T  # (R, steps)


def test_stacked_forward_matches_each_model():
    torch.manual_seed(0)
    models = [ResMLP(7, 8, 3, 4).double() for _ in range(3)]
    net = StackedResMLP(models)
    x = torch.randn(3, 5, 7, dtype=torch.float64)
    for r, m in enumerate(models):
        for h_st, h in zip(net.states(x), m.states(x[r])):
            torch.testing.assert_close(h_st[r], h, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(net.replica(r)(x[r]), m(x[r]), rtol=0, atol=0)


@pytest.mark.parametrize("proj", [False, True])
def test_target_scores_noisy_copies_as_the_plain_forward(proj):
    """CB's EMA target on K noisy copies of the states: the shared inputs computed once per copy block and the
    LayerNorm's affine folded into the first Linear give each replica's CondNet on the repeated inputs."""
    from potlib.credit.rules import CondNet
    from potlib.credit.stacked import StackedCondNet

    torch.manual_seed(0)
    nets = [CondNet(6, 4, 3, 1, 16, proj).double() for _ in range(3)]
    for n in nets:  # away from the initialisation's unit LayerNorm weight and zero shift
        for p in n.parameters():
            p.data.normal_(0, 0.5)
    stacked, k, n_rows = StackedCondNet(nets), 4, 5
    h = torch.randn(3, k * n_rows, 6, dtype=torch.float64)
    t, s = torch.randint(0, 4, (n_rows,)), torch.randn(3, n_rows, 3, dtype=torch.float64)
    h_last = torch.randn(3, n_rows, 6, dtype=torch.float64) if proj else None
    got = stacked.forward_shared_context(h, t, s, h_last, k)
    for r, net in enumerate(nets):
        want = net(h[r], t.repeat(k), s[r].repeat(k, 1), None if h_last is None else h_last[r].repeat(k, 1))
        torch.testing.assert_close(got[r], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_steps_batched_equal_alone(dtype, rtol):
    """BP and DFA replicas (two seeds, one group) after 4 steps: same losses and parameters."""
    data = _data(dtype)
    tr, losses = _batched(CFGS, data, 4, dtype)
    for r, cfg in enumerate(CFGS):
        model, ref_losses = _alone(cfg, data, 4, dtype)
        np.testing.assert_allclose(losses[r], ref_losses, rtol=rtol)
        got = tr.net.replica(r)
        for (k, p), q in zip(model.named_parameters(), got.parameters()):
            torch.testing.assert_close(q, p, rtol=rtol, atol=rtol * 1e-2, msg=f"replica {r} {k}")


def test_train_replicas_equals_train_end_to_end():
    """Full smoke runs (2 epochs, metrics and curves) batched vs train() alone; float32."""
    data = _data()
    results = train_replicas(CFGS, data, "cpu", n_classes=SMOKE_BASE.n_classes)
    for cfg, res in zip(CFGS, results):
        set_seed(cfg.seed)
        ref = train(cfg, data, "cpu", SMOKE_BASE.n_classes)
        assert res.diverged is ref.diverged is False
        for k in ("test_acc", "test_loss", "train_loss", "gamma", "state_norm_last", "epochs_run"):
            assert res.metrics[k] == pytest.approx(ref.metrics[k], rel=1e-5, abs=1e-6), k
        # ρ is a float32 finite difference (ε = 1e-3): parameters equal to rounding move a near-zero
        # DFA ρ by ~4e-5 (measured), so it gets an absolute tolerance
        assert res.metrics["rho"] == pytest.approx(ref.metrics["rho"], abs=2e-4)
        assert set(res.artifacts) == set(ref.artifacts)
        for k, v in ref.artifacts.items():
            np.testing.assert_allclose(res.artifacts[k], v, rtol=1e-5, atol=2e-4 if k.startswith("rho") else 1e-6, err_msg=k)


def _alone_bridge(cfg, data, steps, dtype, progress):
    """``train``'s loop for a bridge (with its Adam), cut after ``steps``; returns (model, rule, [(CE, aux)])."""
    set_seed(cfg.seed)
    model, rule = build(cfg, data[0].shape[1], cfg.n_classes, "cpu")
    model, rule = model.to(dtype), rule.to(dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    aux_opt = torch.optim.Adam(rule.aux_parameters(), lr=cfg.aux_lr)
    total = (cfg.n_train // cfg.batch_size) * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    perm = torch.randperm(cfg.n_train, generator=torch.Generator().manual_seed(cfg.seed)).view(-1, cfg.batch_size)
    out = []
    for idx in perm[:steps]:
        ce, aux = train_step(model, rule, opt, aux_opt, data[0][idx], data[1][idx], progress, cfg.credit_norm)
        sched.step()
        out.append((float(ce), float(aux)))
    return model, rule, out


@pytest.mark.parametrize("method,s_type", [("SB", "eT"), ("CB", "eT"), ("SB", "deltaL+proj"), ("CB", "deltaL+proj")])
@pytest.mark.parametrize("progress", [0.0, 0.5])  # in the DFA warmup (wr = 0.2) and past it
def test_bridge_steps_batched_equal_alone(method, s_type, progress):
    """SB and CB replicas (two seeds) after 3 steps, float64: same CE, auxiliary loss (CB: same bridge noise from
    per-replica generators), forward-net and bridge-net parameters."""
    cfgs = [SMOKE_BASE.replace(method=method, s_type=s_type, seed=s) for s in (42, 123)]
    data = _data(torch.float64)
    tr = ReplicaTrainer(cfgs, data, "cpu", n_classes=10, dtype=torch.float64)
    perm = torch.stack([torch.randperm(cfgs[0].n_train, generator=g) for g in tr.gens])
    perm = perm.view(2, -1, cfgs[0].batch_size).transpose(0, 1)
    got = []
    for idx in perm[:3]:
        ce = tr.step(idx, progress)
        got.append(list(zip(ce.tolist(), tr.last_aux.tolist())))
    tr._unstack_bridges()
    for r, cfg in enumerate(cfgs):
        model, rule, ref = _alone_bridge(cfg, data, 3, torch.float64, progress)
        np.testing.assert_allclose([g[r] for g in got], ref, rtol=1e-9)
        for (k, p), q in zip(model.named_parameters(), tr.net.replica(r).parameters()):
            torch.testing.assert_close(q, p, rtol=1e-9, atol=1e-12, msg=f"replica {r} {k}")
        for (k, p), q in zip(rule.state_dict().items(), tr.rules[r].state_dict().values()):
            torch.testing.assert_close(q, p, rtol=1e-9, atol=1e-12, msg=f"replica {r} rule {k}")


@pytest.mark.parametrize("method", ["SB", "CB"])
def test_bridge_replicas_equal_train_end_to_end(method):
    """Full smoke runs of a bridge (warmup, then its own credit; metrics and curves incl. the auxiliary loss),
    batched vs train() alone; float32."""
    data = _data()
    cfgs = [SMOKE_BASE.replace(method=method, seed=s, wr=0.5) for s in (42, 123)]
    results = train_replicas(cfgs, data, "cpu", n_classes=SMOKE_BASE.n_classes)
    for cfg, res in zip(cfgs, results):
        set_seed(cfg.seed)
        ref = train(cfg, data, "cpu", SMOKE_BASE.n_classes)
        for k in ("test_acc", "test_loss", "train_loss", "gamma", "state_norm_last"):
            assert res.metrics[k] == pytest.approx(ref.metrics[k], rel=1e-4, abs=1e-5), k
        assert res.metrics["rho"] == pytest.approx(ref.metrics["rho"], abs=2e-3)
        for k, v in ref.artifacts.items():
            np.testing.assert_allclose(res.artifacts[k], v, rtol=1e-4, atol=2e-3 if k.startswith("rho") else 1e-5,
                                       err_msg=k)


def test_per_replica_data_and_group_checks():
    """Replicas may carry different data of one shape (e.g. different α); bad groups are refused."""
    d1, d2 = _data(), make_ladder(0.0, 2, 16, 10, 256, 128, 0)[:4]
    cfgs = CFGS[:2]
    both = train_replicas(cfgs, [d1, d2], "cpu", n_classes=10)
    set_seed(cfgs[1].seed)
    ref = train(cfgs[1], d2, "cpu", 10)
    assert both[1].metrics["test_loss"] == pytest.approx(ref.metrics["test_loss"], rel=1e-4)
    with pytest.raises(ValueError, match="method"):
        check_group([SMOKE_BASE.replace(method="VF")])
    with pytest.raises(ValueError, match="method differs"):
        check_group([SMOKE_BASE.replace(method="CB"), SMOKE_BASE.replace(method="SB")])
    with pytest.raises(ValueError, match="cuda_graph = True is not allowed for method 'CB'"):
        ReplicaTrainer([SMOKE_BASE.replace(method="CB")], d1, "cpu", cuda_graph=True)
    with pytest.raises(ValueError, match="'lr'"):
        check_group([CFGS[0], CFGS[1].replace(lr=1e-2)])
    with pytest.raises(ValueError, match="cuda_graph"):
        ReplicaTrainer(CFGS[:1], d1, "cpu", cuda_graph=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_equals_eager():
    data = tuple(t.cuda() for t in _data())
    cfgs = [c.replace(epochs=3) for c in CFGS]
    eager = train_replicas(cfgs, data, "cuda", n_classes=10)
    graphed = train_replicas(cfgs, data, "cuda", n_classes=10, cuda_graph=True)
    for a, b in zip(eager, graphed):
        for k in ("test_loss", "train_loss", "gamma"):
            assert a.metrics[k] == pytest.approx(b.metrics[k], rel=1e-4), k


def test_run_group_writes_the_rows_run_one_would(tmp_path):
    """Ladder smoke configs (BP/DFA, two α) grouped: rows match run_one's, with provenance."""
    import torch

    from potlib import experiments
    from potlib.config import cfg_id
    from potlib.results import ResultStore
    from potlib.sweep import run_group, run_one

    exp = experiments.get("credit_ladder")
    cfgs = [SMOKE_BASE.replace(method=m, alpha=a) for m in ("BP", "DFA") for a in (1.0, 0.5)]
    bridges = [SMOKE_BASE.replace(method="CB", seed=s) for s in (1, 2)] + [SMOKE_BASE.replace(method="SB")]
    groups, rest = exp.group_configs(cfgs + bridges + [SMOKE_BASE.replace(method="VF")], 64)
    assert [[c.method for c in g] for g in groups] == [["BP", "BP", "DFA", "DFA"], ["CB", "CB"], ["SB"]]
    assert [c.method for c in rest] == ["VF"]
    groups = groups[:1]
    rows = run_group(exp, "credit_ladder", groups[0], "smoke", ResultStore(tmp_path / "grouped"), torch.device("cpu"))
    store = ResultStore(tmp_path / "grouped")
    for c, row in zip(cfgs, rows):
        assert row["status"] == "ok" and row["provenance"]["replica_group"] == 4
        assert row["cfg_id"] == cfg_id("credit_ladder", c) and row["provenance"]["dataset_sha256"]
        ref = run_one("credit_ladder", c, "smoke", tmp_path / "alone")
        assert row["provenance"]["dataset_sha256"] == ref["provenance"]["dataset_sha256"]
        assert set(row["metrics"]) == set(ref["metrics"])
        for k in ("test_acc", "test_loss", "train_loss", "gamma", "majority_frac"):
            assert row["metrics"][k] == pytest.approx(ref["metrics"][k], rel=1e-5, abs=1e-6), k
        assert "epoch_train_loss" in store.artifacts("credit_ladder", row["cfg_id"])


def test_bench_smoke_profile_end_to_end(tmp_path, capsys):
    from potlib.cli import main
    from potlib.results import ResultStore
    from potlib.sweep import run_sweep

    report = run_sweep("bench", "smoke", root=tmp_path, progress=False)
    assert report.failed == 0
    (row,) = ResultStore(tmp_path).rows("bench")
    m = row["metrics"]
    assert row["status"] == "ok" and m["device_kind"] == "cpu"
    assert row["provenance"]["device"].endswith(", 1 thread)")  # the bench's cpu_threads, whatever the sweep's
    assert m["baseline_runs_per_hour"] > 0 and m["replicas_runs_per_hour"] > 0
    assert m["speedup"] == pytest.approx(m["replicas_runs_per_hour"] / m["baseline_runs_per_hour"])
    assert main(["bench", "--results-dir", str(tmp_path / "cli"), "--steps", "3"]) == 0
    assert "ladder_L4" in capsys.readouterr().out
    assert main(["bench", "--workload", "nope", "--results-dir", str(tmp_path)]) == 2


def test_bench_times_a_bridge_past_its_warmup_with_workers(tmp_path):
    """A bridge's bench row times its own credit and auxiliary update (not the cheap DFA warmup), alone, as
    replicas and in two worker processes, one thread each on a CPU: ``run_one`` sets the experiment's
    ``cpu_threads`` around the run and its row, then gives the process its own count back."""
    import torch

    from potlib.executors import run_one
    from potlib.experiments import bench
    from potlib.runtime import torch_threads

    cfg = bench.BenchConfig(method="CB", replicas=2, steps=2, warmup=1, workers=2, n_test=64, metric_samples=16)
    with torch_threads(2):
        row = run_one("bench", cfg, "smoke", tmp_path, torch.device("cpu"))
        assert torch.get_num_threads() == 2  # restored
    assert row["status"] == "ok", row["error"]
    assert row["provenance"]["device"].endswith(", 1 thread)")
    m = row["metrics"]
    assert m["baseline_runs_per_hour"] > 0 and m["replicas_runs_per_hour"] > 0 and m["workers_runs_per_hour"] > 0
    assert m["workers_replicas_speedup"] == pytest.approx(m["workers_replicas_runs_per_hour"] / m["baseline_runs_per_hour"])
    assert [(c.workload, c.method) for c in bench.EXPERIMENT.configs("cpu")] == [
        ("ladder_L4", "BP"), ("ladder_L4", "DFA"), ("ladder_L4", "SB"), ("ladder_L4", "CB"),
        ("cifar_L12", "BP"), ("cifar_L12", "CB")]


def test_bench_interleaves_rounds_and_reports_medians(monkeypatch):
    """With ``repeats``, the arms run in alternating order round after round (a slow spell of a shared machine falls
    on every arm), and each speed-up is the median of the rounds' ratios to their own round's baseline."""
    import torch

    from potlib.experiments import bench

    calls, step = [], {"baseline": iter([1.0, 2.0, 1.0]), "replicas": iter([1.0, 1.0, 4.0])}

    def fake(arm):
        def timed(*a, **k):
            calls.append(arm)
            return {"step_s": next(step[arm]), "epoch_end_s": 0.0, "final_s": 0.0}
        return timed

    monkeypatch.setattr(bench, "time_baseline", fake("baseline"))
    monkeypatch.setattr(bench, "time_replicas", fake("replicas"))
    cfg = bench.BenchConfig(method="BP", replicas=2, steps=1, warmup=0, workers=0, repeats=3, n_test=64,
                            metric_samples=16)
    m = bench.run(cfg, torch.device("cpu")).metrics
    assert calls == ["baseline", "replicas", "replicas", "baseline", "baseline", "replicas"]
    # per round, 2 replicas over one run: 2 x 1/1, 2 x 2/1, 2 x 1/4
    assert m["speedup_rounds"] == pytest.approx([2.0, 4.0, 0.5]) and m["speedup"] == pytest.approx(2.0)
    assert m["baseline_step_s"] == 1.0 and m["replicas_step_s"] == 1.0 and m["repeats"] == 3
    with pytest.raises(ValueError, match="repeats"):
        bench.BenchConfig(repeats=0)


def test_bench_epoch_end_is_the_median_of_three_calls(monkeypatch):
    """One slow end-of-epoch call on a shared machine does not move the row: it is timed as a median."""
    import torch

    from potlib.experiments import bench

    clock = iter([0.0, 1.0, 10.0, 19.0, 20.0, 22.0])  # three calls of 1 s, 9 s and 2 s
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))  # pytest keeps its own reference
    calls = []
    assert bench.median_seconds(lambda: calls.append(1), torch.device("cpu")) == 2.0
    assert len(calls) == bench.EPOCH_END_CALLS == 3


def test_timing_experiments_run_alone(tmp_path):
    """A bench run times the machine (worker processes of its own included): a sweep runs them one at a time."""
    from potlib import experiments
    from potlib.sweep import run_sweep

    assert experiments.get("bench").runs_alone and experiments.get("bench_hrm").runs_alone
    assert not experiments.get("credit_ladder").runs_alone
    with pytest.raises(ValueError, match="workers = 2 is not allowed for 'bench'"):
        run_sweep("bench", "smoke", root=tmp_path, workers=2, progress=False)


@pytest.mark.parametrize("workers", [1, 2])  # all groups in this process, or spread over two worker processes
def test_replicas_executor_matches_inline(tmp_path, workers):
    """`--executor replicas` writes the same rows as one-at-a-time runs (BP/DFA batched together, SB and CB each
    through the bridge replica path, VF alone)."""
    from potlib.results import ResultStore
    from potlib.sweep import run_sweep

    a = run_sweep("credit_ladder", "smoke", root=tmp_path / "inline", progress=False)
    b = run_sweep("credit_ladder", "smoke", executor="replicas", root=tmp_path / "replicas", progress=False,
                  workers=workers)
    assert a.statuses == b.statuses
    fa = ResultStore(tmp_path / "inline").frame("credit_ladder").set_index("cfg_id").sort_index()
    fb = ResultStore(tmp_path / "replicas").frame("credit_ladder").set_index("cfg_id").sort_index()
    assert (fa.index == fb.index).all()
    np.testing.assert_allclose(fa["test_acc"], fb["test_acc"], atol=1e-6)
    np.testing.assert_allclose(fa["gamma"], fb["gamma"], rtol=1e-4, atol=1e-6)
    assert (fb.loc[fb["method"].isin(["BP", "DFA"]), "prov_replica_group"] > 1).all()
    assert (fb.loc[fb["method"].isin(["SB", "CB"]), "prov_replica_group"] == 1).all()
    assert fb.loc[fb["method"] == "VF", "prov_replica_group"].isna().all()


def test_replica_code_is_in_the_fingerprint_of_grouped_rows_only(monkeypatch, tmp_path):
    """Work on replica training leaves rows trained one at a time fresh; rows trained as a group go stale."""
    import json
    import runpy
    from pathlib import Path

    from potlib import experiments, runtime, sweep
    from potlib.config import cfg_id
    from potlib.results import ResultStore

    exp = experiments.get("credit_ladder")
    before = {g: sweep.fingerprint(exp, grouped=g) for g in (False, True)}
    assert before[False] != before[True]
    assert "potlib.experiments.credit_groups" in sweep.grouped_only_modules()
    real = runtime._code_only

    def edited(path):  # as if potlib/credit/replicas.py had been changed
        return real(path) + ("# edited" if path.name == "replicas.py" else "")

    monkeypatch.setattr(runtime, "_code_only", edited)
    runtime.code_fingerprint.cache_clear()
    try:
        alone = {"provenance": {"code_fingerprint": before[False]}}
        grouped = {"provenance": {"code_fingerprint": before[True], "replica_group": 4}}
        assert not sweep.is_stale(exp, alone) and sweep.is_stale(exp, grouped)
    finally:  # undo the edit before clearing: fingerprints cached under it would outlive this test
        monkeypatch.setattr(runtime, "_code_only", real)
        runtime.code_fingerprint.cache_clear()

    # the one-off migration moves a row of the old scheme to the new one, and only a row whose code is unchanged
    store = ResultStore(tmp_path)
    c = SMOKE_BASE
    row = {"schema": 1, "experiment": "credit_ladder", "profile": "smoke", "cfg_id": cfg_id("credit_ladder", c),
           "config": c.to_dict(), "status": "ok", "error": None, "metrics": {"gamma": float("nan")},
           "provenance": {"code_fingerprint": runtime.code_fingerprint("potlib.experiments.credit_ladder")}}
    other = dict(row, cfg_id="0" * 12, provenance={"code_fingerprint": "000000000000"})
    store.write(row)
    store.write(other)
    migrate = runpy.run_path(str(Path(__file__).resolve().parents[1] / "scripts" / "migrate_fingerprints.py"))["migrate"]
    counts = migrate(tmp_path)
    assert counts["migrated"] == 1 and counts["stale (left as is)"] == 1
    moved = json.loads(store.row_path("credit_ladder", row["cfg_id"]).read_text())
    assert moved["provenance"]["code_fingerprint"] == before[False] and moved["metrics"]["gamma"] == "nan"
    assert moved["provenance"]["code_fingerprint_before"] == row["provenance"]["code_fingerprint"]
    assert migrate(tmp_path)["migrated"] == 0  # idempotent


@pytest.mark.parametrize("method", ["SB", "CB"])
def test_bridge_step_reusing_the_credit_forward_is_bit_identical(method):
    """Past its warmup a bridge step reuses the auxiliary net's forward passes of the credit for its own loss
    (the net has not changed in between): float32 CE, auxiliary loss and parameters equal, bit for bit, those of
    the step that runs the auxiliary net again (``reuse_aux_forward = False``: forward passes recomputed)."""
    cfgs = [SMOKE_BASE.replace(method=method, seed=s) for s in (42, 123)]
    data = _data(torch.float32)
    runs = []
    for reuse in (True, False):
        tr = ReplicaTrainer(cfgs, data, "cpu", n_classes=10)
        tr.reuse_aux_forward = reuse
        perm = torch.stack([torch.randperm(cfgs[0].n_train, generator=g) for g in tr.gens])
        perm = perm.view(2, -1, cfgs[0].batch_size).transpose(0, 1)
        out = [(tr.step(idx, 0.5), tr.last_aux) for idx in perm[:3]]
        runs.append((out, [p.detach().clone() for p in [*tr.net.parameters(), *tr.aux.parameters()]]))
    (out_a, par_a), (out_b, par_b) = runs
    for (ce_a, aux_a), (ce_b, aux_b) in zip(out_a, out_b):
        assert torch.equal(ce_a, ce_b) and torch.equal(aux_a, aux_b)
    assert all(torch.equal(p, q) for p, q in zip(par_a, par_b))


def test_run_group_computes_with_the_experiments_threads(tmp_path):
    """``run_group`` sets an experiment's ``cpu_threads`` around the group and its rows, as ``run_one`` does, and
    gives the process its own count back."""
    import dataclasses

    from potlib import experiments
    from potlib.executors import run_group
    from potlib.results import ResultStore
    from potlib.runtime import Outcome, torch_threads

    seen = []

    def group_run(group, device):
        seen.append(torch.get_num_threads())
        return [Outcome(metrics={"x": 1.0}) for _ in group]

    exp = dataclasses.replace(experiments.get("credit_ladder"), cpu_threads=1, run_group=group_run)
    with torch_threads(2):
        rows = run_group(exp, "credit_ladder", [SMOKE_BASE], "smoke", ResultStore(tmp_path), torch.device("cpu"))
        assert torch.get_num_threads() == 2
    assert seen == [1] and rows[0]["provenance"]["device"].endswith(", 1 thread)")
