"""Configs, the result store, sweeps and the CLI: the behaviour every experiment relies on."""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Literal

import pytest

from potlib import experiments
from potlib.cli import main as cli
from potlib.config import Config, ConfigError, cfg_id
from potlib.results import CorruptRowError, MissingResultsError, ResultStore
from potlib.errors import DataUnavailable
from potlib.sweep import ensure_rows, run_sweep


@dataclass(frozen=True)
class C(Config):
    width: int = 4
    lr: float = 1e-3
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1, 2)

    def check(self):
        self.require(self.width > 0, "width", "> 0")


def test_config_types_are_checked_with_clear_messages():
    with pytest.raises(ConfigError, match=r"C.width = '4' \(str\) is not allowed: expected int"):
        C(width="4")
    with pytest.raises(ConfigError, match=r"mode = 'c'.*one of 'a', 'b'"):
        C(mode="c")
    with pytest.raises(ConfigError, match=r"width = 0 is not allowed: > 0"):
        C(width=0)
    with pytest.raises(ConfigError, match="expected int"):
        C(width=True)  # bool is not an int here
    assert C(lr=1).lr == 1.0 and isinstance(C(lr=1).lr, float)
    assert C(sizes=[3, 4]).sizes == (3, 4)
    with pytest.raises(ConfigError, match="has no field"):
        C.from_dict({"widht": 3})


def test_cfg_id_is_stable_and_content_based():
    a, b = C(), C.from_dict(json.loads(json.dumps(C().to_dict())))
    assert cfg_id("x", a) == cfg_id("x", b)
    assert cfg_id("x", a) != cfg_id("y", a)
    assert cfg_id("x", a) != cfg_id("x", C(width=5))
    # pinned value: a change here silently orphans every committed row
    assert cfg_id("x", a) == "b73fe94e31ac"


def test_unknown_experiment_and_profile():
    with pytest.raises(experiments.UnknownExperimentError, match="unknown experiment 'nope'; known experiments: .*gradflow_depth"):
        experiments.get("nope")
    with pytest.raises(experiments.UnknownProfileError, match="profile 'huge' is not defined.*allowed: cpu, smoke"):
        experiments.get("gradflow_depth").configs("huge")


def test_cli_errors_name_what_is_allowed(capsys):
    assert cli(["run", "nope"]) == 2
    assert "known experiments" in capsys.readouterr().err
    assert cli(["run", "gradflow_softmax", "--profile", "big"]) == 2
    assert "invalid choice: 'big' (choose from 'smoke', 'cpu', 'gpu')" in capsys.readouterr().err
    assert cli(["run", "gradflow_softmax", "--profile", "gpu"]) == 2  # a profile this experiment lacks
    assert "allowed: cpu, smoke" in capsys.readouterr().err
    assert cli(["run", "gradflow_softmax", "--executor", "cloud", "--quiet"]) == 2
    assert "invalid choice: 'cloud'" in capsys.readouterr().err
    for flag, value, msg in (("--workers", "0", "an int >= 1"), ("--workers", "-1", "an int >= 1"),
                             ("--time-budget", "-5", "seconds > 0"), ("--time-budget", "soon", "not a number"),
                             ("--shard", "3/2", "0 <= K < N")):
        assert cli(["run", "toy", flag, value]) == 2, flag
        assert msg in capsys.readouterr().err, (flag, value)


def test_sweep_records_ok_diverged_and_failed_and_resumes(toy_env):
    root = toy_env / "res"
    report = run_sweep("toy", "smoke", root=root, progress=False)
    assert report.statuses == {"ok": 3, "diverged": 1, "failed": 1}
    store = ResultStore(root)
    rows = {r["config"]["produce"] + str(r["config"]["seed"]): r for r in store.rows("toy")}
    assert rows["nan0"]["status"] == "diverged" and rows["nan0"]["metrics"]["loss"] == "nan"
    assert "toy failure" in rows["error0"]["error"]
    prov = rows["ok1"]["provenance"]
    for key in ("git_commit", "device", "torch_version", "wall_seconds", "dataset", "seed", "timestamp"):
        assert key in prov
    assert store.artifacts("toy", rows["ok1"]["cfg_id"])["curve"].tolist() == [0.0, 1.0, 2.0]
    # resume: only the failed config runs again
    time.sleep(1.1)  # rows' timestamps are whole seconds: a second apart, each row is told to the sweep that made it
    again = run_sweep("toy", "smoke", root=root, progress=False)
    assert (again.skipped, again.ran) == (4, 1)
    df = store.frame("toy")
    assert len(df) == 5 and df["cfg_id"].is_unique
    # each sweep that ran something logs its elapsed time; a sweep with nothing to do logs nothing
    logged = store.sweeps("toy")
    assert [w["ran"] for w in logged] == [5, 1] and all(w["elapsed_seconds"] >= 0 for w in logged)
    from potlib.sweep import status_frame

    status = status_frame(["smoke"], root=root).set_index("experiment")
    assert status.loc["toy", "sweep_h"] == pytest.approx(sum(w["elapsed_seconds"] for w in logged) / 3600, abs=1e-4)
    assert status.loc["toy", "swept"] == 5 and not status.loc["toy", "whole"]  # one row failed: not done


