"""The files a map page loads, all from the service: vendored Leaflet assets and the page's own script.

Folium names CDN links by default; :func:`localize_assets` points them at the vendored copies
(``api/static/vendor/``, served under ``asset_base``) or drops what no geo-eval map uses, and
:func:`to_html` refuses to write a page that still names another host. The page's behaviour lives
in ES modules under ``api/static/js/`` (:data:`PAGE_SCRIPT`, served under ``app_base``) and its
style in :data:`PAGE_STYLE`; Python hands them one JSON configuration block.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import folium

# folium 0.20's default links (folium.folium._default_js/_default_css) → files under asset_base.
# None: dropped, because no geo-eval map uses it (jQuery and Bootstrap for folium's own popups and
# icon fonts for marker icons; the page's own script builds its controls without them).
VENDOR_ASSETS: dict[str, str | None] = {
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js": "leaflet/leaflet.js",
    "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css": "leaflet/leaflet.css",
    "https://code.jquery.com/jquery-3.7.1.min.js": None,
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js": None,
    "https://cdn.jsdelivr.net/npm/bootstrap@5.2.2/dist/css/bootstrap.min.css": None,
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js": None,
    "https://cdnjs.cloudflare.com/ajax/libs/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css": None,
    "https://netdna.bootstrapcdn.com/bootstrap/3.0.0/css/bootstrap-glyphicons.css": None,
    "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css": None,
    "https://cdn.jsdelivr.net/gh/python-visualization/folium/folium/templates/leaflet.awesome.rotate.min.css": None,
}
VECTORGRID_JS = "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js"
VENDOR_FILES: tuple[str, ...] = (*sorted({v for v in VENDOR_ASSETS.values() if v}), VECTORGRID_JS)
"""Every file under ``asset_base`` a map may load (relative paths; ``api/static/vendor/`` holds them)."""
PAGE_SCRIPT = "js/map.js"
"""The page's ES module (relative to ``app_base``); it imports its siblings in ``api/static/js/``."""
PAGE_STYLE = "css/map.css"


def _walk(element: Any) -> Iterator[Any]:
    yield element
    for child in list(getattr(element, "_children", {}).values()):
        yield from _walk(child)


def _local_url(url: str, asset_base: str) -> str | None:
    base = asset_base.rstrip("/")
    if url.startswith(base + "/"):
        return url
    if url in VENDOR_ASSETS:
        rel = VENDOR_ASSETS[url]
        return None if rel is None else f"{base}/{rel}"
    if re.match(r"^(https?:)?//", url):
        raise ValueError(f"地图引用了未本地化的外部资源 {url}：请把它加入 api/static/vendor 和 VENDOR_ASSETS")
    return url


def localize_assets(m: folium.Map, asset_base: str = "/static/vendor") -> folium.Map:
    """Point every JS/CSS link of ``m`` and its children at ``asset_base`` (in place; returns ``m``).

    Known CDN links are replaced by their vendored copies (:data:`VENDOR_ASSETS`) or dropped when no
    geo-eval map needs them; an unknown external link raises ``ValueError``.
    """
    for el in _walk(m.get_root()):
        for attr in ("default_js", "default_css"):
            links = getattr(el, attr, None)
            if not links:
                continue
            local = [(name, _local_url(url, asset_base)) for name, url in links]
            setattr(el, attr, [(name, url) for name, url in local if url is not None])
    return m


_EXTERNAL_LINK = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.I)


def to_html(m: folium.Map, *, asset_base: str = "/static/vendor") -> str:
    """The map as a standalone HTML page whose scripts and styles all come from this service.

    Raises ``ValueError`` if, after :func:`localize_assets`, a ``<script>`` or ``<link>`` still names
    another host.
    """
    localize_assets(m, asset_base)
    page: str = m.get_root().render()
    bad = sorted(set(_EXTERNAL_LINK.findall(page)))
    if bad:
        raise ValueError(f"地图页面仍引用外部资源：{', '.join(bad)}")
    return page
