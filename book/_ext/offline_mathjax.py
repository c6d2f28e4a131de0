"""Serve MathJax 3.2.2 from the book itself, so the HTML reads offline (no CDN).

The PyPI package ``django-static-mathjax`` (pinned in requirements.lock) ships MathJax 3.2.2. We copy
its self-contained SVG bundle (all TeX extensions, no font files needed) into ``_static`` and point
Sphinx at it.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def _bundle() -> Path:
    import mathjax  # the module installed by django-static-mathjax

    path = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5" / "tex-svg-full.js"
    if not path.exists():
        raise FileNotFoundError(f"MathJax bundle not found at {path}; is django-static-mathjax==3.2.2.1 installed?")
    return path


def _copy(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(_bundle(), target / "tex-svg-full.js")


def _point_at_local_copy(app, config) -> None:
    config.mathjax_path = "mathjax/tex-svg-full.js"


def setup(app):
    _bundle()  # fail early with a clear message
    app.connect("config-inited", _point_at_local_copy)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
