#!/usr/bin/env bash
# Re-vendor the JavaScript and CSS that geo-eval's maps (geo_eval/maps.py) and the API docs (/docs) load,
# from the npm registry.
# Dev time only: the service never fetches anything at run time (no CDN, no internet; domain.md §9).
#
#   bash api/static/vendor/fetch_assets.sh          # re-download and overwrite the files here
#   bash api/static/vendor/fetch_assets.sh --check  # download and compare with the files here (exit 1 on a difference)
#
# The versions are the ones folium's own default links name (folium.folium._default_js/_default_css);
# when folium is upgraded and names other versions, bump them here, re-run, update README.md and
# VENDOR_ASSETS in geo_eval/maps.py (tests/test_maps.py fails until the three agree).
set -euo pipefail

LEAFLET=1.9.3                 # folium 0.20: leaflet@1.9.3
JQUERY=3.7.1                  # folium 0.20: jquery-3.7.1.min.js
BOOTSTRAP=5.2.2               # folium 0.20: bootstrap@5.2.2
AWESOME_MARKERS=2.0.5         # folium names 2.0.2 on cdnjs, which npm never had; 2.0.5 has the same dist files
VECTORGRID=1.3.0              # Leaflet.VectorGrid, for parcels drawn from vector tiles (large parks)
SWAGGER_UI=5.36.0             # swagger-ui-dist for /docs (FastAPI links swagger-ui-dist@5 from a CDN by default)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
check=0
[[ "${1:-}" == "--check" ]] && check=1
command -v npm >/dev/null || { echo "npm not found: install Node.js (npm) to re-vendor the map assets" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$work/out"
mkdir -p "$out"

unpack() {  # unpack NAME@VERSION into $work/NAME
  local spec="$1" name="${1%@*}"
  mkdir -p "$work/$name"
  (cd "$work" && npm pack --silent "$spec" >/dev/null)
  tar xzf "$work/$(echo "$name" | sed 's/^@//; s/\//-/')-${spec##*@}.tgz" -C "$work/$name" --strip-components=1
}

put() {  # put SRC DEST (relative to the vendor folder)
  mkdir -p "$(dirname "$out/$2")"
  cp "$1" "$out/$2"
}

unpack "leaflet@$LEAFLET"
put "$work/leaflet/dist/leaflet.js" leaflet/leaflet.js
put "$work/leaflet/dist/leaflet.css" leaflet/leaflet.css
for img in layers.png layers-2x.png marker-icon.png marker-icon-2x.png marker-shadow.png; do
  put "$work/leaflet/dist/images/$img" "leaflet/images/$img"
done
put "$work/leaflet/LICENSE" leaflet/LICENSE

unpack "jquery@$JQUERY"
put "$work/jquery/dist/jquery.min.js" jquery/jquery.min.js
put "$work/jquery/LICENSE.txt" jquery/LICENSE.txt

unpack "bootstrap@$BOOTSTRAP"
put "$work/bootstrap/dist/js/bootstrap.bundle.min.js" bootstrap/bootstrap.bundle.min.js
put "$work/bootstrap/dist/css/bootstrap.min.css" bootstrap/bootstrap.min.css
put "$work/bootstrap/LICENSE" bootstrap/LICENSE

unpack "leaflet.awesome-markers@$AWESOME_MARKERS"
put "$work/leaflet.awesome-markers/dist/leaflet.awesome-markers.js" leaflet.awesome-markers/leaflet.awesome-markers.js
put "$work/leaflet.awesome-markers/dist/leaflet.awesome-markers.css" leaflet.awesome-markers/leaflet.awesome-markers.css
for img in markers-soft.png markers-soft@2x.png markers-shadow.png markers-shadow@2x.png; do
  put "$work/leaflet.awesome-markers/dist/images/$img" "leaflet.awesome-markers/images/$img"
done
put "$work/leaflet.awesome-markers/LICENSE" leaflet.awesome-markers/LICENSE

unpack "leaflet.vectorgrid@$VECTORGRID"
put "$work/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js" leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js
# The package ships no LICENSE file: its README carries the licence (Beerware) and names the
# libraries bundled into Leaflet.VectorGrid.bundled.min.js with theirs.
{
  echo "# Leaflet.VectorGrid $VECTORGRID: licence (from the package's README.md)"
  echo
  echo "Bundled into dist/Leaflet.VectorGrid.bundled.min.js:"
  grep '^\* \[' "$work/leaflet.vectorgrid/README.md"
  echo
  sed -n '/^## Legalese/,$p' "$work/leaflet.vectorgrid/README.md"
} > "$out/leaflet.vectorgrid/LICENSE.md"

unpack "swagger-ui-dist@$SWAGGER_UI"
for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt; do
  put "$work/swagger-ui-dist/$f" "swagger-ui/$f"
done

(cd "$out" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)

if [[ $check == 1 ]]; then
  if diff -r "$out" "$here" --exclude=README.md --exclude=fetch_assets.sh; then
    echo "vendored assets match npm"
  else
    echo "vendored assets differ from npm: run $0 without --check" >&2
    exit 1
  fi
else
  for d in leaflet jquery bootstrap leaflet.awesome-markers leaflet.vectorgrid swagger-ui; do rm -rf "${here:?}/$d"; done
  cp -r "$out"/. "$here"/
  echo "vendored into $here:"
  (cd "$here" && du -ab leaflet jquery bootstrap leaflet.awesome-markers leaflet.vectorgrid swagger-ui | sort -k2)
fi
