"""Every notebook runs end to end with the smoke profile through papermill (as a user would rerun it)."""

from pathlib import Path

import papermill as pm
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


# Notebooks whose smoke profile reads a dataset: what it needs, and whether the data root provides it (the data
# modules' own finders, so the test skips exactly when the notebook would fail for want of data).
def _ud() -> bool:
    from potlib.data.root import find_archive

    return find_archive("ud_english_ewt_v2.16.tar.gz") is not None


def _cifar() -> bool:
    # the sources load_cifar10 reads, named by the module's own constants; nothing is unpacked or verified.
    # (Not a helper in potlib.data.cifar: that module is part of the CIFAR rows' code fingerprint.)
    from potlib.data.cifar import CANON_ARCHIVE, CANON_FOLDER, JPEG_ARCHIVE, data_root, find_archive

    return ((data_root() / CANON_FOLDER).is_dir() or find_archive(CANON_ARCHIVE) is not None
            or find_archive(JPEG_ARCHIVE) is not None)


UD = ("UD English EWT (ud_english_ewt_v2.16.tar.gz)", _ud)
CIFAR = ("CIFAR-10 (cifar10_jpeg_q75.tar.gz, cifar-10-python.tar.gz or cifar-10-batches-py)", _cifar)
NEEDS_DATA = {"parser_data": UD, "parser_gradient_modes": UD, "scorecard": UD, "credit_cifar": CIFAR}
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_smoke(notebook, tmp_path):
    from potlib.data.root import data_root

    if notebook.stem in NEEDS_DATA:
        what, present = NEEDS_DATA[notebook.stem]
        if not present():
            pytest.skip(f"{what} not found under POTLIB_DATA={data_root()}")
    pm.execute_notebook(str(notebook), str(tmp_path / notebook.name), parameters={"profile": "smoke"},
                        kernel_name="python3", cwd=str(tmp_path), progress_bar=False)


