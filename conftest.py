"""pytest set-up for tests/ and notebooks/ alike, independent of the working directory.

- nbval's sanitizer file (``--nbval-sanitize-with`` in pyproject's addopts) is resolved against the
  repository, so ``pytest --nbval`` works from ``notebooks/`` or from anywhere else.
- ``POTLIB_DATA`` defaults to the workplace's ``../shared/datasets`` when that folder exists and the
  variable is unset, so ``make test`` runs the data-dependent tests and notebooks as CI does.
- ``POTLIB_TRAIN_CACHE`` defaults to ``0``: runs in tests start from scratch and save no training state.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED_DATA = ROOT.parent / "shared" / "datasets"


def pytest_configure(config):
    value = getattr(config.option, "nbval_sanitize_with", None)
    if value and not Path(value).is_absolute():
        config.option.nbval_sanitize_with = str(ROOT / value)
    # Runs in tests neither read nor leave training states (potlib.checkpoints); tests of the store turn it on.
    os.environ.setdefault("POTLIB_TRAIN_CACHE", "0")
    if not os.environ.get("POTLIB_DATA") and SHARED_DATA.is_dir():
        os.environ["POTLIB_DATA"] = str(SHARED_DATA)
