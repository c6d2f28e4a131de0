#!/usr/bin/env bash
# Screenshot every page of the built book with headless Chromium (1400 px wide), for a look before
# resolving anything about the book's appearance:  make book && make screenshots
# Pages go to _build/screenshots/<page>.png. Needs a Chromium binary (Debian: apt-get install chromium).
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
  "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,4000 \
    --virtual-time-budget=5000 --screenshot="$out/$name.png" "file://$PWD/$page" >/dev/null 2>&1
  echo "$out/$name.png"
done
