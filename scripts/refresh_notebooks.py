"""Re-execute committed notebooks in place so their stored outputs match the committed rows.

nbval compares the stored outputs of `# NBVAL_CHECK_OUTPUT` cells with a fresh run, so run this
after new rows land (``make notebooks``). Usage: python scripts/refresh_notebooks.py [NOTEBOOK ...]
"""

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def refresh(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    print(f"refreshed {path.relative_to(ROOT)}")


if __name__ == "__main__":
    targets = [Path(p).resolve() for p in sys.argv[1:]] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for t in targets:
        refresh(t)
