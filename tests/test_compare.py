"""`python -m potlib compare`: rows of a rerun against the reference rows, metric by metric."""

import json
import shutil

import pytest

from potlib.cli import main
from potlib.compare import compare_rows
from potlib.provenance import REPO_ROOT

EXP = "poh_uas_rounding"  # five small committed cpu rows


@pytest.fixture
def stores(tmp_path):
    """Two copies of the committed rows of ``EXP``: (reference root, rerun root, the rerun's row files)."""
    src = REPO_ROOT / "data" / "results" / EXP
    ref, rerun = tmp_path / "ref", tmp_path / "rerun"
    for root in (ref, rerun):
        (root / EXP).mkdir(parents=True)
        for f in src.glob("*.json"):
            shutil.copy(f, root / EXP / f.name)
    return ref, rerun, sorted((rerun / EXP).glob("*.json"))


def _edit(path, fn):
    row = json.loads(path.read_text())
    fn(row)
    path.write_text(json.dumps(row))


def test_identical_rows_agree(stores, capsys):
    ref, rerun, files = stores
    c = compare_rows(rerun, ref, EXP, "cpu")
    assert c.agree and c.paired == len(files) and not c.only_ours and not c.only_reference
    assert main(["compare", EXP, "--against", str(rerun), "--results-dir", str(ref)]) == 0
    assert "agree within rtol 1e-05" in capsys.readouterr().out


def test_a_moved_metric_a_changed_status_and_a_missing_row_are_reported(stores, capsys):
    ref, rerun, files = stores
    metric = next(k for k, v in json.loads(files[0].read_text())["metrics"].items()
                  if isinstance(v, float) and v != 0)
    _edit(files[0], lambda r: r["metrics"].update({metric: r["metrics"][metric] * (1 + 1e-3)}))
    c = compare_rows(rerun, ref, EXP, "cpu")
    line = c.metrics.set_index("metric").loc[metric]
    assert not c.agree and line["beyond"] == 1 and line["max_rel_diff"] == pytest.approx(1e-3, rel=1e-6)
    assert compare_rows(rerun, ref, EXP, "cpu", rtol=2e-3).agree  # within a looser tolerance

    _edit(files[1], lambda r: r.update(status="diverged"))
    files[2].unlink()
    c = compare_rows(rerun, ref, EXP, "cpu", rtol=2e-3)
    assert not c.agree and len(c.status_differs) == 1 and len(c.only_reference) == 1
    assert main(["compare", EXP, "--against", str(rerun), "--results-dir", str(ref)]) == 1
    out = capsys.readouterr().out
    assert "status differs for 1 configs" in out and "DIFFER" in out


def test_bad_input_is_named(stores, tmp_path, capsys):
    ref, rerun, _ = stores
    with pytest.raises(ValueError, match="rtol = -1"):
        compare_rows(rerun, ref, EXP, "cpu", rtol=-1)
    with pytest.raises(ValueError, match="no rows"):
        compare_rows(tmp_path / "none", tmp_path / "none2", EXP, "cpu")
    assert main(["compare", "nope", "--against", str(rerun)]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


def test_ignore_pairs_rows_by_config_without_the_named_fields(stores, capsys):
    ref, rerun, files = stores
    moved = []
    for f in files:  # a rerun that changed one field on purpose: every cfg_id differs
        row = json.loads(f.read_text())
        cid = row["cfg_id"]
        row["config"]["compile"], row["cfg_id"] = True, ("1" if cid[0] == "0" else "0") + cid[1:]
        f.unlink()
        moved.append(f.with_name(row["cfg_id"] + ".json"))
        moved[-1].write_text(json.dumps(row))
    files = moved
    c = compare_rows(rerun, ref, EXP, "cpu")
    assert c.paired == 0 and len(c.only_ours) == len(files)
    c = compare_rows(rerun, ref, EXP, "cpu", ignore=("compile",))
    assert c.agree and c.paired == len(files) and not c.only_ours and not c.only_reference
    assert main(["compare", EXP, "--against", str(rerun), "--results-dir", str(ref), "--ignore", "compile"]) == 0
    _edit(files[1], lambda r: r["config"].update({k: v for k, v in json.loads(files[0].read_text())["config"].items()}))
    with pytest.raises(ValueError, match="differ only in those fields"):
        compare_rows(rerun, ref, EXP, "cpu", ignore=("compile",))
