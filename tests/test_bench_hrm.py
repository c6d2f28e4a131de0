"""The HRM-chapter bench (potlib.experiments.bench_hrm): its rows, and its compiled arm's faithfulness."""

import math

import pytest
import torch

from potlib.config import ConfigError
from potlib.experiments import bench_hrm
from potlib.results import ResultStore
from potlib.sweep import run_sweep


def test_bench_hrm_smoke_profile_end_to_end(tmp_path):
    run_sweep("bench_hrm", "smoke", root=tmp_path, progress=False)
    (row,) = ResultStore(tmp_path).rows("bench_hrm")
    assert row["status"] == "ok", row["error"]
    m = row["metrics"]
    assert m["baseline_step_s"] > 0 and m["eval_s"] > 0 and m["baseline_runs_per_hour"] > 0
    assert "synthetic" in row["provenance"]["dataset"]
    assert row["provenance"]["device"].endswith(", 1 thread)")  # its timed runs' thread count, not the sweep's


def test_bench_hrm_times_workers_and_the_compiled_blocks():
    """Workers and the compiled model are timed; compiling moves the training loss by float rounding only."""
    cfg = bench_hrm.HRMBenchConfig(smoke=True, steps=2, warmup=1, workers=2, compile=True, n_test=8)
    m = bench_hrm.run(cfg, torch.device("cpu")).metrics
    for k in ("workers_step_s", "workers_speedup", "compile_step_s", "compile_speedup", "compile_seconds"):
        assert math.isfinite(m[k]) and m[k] > 0, k
    assert m["compile_loss_rel_diff"] < 1e-4


def test_bench_hrm_cpu_profile_and_bad_input():
    assert [c.model for c in bench_hrm.EXPERIMENT.configs("cpu")] == ["hrm", "transformer"]
    tc = bench_hrm.train_config(bench_hrm.HRMBenchConfig())
    assert (tc.hidden_size, tc.batch_size, tc.train_steps, tc.halt_max_steps, tc.act) == (64, 64, 2000, 2, False)
    with pytest.raises(ConfigError, match="steps"):
        bench_hrm.HRMBenchConfig(steps=0)
    with pytest.raises(ValueError, match="CPU arrangements only"):
        bench_hrm.run(bench_hrm.HRMBenchConfig(smoke=True), torch.device("meta"))