def test_sweep_hours_counts_overlapping_sweeps_once():
    from potlib.sweep import sweep_hours

    shards = [{"elapsed_seconds": 3600, "finished": "2026-11-30T15:00:00+00:00"},  # 14:00-15:00
              {"elapsed_seconds": 5400, "finished": "2026-11-30T15:30:00+0000"},  # 14:00-15:30, beside the first
              {"elapsed_seconds": 1800, "finished": "2026-11-30T17:00:00.500+00:00"}]  # later, alone
    assert sweep_hours(shards) == pytest.approx(1.5 + 0.5)
    assert sweep_hours([{"elapsed_seconds": 900}, {"elapsed_seconds": 900, "finished": "?"}]) == pytest.approx(0.5)
    assert sweep_hours([]) == 0


def test_made_by_attributes_rows_to_the_logged_sweep_that_made_them():
    """Issue 14: the elapsed time that counts for a grid is that of the sweeps that made its rows now, not of
    sweeps whose rows were replaced since; rows from before sweeps were logged belong to none."""
    from potlib.sweep import made_by

    logs = [{"elapsed_seconds": 3600, "finished": "2026-11-30T15:00:00+00:00"},  # 14:00-15:00
            {"elapsed_seconds": 600, "finished": "2026-11-30T18:00:00+00:00"},  # 17:50-18:00
            {"elapsed_seconds": 60}]  # no finished time: cannot own a row
    row = lambda ts: {"provenance": {"timestamp": ts}}  # noqa: E731
    rows = [row("2026-11-30T14:30:00+00:00"), row("2026-11-30T17:55:00+00:00"),
            row("2026-11-30T13:59:59+00:00"),  # its second (13:59:59-14:00:00) meets the first sweep's start
            row("2026-11-30T16:00:00+00:00"),  # between sweeps: made before sweeps were logged
            {"provenance": {}}]
    assert made_by(rows, logs) == [0, 1, 0, None, None]


def test_corrupt_row_is_reported_by_file_name(toy_env):
    root = toy_env / "res"
    run_sweep("toy", "smoke", root=root, progress=False)
    victim = ResultStore(root).row_files("toy")[0]
    victim.write_text(victim.read_text()[:50])  # truncated
    with pytest.raises(CorruptRowError, match=victim.name):
        ResultStore(root).frame("toy")
    with pytest.raises(CorruptRowError, match=victim.name):
        run_sweep("toy", "smoke", root=root, progress=False)


def test_render_only_run_names_missing_rows_and_command(toy_env):
    with pytest.raises(MissingResultsError, match=r"8 of 8 'cpu' rows of 'toy' are missing.*python -m potlib run toy --profile cpu"):
        ensure_rows("toy", "cpu", root=toy_env / "empty")
    with pytest.raises(RuntimeError, match="1 'smoke' runs of 'toy' failed; the first: RuntimeError: toy failure"):
        ensure_rows("toy", "smoke", root=toy_env / "smoke")
    with pytest.raises(TypeError, match="recompute = 'yes'"):
        ensure_rows("toy", "smoke", recompute="yes")
    # a page that shows an unfinished grid as such: the done rows, and how many the grid has
    empty = ensure_rows("toy", "cpu", root=toy_env / "empty", partial=True)
    assert len(empty) == 0 and empty.attrs["expected"] == 8