def test_bad_parameter_is_a_clear_error(tmp_path):
    nb = NOTEBOOKS[0]
    with pytest.raises(pm.PapermillExecutionError, match=r"profile = 'large' is not allowed; allowed: 'smoke', 'cpu', 'gpu'"):
        pm.execute_notebook(str(nb), str(tmp_path / nb.name), parameters={"profile": "large"},
                            kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    with pytest.raises(pm.PapermillExecutionError, match=r"recompute = 'no' is not allowed"):
        pm.execute_notebook(str(nb), str(tmp_path / nb.name), parameters={"profile": "smoke", "recompute": "no"},
                            kernel_name="python3", cwd=str(tmp_path), progress_bar=False)


def test_a_misspelt_parameter_is_an_error_naming_the_allowed_ones(tmp_path):
    nb = NOTEBOOKS[0]
    with pytest.raises(pm.PapermillExecutionError, match=r"unknown notebook parameter\(s\) 'profle'; allowed: profile, recompute"):
        pm.execute_notebook(str(nb), str(tmp_path / nb.name), parameters={"profle": "smoke"},
                            kernel_name="python3", cwd=str(tmp_path), progress_bar=False)


def _code_cells(path):
    import nbformat

    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebooks_store_their_outputs(notebook):
    """nbval compares stored outputs: a notebook saved without them (nbstripout, "clear all outputs")
    would pass vacuously, so every code cell must have run and every checked cell must have output."""
    for i, cell in enumerate(_code_cells(notebook)):
        assert cell.get("execution_count") is not None, f"{notebook.name}: code cell {i} was never executed"
        if "NBVAL_CHECK_OUTPUT" in cell.source:
            assert cell.get("outputs"), f"{notebook.name}: checked cell {i} has no stored output"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_machinery_is_hidden_from_the_page(notebook):
    """Parameters, checked printouts and assertions run (papermill, nbval) but never show in the book."""
    for i, cell in enumerate(_code_cells(notebook)):
        tags = cell.metadata.get("tags", [])
        src = cell.source.lstrip()
        machinery = ("parameters" in tags or src.startswith("# NBVAL_CHECK_OUTPUT")
                     or src.startswith("assert") or "check_params(" in src)
        if machinery:
            assert "remove-cell" in tags, f"{notebook.name}: cell {i} is machinery but has no remove-cell tag"
        else:  # what is left shows results: its code is folded or removed
            assert {"hide-input", "remove-input", "remove-cell"} & set(tags), f"{notebook.name}: cell {i} shows its code"


MAX_TABLE_COLUMNS = 6  # STYLE.md "Book pages": wider tables scroll sideways or crush their cells at the book's width


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tables_on_the_page_fit_its_width(notebook):
    """Every Markdown table a notebook shows (its stored display outputs) has at most six columns."""
    import re

    rule = re.compile(r"^\|(\s*:?-+:?\s*\|)+$")  # a Markdown table's header rule, e.g. |:---|---:|
    for i, cell in enumerate(_code_cells(notebook)):
        for out in cell.get("outputs", []):
            for line in out.get("data", {}).get("text/markdown", "").splitlines():
                if rule.match(line.strip()):
                    n = line.strip().count("|") - 1
                    assert n <= MAX_TABLE_COLUMNS, f"{notebook.name}: cell {i} shows a table of {n} columns"


CONTROL = [chr(c) for c in range(32) if chr(c) not in "\n\t"] + ["\x7f"]


@pytest.mark.parametrize("path", NOTEBOOKS + sorted((ROOT / "book").glob("*.md")), ids=lambda p: p.name)
def test_sources_have_no_control_characters(path):
    """A stray carriage return or escape in a page source renders as garbage (e.g. "\\rVert" -> "<CR>Vert")."""
    if path.suffix == ".ipynb":
        import nbformat

        texts = [(i, c.source) for i, c in enumerate(nbformat.read(path, as_version=4).cells)]
    else:
        texts = [(0, path.read_text(encoding="utf-8"))]
    for i, text in texts:
        bad = sorted({repr(ch) for ch in text if ch in CONTROL})
        assert not bad, f"{path.name}: cell {i} contains control characters {', '.join(bad)}"


def test_every_notebook_has_typed_parameters_cell():
    import nbformat

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "code")
        assert "parameters" in cell.metadata.get("tags", []), path.name
        assert 'profile: str = "cpu"' in cell.source and "recompute: bool = False" in cell.source, path.name


def test_nbval_runs_from_the_notebooks_folder(tmp_path):
    """The sanitizer file in pyproject's addopts is found whatever the working directory."""
    import os
    import subprocess
    import sys

    nb = "gradient_modes_theory.ipynb"  # reads committed rows only: seconds
    env = dict(os.environ, POTLIB_CACHE=str(tmp_path / "cache"))
    for cwd in (ROOT / "notebooks", tmp_path):
        target = nb if cwd == ROOT / "notebooks" else str(ROOT / "notebooks" / nb)
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target],
                              cwd=cwd, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _refresh_script() -> dict:
    import runpy

    return runpy.run_path(str(ROOT / "scripts" / "refresh_notebooks.py"))


def test_alt_text_is_the_captions_first_sentence():
    first_sentence, plain = (_refresh_script()[k] for k in ("first_sentence", "plain"))
    assert first_sentence("Accuracy at 0.5 and the paper's Fig. 2 (right). The rest.") == (
        "Accuracy at 0.5 and the paper's Fig. 2 (right).")
    assert plain("**Figure 1.** see [chapter](x.ipynb), `code` *here*") == "Figure 1. see chapter, code here"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_figure_has_alt_text(notebook):
    """Each cell that draws a figure carries alt text (MyST-NB's ``mystnb.image.alt``) matching its stored caption,
    as ``make notebooks`` writes it: a screen reader hears what the figure shows, not an image file name."""
    alt_text = _refresh_script()["alt_text"]
    for i, cell in enumerate(_code_cells(notebook)):
        want = alt_text(cell)
        if want:
            got = cell.metadata.get("mystnb", {}).get("image", {}).get("alt")
            assert got == want, f"{notebook.name}: code cell {i} draws a figure; its alt text is {got!r}, want {want!r}"
