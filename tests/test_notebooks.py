"""Every notebook runs end to end with the smoke profile through papermill (as a user would rerun it)."""

from pathlib import Path

import papermill as pm
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


# Notebooks whose smoke profile reads a dataset, and the archive it needs under POTLIB_DATA.
NEEDS_DATA = {"parser_data": "ud_english_ewt_v2.16.tar.gz", "scorecard": "ud_english_ewt_v2.16.tar.gz"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_smoke(notebook, tmp_path):
    from potlib.data.root import data_root, find_archive

    archive = NEEDS_DATA.get(notebook.stem)
    if archive and find_archive(archive) is None:
        pytest.skip(f"{archive} not found under POTLIB_DATA={data_root()}")
    pm.execute_notebook(str(notebook), str(tmp_path / notebook.name), parameters={"profile": "smoke"},
                        kernel_name="python3", cwd=str(tmp_path), progress_bar=False)


def test_bad_parameter_is_a_clear_error(tmp_path):
    nb = NOTEBOOKS[0]
    with pytest.raises(pm.PapermillExecutionError, match=r"profile = 'large' is not allowed; allowed: 'smoke', 'paper'"):
        pm.execute_notebook(str(nb), str(tmp_path / nb.name), parameters={"profile": "large"},
                            kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    with pytest.raises(pm.PapermillExecutionError, match=r"recompute = 'no' is not allowed"):
        pm.execute_notebook(str(nb), str(tmp_path / nb.name), parameters={"profile": "smoke", "recompute": "no"},
                            kernel_name="python3", cwd=str(tmp_path), progress_bar=False)


def test_every_notebook_has_typed_parameters_cell():
    import nbformat

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "code")
        assert "parameters" in cell.metadata.get("tags", []), path.name
        assert 'profile: str = "paper"' in cell.source and "recompute: bool = False" in cell.source, path.name
