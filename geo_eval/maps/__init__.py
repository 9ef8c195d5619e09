"""Park maps: parcels coloured by grade or 亩均税收, flags hatched by review state, renewal blocks, parks.

Pure functions over GeoDataFrames (the layers of ``parcels.gpkg`` and ``renewal_blocks.gpkg``);
folium is imported only inside the functions that build a map. A map works without internet: every
script and style comes from the service (vendored Leaflet under ``asset_base``, the page's own ES
modules under ``app_base``), and every value that reaches a popup, a tooltip or the search list is
escaped (popup cells here with :func:`html.escape`, everything else set as text by the page).

============================  =====================================================================
:mod:`~geo_eval.maps.styles`      colours, legends, review-state styles and their Chinese labels
:mod:`~geo_eval.maps.attributes`  popup figures, the review list's flag rows, search index, tile source
:mod:`~geo_eval.maps.page`        the Folium page and the JSON configuration its script reads
:mod:`~geo_eval.maps.assets`      vendored assets: CDN links replaced, external hosts refused
============================  =====================================================================

Examples
--------
>>> import geopandas as gpd
>>> from shapely.geometry import box
>>> parcels = gpd.GeoDataFrame(
...     {"parcel_id": ["P1"], "grade": ["A"], "tax_per_mu": [30.0], "area_mu": [15.0],
...      "main_user": ["91320700MA1XXXXX00"], "main_user_name": ["<b>甲</b>公司"]},
...     geometry=[box(119.20, 34.60, 119.201, 34.601)], crs=4326)
>>> page = park_map_html(parcels, title="示例园区")
>>> import json, re
>>> config = json.loads(re.search(r'id="ge-config">(.*?)</script>', page).group(1))
>>> config["parcels"]["features"]["features"][0]["properties"]["v"][4]
'&lt;b&gt;甲&lt;/b&gt;公司（91320700MA1XXXXX00）'
>>> "<b>甲</b>" not in page
True
>>> "https://" in page
False
"""

from geo_eval.maps.assets import (
    PAGE_SCRIPT,
    PAGE_STYLE,
    VECTORGRID_JS,
    VENDOR_ASSETS,
    VENDOR_FILES,
    localize_assets,
    to_html,
)
from geo_eval.maps.attributes import (
    BASEMAPS,
    BLOCK_FIELDS,
    FLAG_INDEX_COLUMNS,
    POPUP_FIELDS,
    TILE_DETAIL_ZOOM,
    TILE_PROPERTIES,
    TILE_STYLE_PROPERTIES,
    flag_index,
    legend_attributes,
    parcel_attributes,
    popup_cells,
    search_columns,
    search_index,
    search_table,
    tile_properties,
    tile_source,
    to_display,
)
from geo_eval.maps.page import (
    MAX_ZOOM,
    TILE_THRESHOLD,
    blocks_geojson,
    map_config,
    park_map,
    park_map_html,
    script_json,
)
from geo_eval.maps.styles import (
    FLAG_KIND_LABELS,
    FLAG_STATUS_LABELS,
    FLAG_STYLES,
    GRADE_COLOURS,
    GRADE_LEGEND,
    NO_GRADE,
    STATUS_ORDER,
    TAX_BINS,
    grade_mix_words,
)

__all__ = [
    "BASEMAPS",
    "BLOCK_FIELDS",
    "FLAG_INDEX_COLUMNS",
    "FLAG_KIND_LABELS",
    "FLAG_STATUS_LABELS",
    "FLAG_STYLES",
    "GRADE_COLOURS",
    "GRADE_LEGEND",
    "MAX_ZOOM",
    "NO_GRADE",
    "PAGE_SCRIPT",
    "PAGE_STYLE",
    "POPUP_FIELDS",
    "STATUS_ORDER",
    "TAX_BINS",
    "TILE_DETAIL_ZOOM",
    "TILE_PROPERTIES",
    "TILE_STYLE_PROPERTIES",
    "TILE_THRESHOLD",
    "VECTORGRID_JS",
    "VENDOR_ASSETS",
    "VENDOR_FILES",
    "blocks_geojson",
    "flag_index",
    "grade_mix_words",
    "legend_attributes",
    "localize_assets",
    "map_config",
    "parcel_attributes",
    "park_map",
    "park_map_html",
    "popup_cells",
    "script_json",
    "search_columns",
    "search_index",
    "search_table",
    "tile_properties",
    "tile_source",
    "to_display",
    "to_html",
]