def test_killed_sweep_resumes_without_lost_or_duplicated_rows(toy_env):
    root = toy_env / "res"
    cmd = [sys.executable, "-m", "potlib", "run", "toy", "--profile", "cpu", "--results-dir", str(root), "--quiet"]
    proc = subprocess.Popen(cmd, env=os.environ.copy(), start_new_session=True)
    folder = root / "toy"
    deadline = time.time() + 300  # spawned workers import torch: slow on a loaded machine
    while time.time() < deadline and len(list(folder.glob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(list(folder.glob("*.json")))
    assert 2 <= partial < 8
    subprocess.run(cmd, env=os.environ.copy(), check=True)
    store = ResultStore(root)
    ids = [r["cfg_id"] for r in store.rows("toy")]
    assert len(ids) == 8 and len(set(ids)) == 8
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "temporary files left behind"


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_terminated_sweep_logs_its_elapsed_time(toy_env, executor):
    """SIGTERM (what `kill` sends) stops a sweep promptly with its time logged, so `potlib status` counts it; the
    local executor's worker processes stop with it."""
    root = toy_env / "res"
    cmd = [sys.executable, "-m", "potlib", "run", "toy", "--profile", "cpu", "--results-dir", str(root), "--quiet",
           "--executor", executor, "--workers", "2"]
    proc = subprocess.Popen(cmd, env=os.environ.copy())
    folder = root / "toy"
    deadline = time.time() + 300  # spawned workers import torch: slow on a loaded machine
    while time.time() < deadline and len(list(folder.glob("*.json"))) < 2:
        time.sleep(0.05)
    proc.terminate()
    assert proc.wait(timeout=60) != 0
    (log,) = ResultStore(root).sweeps("toy")
    assert log["interrupted"] is True and log["ran"] >= 2 and log["elapsed_seconds"] > 0


def test_local_executor_matches_inline(toy_env):
    a = run_sweep("toy", "smoke", root=toy_env / "inline", progress=False)
    b = run_sweep("toy", "smoke", executor="local", workers=2, root=toy_env / "local", progress=False)
    assert a.statuses == b.statuses
    la = ResultStore(toy_env / "inline").frame("toy").set_index("cfg_id")["loss"].sort_index()
    lb = ResultStore(toy_env / "local").frame("toy").set_index("cfg_id")["loss"].sort_index()
    assert la.equals(lb)


def test_slurm_executor_through_submitit(toy_env):
    # submitit's "debug" cluster runs the job array in-process: same code path up to the scheduler.
    report = run_sweep("toy", "smoke", executor="slurm", root=toy_env / "slurm", progress=False,
                       slurm={"cluster": "debug", "folder": str(toy_env / "submitit")})
    assert report.statuses == {"ok": 3, "diverged": 1, "failed": 1}


def test_status_command(toy_env, capsys):
    run_sweep("toy", "smoke", root=toy_env / "res", progress=False)
    assert cli(["status", "--profile", "smoke", "--results-dir", str(toy_env / "res")]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.strip().startswith("toy"))
    assert "smoke" in line and " 5 " in f" {line} "


def test_shards_partition_the_grid(toy_env):
    root = toy_env / "res"
    a = run_sweep("toy", "smoke", root=root, progress=False, shard=(0, 2))
    b = run_sweep("toy", "smoke", root=root, progress=False, shard=(1, 2))
    assert a.expected + b.expected == 5 and a.ran + b.ran == 5
    assert len(ResultStore(root).rows("toy")) == 5
    with pytest.raises(ValueError, match="shard = 2/2 is not allowed"):
        run_sweep("toy", "smoke", root=root, progress=False, shard=(2, 2))
    assert cli(["run", "toy", "--shard", "1of2"]) == 2


def test_a_data_error_stops_the_sweep_at_the_first_config(toy_env, capsys):
    """Every config would fail the same way: one failed row, one clear message, exit code 2."""
    root = toy_env / "nodata"
    with pytest.raises(DataUnavailable, match="toy.bin is missing"):
        run_sweep("toy", "gpu", executor="inline", root=root, progress=False)
    assert [r["status"] for r in ResultStore(root).rows("toy")] == ["failed"]
    assert cli(["run", "toy", "--profile", "gpu", "--executor", "inline", "--results-dir", str(root), "--quiet"]) == 2
    assert "toy.bin is missing" in capsys.readouterr().err
    with pytest.raises(DataUnavailable):
        run_sweep("toy", "gpu", root=toy_env / "nodata-local", executor="local", workers=2, progress=False)
    assert len(ResultStore(toy_env / "nodata-local").rows("toy")) <= 2  # at most the runs already in flight


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the CPU-only guard")
def test_gpu_grid_refuses_cpu(capsys, tmp_path):
    assert cli(["run", "credit_ladder", "--profile", "gpu", "--results-dir", str(tmp_path), "--quiet"]) == 2
    assert "must come from a CUDA GPU" in capsys.readouterr().err
    assert cli(["bench", "--profile", "gpu", "--results-dir", str(tmp_path)]) == 2  # timings are rows too
    assert "gpu rows of 'bench' must come from a CUDA GPU" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("executor", ["inline", "local", "slurm"])
def test_time_budget_stops_cleanly_and_resumes(toy_env, executor):
    root = toy_env / "res"
    slurm = {"cluster": "debug", "folder": str(toy_env / "submitit")}
    first = run_sweep("toy", "cpu", executor=executor, root=root, progress=False, time_budget=0.5, workers=2,
                      slurm=slurm)
    assert 1 <= first.ran < 8 and first.statuses == {"ok": first.ran} and first.stopped_by_budget
    rest = run_sweep("toy", "cpu", root=root, progress=False)
    assert first.ran + rest.ran == 8 and len(ResultStore(root).rows("toy")) == 8


def test_gpu_batch_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu_batch.sh"
    out = subprocess.run(["bash", str(script), "--dry-run", str(tmp_path / "out"), "540"], capture_output=True,
                         text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0].startswith("would run: timeout 120") and "-m gpu" in lines[0]  # CUDA-only tests first
    assert "potlib bench --profile gpu" in lines[1]
    grids = [ln.split(" run ")[1].split()[0] for ln in lines if "potlib run " in ln]
    assert grids[0].startswith("hrm_") and grids.index("poh_gradient_modes") < grids.index("credit_cifar")
    runs = [ln for ln in lines if "potlib run " in ln]
    assert all("--time-budget" in ln and ln.startswith("would run: timeout --kill-after=20 ") for ln in runs)
    # the rows so far are packed after every grid: a machine taken away mid-call keeps what finished
    assert [lines[lines.index(ln) + 1].startswith("would pack") for ln in runs] == [True] * len(runs)
    assert not (tmp_path / "out").exists()
    bad = subprocess.run(["bash", str(script), "--dry-run", str(tmp_path), "-3"], capture_output=True, text=True)
    assert bad.returncode == 2 and "SECONDS = '-3' is not allowed" in bad.stderr


def test_page_tables_show_a_dash_for_missing_or_infinite_values():
    import pandas as pd

    from potlib import render

    df = pd.DataFrame({"full / frozen": [2.5, float("inf"), float("nan")], "n": [1, 2, 3], "tiny": [1e-5, 0.25, 3e6]})
    out = render.tidy(df)
    assert out["full / frozen"].tolist() == ["2.5", "–", "–"]
    assert out["tiny"].tolist() == ["1.00e-05", "0.25", "3.00e+06"] and out["n"].tolist() == ["1", "2", "3"]
    box = render.verdict_box(pd.DataFrame({"verdict": ["differs"], "claim": ["a_b"], "ours": ["x|y"]}))
    assert box.startswith(":::{admonition} Claims and verdicts (1 differs)") and "a\\_b" in box and "x\\|y" in box
    linked = render.verdict_box(pd.DataFrame({"verdict": ["differs", "reproduced"], "claim": ["a_b", "c"], "ours": ["x", "y"],
                                              "id": ["one", "two"]}), sections={"one": "sec-one"})
    assert "[a\\_b](sec-one)" in linked and "| c " in linked  # a claim without a section stays plain text


def test_page_tables_keep_the_digits_they_were_given_and_align_numbers_right():
    import pandas as pd

    from potlib import render

    table = render.markdown_table(pd.DataFrame({"cos": ["1.0000", "0.5246"], "rule": ["a", "b"], "n": ["1,000", "–"]}))
    header, rule, first = table.splitlines()[:3]
    assert "1.0000" in first  # tabulate would print 1
    assert [c[0] + c[-1] for c in rule.split("|")[1:-1]] == ["-:", ":-", "-:"]  # right, left, right


def test_page_tables_leave_inline_math_unescaped():
    """TeX reads an escaped underscore as a literal one: "$z\\_H$" would print z_H, not a subscript."""
    import pandas as pd

    from potlib import render

    table = render.markdown_table(pd.DataFrame({"$M_\\max$": [2], "state": ["ratio $z_H / z_L$ of a_b"]}))
    assert "$M_\\max$" in table and "ratio $z_H / z_L$ of a\\_b" in table


def test_column_formatter_and_published_markers_are_one_style():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from potlib import render

    two = render.cell("{:.2f}")
    assert [two(v) for v in (0.456, float("nan"), None, "≈1")] == ["0.46", "–", "–", "≈1"]
    fig, ax = plt.subplots()
    points = render.published_points(ax, [1, 2], [0.3, 0.4], "C1", label="memo")
    assert points.get_label() == "memo" and (points.get_facecolor().size == 0 or points.get_facecolor()[0][3] == 0)
    plt.close(fig)


def test_where_runs_only_the_matching_part_of_a_grid(toy_env, capsys):
    root = toy_env / "res"
    assert cli(["run", "toy", "--profile", "smoke", "--results-dir", str(root), "--quiet", "--where", "seed=1,2",
                "--where", "produce=ok"]) == 0
    rows = ResultStore(root).rows("toy")
    assert sorted((r["config"]["produce"], r["config"]["seed"]) for r in rows) == [("ok", 1), ("ok", 2)]
    assert ResultStore(root).sweeps("toy")[-1]["where"] == {"seed": ["1", "2"], "produce": ["ok"]}
    # a typo names the field and what the grid holds instead of running nothing
    assert cli(["run", "toy", "--profile", "smoke", "--results-dir", str(root), "--where", "sed=1"]) == 2
    assert "'sed' is not a config field" in capsys.readouterr().err
    assert cli(["run", "toy", "--profile", "smoke", "--results-dir", str(root), "--where", "seed=7"]) == 2
    assert "keeps no config; the grid has seed in [0, 1, 2]" in capsys.readouterr().err
    assert cli(["run", "toy", "--profile", "smoke", "--where", "seed"]) == 2


def test_select_reads_text_with_the_fields_type(toy_env):
    from potlib.sweep import select

    configs = [c for c in experiments.get("toy").configs("smoke") if c.produce == "ok"]
    assert [c.seed for c in select(configs, {"seed": "1"})] == [1]
    assert [c.seed for c in select(configs, {"seed": [0, 2]})] == [0, 2]
    with pytest.raises(ValueError, match="seed = 'x' is not a int"):
        select(configs, {"seed": "x"})


def test_no_committed_row_was_made_by_code_that_has_changed_since():
    """The book is rendered from data/results: a code change that alters what an experiment computes must come
    with its rows rerun (``python -m potlib run EXP --profile P --stale``), and a change that does not (a helper
    added to a module the rows import) must not land in that module."""
    from potlib import sweep
    from potlib.results import ResultStore

    store = ResultStore(Path(__file__).resolve().parents[1] / "data" / "results")
    stale = {}
    for name in experiments.names():
        exp = experiments.get(name)
        ids = [r["cfg_id"] for r in store.rows(name) if sweep.is_stale(exp, r)]
        if ids:
            stale[name] = f"{len(ids)} rows, e.g. {ids[0]}"
    assert not stale, f"rows made by code that has changed since: {stale}"


def test_cpu_rows_never_count_as_gpu_rows():
    """credit_memo_budget's gpu grid is its cpu grid: the committed CPU rows must not show, or be read, as GPU rows,
    and a GPU run must not overwrite them."""
    from potlib.results import MissingResultsError
    from potlib.sweep import ensure_rows, missing_configs, status_frame

    with pytest.raises(RuntimeError, match="would overwrite that row"):
        missing_configs("credit_memo_budget", "gpu")
    configs, todo = missing_configs("credit_memo_budget", "cpu")
    assert len(configs) == 18 and todo == []
    with pytest.raises(MissingResultsError, match="18 of 18 'gpu' rows"):
        ensure_rows("credit_memo_budget", "gpu")
    frame = status_frame(profiles=("gpu",))
    assert frame.set_index("experiment").loc["credit_memo_budget", "done"] == 0


def test_auto_executor_is_the_fastest_measured_arrangement():
    """Issue 14: experiments that can group configs train in replica groups by default where the bench measured
    it fastest (the ladder; on a GPU CIFAR-10 too), others in a process pool, smoke inline; a CPU group holds the
    bench's R = 12."""
    import torch

    from potlib import experiments
    from potlib.executors import default_executor, default_group_size

    assert default_executor(experiments.get("credit_ladder"), "cpu") == "replicas"
    assert default_executor(experiments.get("credit_cifar"), "gpu") == "replicas"
    assert default_executor(experiments.get("credit_cifar"), "cpu") == "local"  # groups of one or two runs do not pay
    assert default_executor(experiments.get("hrm_act"), "cpu") == "local"
    assert default_executor(experiments.get("credit_ladder"), "smoke") == "inline"
    assert default_group_size(torch.device("cpu")) == 12


def test_pool_starts_the_longest_runs_first(toy_env):
    """Issue 14: a pool of workers starts the configs whose earlier rows took longest first (no long run left for
    the end while the other core idles); configs without an earlier row keep their grid order, ahead."""
    from potlib import executors
    from potlib.config import cfg_id
    from potlib.sweep import run_sweep

    root = toy_env / "res"
    configs = experiments.get("toy").configs("cpu")[:4]
    run_sweep("toy", "cpu", executor="inline", root=root, progress=False, where={"seed": ["0", "1", "2"]})
    store = ResultStore(root)
    for seconds, c in zip((1.0, 30.0, 5.0), configs):  # pretend seed 1 took longest, then seed 2
        path = store.row_path("toy", cfg_id("toy", c))
        row = json.loads(path.read_text())
        row["provenance"]["wall_seconds"] = seconds
        path.write_text(json.dumps(row))
    units = [[c] for c in configs]  # seed 3 has no row: unknown cost, first
    assert executors.longest_first("toy", units, "cpu", root) == [3, 1, 2, 0]
    group = executors.longest_first("toy", [[configs[0], configs[2]], [configs[1]]], "cpu", root)
    assert group == [1, 0]  # a group's cost is the sum of its configs' (30 > 1 + 5)
    assert executors.longest_first("toy", units, "cpu", toy_env / "empty") == [0, 1, 2, 3]  # nothing known


def test_run_takes_several_experiments_in_order(toy_env, capsys):
    root = toy_env / "res"
    # an unknown name is reported before anything runs
    assert cli(["run", "toy", "nope", "--profile", "smoke", "--results-dir", str(root), "--quiet"]) == 2
    assert "nope" in capsys.readouterr().err and not ResultStore(root).rows("toy")
    assert cli(["run", "toy", "poh_uas_rounding", "--profile", "smoke", "--results-dir", str(root), "--quiet"]) == 1
    assert "toy failure" in capsys.readouterr().out  # the toy grid holds a failing config; the next grid still ran
    store = ResultStore(root)
    assert store.rows("toy") and store.rows("poh_uas_rounding")
    assert len(store.sweeps("toy")) == 1 and len(store.sweeps("poh_uas_rounding")) == 1  # each grid logs its own sweep


def test_run_all_is_every_experiment_with_the_profile_in_registry_order(monkeypatch):
    import potlib.sweep

    ran = []

    class Report:
        failed = 0

    monkeypatch.setattr(potlib.sweep, "run_sweep", lambda name, profile, **kw: ran.append((name, kw["time_budget"])) or Report())
    assert cli(["run", "all", "--profile", "cpu", "--quiet"]) == 0
    names = [n for n in experiments.names() if "cpu" in experiments.get(n).profiles]
    assert [n for n, _ in ran] == names and all(b is None for _, b in ran)
    # the HRM grids that reuse trained models come after those that train them
    assert names.index("hrm_layers_computed") < names.index("hrm_act") < names.index("hrm_dynamics") < names.index("hrm_original_choices")


def test_the_allocator_is_tuned_for_this_process_and_its_workers(monkeypatch):
    """runtime.tune_allocator keeps freed memory in the heap (glibc): set in this process through mallopt and in the
    environment for the processes a sweep starts; values already in the environment stay; POTLIB_TUNE_MALLOC=0 skips."""
    import platform

    from potlib.runtime import _MALLOC_SETTINGS, tune_allocator

    for name in _MALLOC_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POTLIB_TUNE_MALLOC", "0")
    assert tune_allocator() is False and not any(name in os.environ for name in _MALLOC_SETTINGS)
    monkeypatch.delenv("POTLIB_TUNE_MALLOC")
    monkeypatch.setenv("MALLOC_TOP_PAD_", str(64 << 20))
    tuned = tune_allocator()
    assert os.environ["MALLOC_TOP_PAD_"] == str(64 << 20)  # the user's value is kept
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == str(1 << 30) and os.environ["MALLOC_MMAP_THRESHOLD_"] == str(32 << 20)
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert tuned
