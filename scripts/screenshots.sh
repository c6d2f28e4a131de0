#!/usr/bin/env bash
# Screenshot every page of the built book with headless Chromium (1400 px wide), for a look before
# resolving anything about the book's appearance:  make book && make screenshots
# Pages go to _build/screenshots/<page>.png, whole pages (taken 16,000 px tall, then the blank bottom trimmed with
# Pillow from the book's environment). Needs a Chromium binary (Debian: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
browser=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [[ -z $browser ]]; then
  echo "no Chromium found: install it (Debian/Ubuntu: apt-get install chromium) or set CHROMIUM=/path/to/binary" >&2
  exit 2
fi
[[ -f _build/html/index.html ]] || { echo "no built book: run make book first" >&2; exit 2; }
out=_build/screenshots
mkdir -p "$out"
find _build/html -name '*.html' ! -path '*/_static/*' ! -name 'genindex.html' ! -name 'search.html' | sort | while read -r page; do
  name=$(echo "${page#_build/html/}" | tr '/' '_' | sed 's/\.html$//')
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,${SHOT_HEIGHT:-16000} \
    --virtual-time-budget=5000 --screenshot="$out/$name.png" "file://$PWD/$page" >/dev/null 2>&1
  echo "$out/$name.png"
done
# trim the blank space below each page's end: Chromium paints the whole window and the theme pins its footer to the
# window's bottom, so the page ends before the first run of 800 blank rows in the article column
.venv/bin/python - "$out" <<'PY'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
for png in sorted(Path(sys.argv[1]).glob("*.png")):
    im = Image.open(png).convert("L")
    body = np.asarray(im)[:, 320:1100]  # the article column: the fixed sidebars run the window's full height
    blank = (body > 250).all(axis=1)
    end, run = len(blank), 0
    for y, b in enumerate(blank):
        run = run + 1 if b else 0
        if run >= 800:
            end = y - run + 1
            break
    if end < im.height:
        Image.open(png).crop((0, 0, im.width, min(im.height, end + 60))).save(png)
PY
