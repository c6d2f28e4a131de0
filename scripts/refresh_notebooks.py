"""Re-execute committed notebooks in place so their stored outputs match the committed rows.

nbval compares the stored outputs of `# NBVAL_CHECK_OUTPUT` cells with a fresh run, so run this
after new rows land (``make notebooks``). Each cell that draws a figure also gets its image's alt
text (cell metadata ``mystnb.image.alt``, read by MyST-NB) from the figure's caption, so the built
pages describe every figure to a screen reader.

Usage: python scripts/refresh_notebooks.py [--alt-text-only] [NOTEBOOK ...]
  --alt-text-only: write the alt text from the stored captions without re-executing.
"""

import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CAPTION = re.compile(r"\*\*(Figure \d+|Gallery)\.\*\*\s*(.+)", re.S)
ABBREVIATIONS = ("Fig", "Figs", "e.g", "i.e", "vs", "cf", "approx")


def plain(markdown: str) -> str:
    """Markdown of a caption as plain text: links keep their words, emphasis and code marks go."""
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"[*`]", "", text)
    return " ".join(text.split())


def first_sentence(text: str) -> str:
    """Up to the first full stop followed by a space or the end (decimals like 0.5 and abbreviations like
    'Fig.' do not end it)."""
    for m in re.finditer(r"\.(\s|$)", text):
        if not text[: m.start()].endswith(ABBREVIATIONS):
            return text[: m.start() + 1]
    return text


def alt_text(cell) -> str | None:
    """'Figure N: <first sentence of its caption>' for each figure a code cell draws, or None."""
    outputs = cell.get("outputs", [])
    if not any("image/png" in o.get("data", {}) for o in outputs):
        return None
    found = []
    for o in outputs:
        md = o.get("data", {}).get("text/markdown", "")
        m = CAPTION.search(md if isinstance(md, str) else "".join(md))
        if m:
            caption = plain(m.group(2))  # a gallery's panels are described by the whole caption
            found.append(f"{m.group(1)}: {caption if m.group(1) == 'Gallery' else first_sentence(caption)}")
    return " ".join(found) or "Figure; its caption and the text below describe it."


def set_alt_texts(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        alt = alt_text(cell)
        image = cell.metadata.setdefault("mystnb", {}).setdefault("image", {})
        if alt:
            image["alt"] = alt
        else:
            image.pop("alt", None)
        if not image:
            del cell.metadata["mystnb"]["image"]
        if not cell.metadata["mystnb"]:
            del cell.metadata["mystnb"]


def refresh(path: Path, execute: bool = True) -> None:
    nb = nbformat.read(path, as_version=4)
    if execute:
        NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    set_alt_texts(nb)
    nbformat.write(nb, path)
    print(f"{'refreshed' if execute else 'alt text of'} {path.relative_to(ROOT)}")


if __name__ == "__main__":
    args = sys.argv[1:]
    execute = "--alt-text-only" not in args
    paths = [a for a in args if a != "--alt-text-only"]
    unknown = [a for a in paths if a.startswith("-")]
    if unknown:
        sys.exit(f"unknown option {unknown[0]!r}; allowed: --alt-text-only, then notebook paths")
    targets = [Path(p).resolve() for p in paths] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for t in targets:
        refresh(t, execute)
