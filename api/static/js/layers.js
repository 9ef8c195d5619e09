// The map's layers: parcels (inline GeoJSON, or vector tiles for a large map), flagged parcels hatched
// by review state, renewal blocks, park outlines and the highlighted parcel. Styling happens here,
// in the browser, from the page configuration and the review states; nothing is re-fetched to restyle.

import { containsPoint, requestJSON, toast } from "./util.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const PANES = [
  ["ge-parcels", 400],
  ["ge-blocks", 410],
  ["ge-flags", 420],
  ["ge-parks", 430],
  ["ge-highlight", 440],
];

/** Draw a hatch motif on a 2D context of size s×s (also used for the legend swatches). */
function drawHatch(ctx, kind, colour, s) {
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  ctx.lineWidth = 1.6;
  ctx.beginPath();
  if (kind === "diagonal" || kind === "cross") {
    for (let o = -s; o <= s; o += s / 2) {
      ctx.moveTo(o, s);
      ctx.lineTo(o + s, 0);
    }
  }
  if (kind === "cross") {
    for (let o = -s; o <= s; o += s / 2) {
      ctx.moveTo(o, 0);
      ctx.lineTo(o + s, s);
    }
  }
  ctx.stroke();
  if (kind === "dots") {
    for (const [x, y] of [[s / 4, s / 4], [(3 * s) / 4, (3 * s) / 4]]) {
      ctx.beginPath();
      ctx.arc(x, y, 1.6, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
}

/** An <svg> <pattern> per hatched state (for inline layers, drawn as SVG). */
function svgPatterns(styles) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("width", "0");
  svg.setAttribute("height", "0");
  svg.setAttribute("aria-hidden", "true");
  svg.style.position = "absolute";
  const defs = document.createElementNS(SVG_NS, "defs");
  for (const [state, style] of Object.entries(styles)) {
    if (!style.hatch) continue;
    const p = document.createElementNS(SVG_NS, "pattern");
    p.setAttribute("id", `ge-hatch-${state}`);
    p.setAttribute("patternUnits", "userSpaceOnUse");
    p.setAttribute("width", "10");
    p.setAttribute("height", "10");
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 10;
    drawHatch(canvas.getContext("2d"), style.hatch, style.color, 10);
    const img = document.createElementNS(SVG_NS, "image");
    img.setAttribute("href", canvas.toDataURL());
    img.setAttribute("width", "10");
    img.setAttribute("height", "10");
    p.append(img);
    defs.append(p);
  }
  svg.append(defs);
  document.body.append(svg);
}

/** A CanvasPattern per hatched state (for vector tiles, drawn on canvas). */
function canvasPatterns(styles) {
  const out = {};
  const ctx = document.createElement("canvas").getContext("2d");
  for (const [state, style] of Object.entries(styles)) {
    if (!style.hatch) continue;
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 10;
    drawHatch(canvas.getContext("2d"), style.hatch, style.color, 10);
    out[state] = ctx.createPattern(canvas, "repeat");
  }
  return out;
}

/** A swatch of a state's look for the legend and the review list (a small canvas). */
export function stateSwatch(style, size = 16) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  canvas.className = "ge-swatch";
  const ctx = canvas.getContext("2d");
  if (style.hatch) drawHatch(ctx, style.hatch, style.color, size);
  ctx.strokeStyle = style.color;
  ctx.lineWidth = Math.min(3, style.weight);
  if (style.dashArray) ctx.setLineDash(style.dashArray.split(" ").map((v) => Number(v) / 2));
  ctx.strokeRect(1, 1, size - 2, size - 2);
  return canvas;
}

/** Zooms at which a run's pre-built tiles thin the parcels and show each flag as a dot (geo_eval/maps/archive.py). */
const OVERVIEW_MAX_ZOOM = 12;
/** A province's overview loads the renewal blocks of its view from this zoom on. */
export const BLOCKS_MIN_ZOOM = 13;

export class Layers {
  constructor(map, cfg, reviews, handlers) {
    this.map = map;
    this.cfg = cfg;
    this.reviews = reviews;
    this.handlers = handlers; // {openParcel(id, latlng), clickEmpty(latlng)}
    this.tiles = cfg.parcels.mode === "tiles";
    this.blocksUrl = cfg.blocks ? null : cfg.service?.urls?.blocks || null; // a province: blocks by view
    this.colorBy = cfg.colorBy;
    this.gradeColour = Object.fromEntries(cfg.grades.map(([key, colour]) => [key, colour]));
    this.changeColour = Object.fromEntries((cfg.changes || []).map(([key, colour]) => [key, colour]));
    this.changes = null; // tile mode: parcel id → 分类变化, loaded when that colouring is first chosen
    this.byId = new Map(); // inline: parcel id → {feature, layer}
    for (const [name, z] of PANES) map.createPane(name).style.zIndex = String(z);
    if (this.tiles) this.patterns = canvasPatterns(cfg.flagStyles);
    else svgPatterns(cfg.flagStyles);
    this.build();
  }

  fill(grade, tax, change) {
    if (this.colorBy === "change") return this.changeColour[change] || this.changeColour.none || this.cfg.tax.noData;
    if (this.colorBy === "tax_per_mu") {
      if (tax === null || tax === undefined || tax === "" || Number.isNaN(Number(tax))) return this.cfg.tax.noData;
      const v = Number(tax);
      let k = 0;
      while (k < this.cfg.tax.bins.length && v >= this.cfg.tax.bins[k]) k++;
      return this.cfg.tax.colours[k];
    }
    return this.gradeColour[grade] || this.cfg.otherColour;
  }

  parcelStyle(grade, tax, zoom, change) {
    return {
      stroke: true,
      color: "#4a4a4a",
      weight: zoom >= 15 ? 0.8 : 0.5,
      opacity: 0.9,
      fill: true,
      fillColor: this.fill(grade, tax, change),
      fillOpacity: 0.72,
    };
  }

  flagStyle(parcelId, nFlags) {
    const state = this.reviews.parcelState(parcelId, nFlags) || "pending";
    const s = this.cfg.flagStyles[state];
    const style = { stroke: true, color: s.color, weight: s.weight, dashArray: s.dashArray, opacity: 1 };
    if (!s.hatch) return { ...style, fill: false };
    const fillColor = this.tiles ? this.patterns[state] : `url(#ge-hatch-${state})`;
    return { ...style, fill: true, fillColor, fillOpacity: 1 };
  }

  /** A flagged parcel below park zooms (layer "flagged" of a pre-built tile): a dot; several in one spot, a larger one. */
  flagPointStyle(p) {
    const s = this.cfg.flagStyles[p.parcel_id ? this.reviews.parcelState(p.parcel_id, p.n_flags) || "pending" : "pending"];
    const radius = p.n_parcels > 1 ? 2.2 : 1.5;
    return { radius, stroke: false, fill: true, fillColor: s.color, fillOpacity: 0.85 };
  }

  build() {
    const cfg = this.cfg;
    this.overlays = {};
    if (this.tiles) this.buildTiles();
    else this.buildInline();
    this.blockFeatures = cfg.blocks ? cfg.blocks.features : [];
    if (cfg.blocks || this.blocksUrl) {
      this.blocks = L.geoJSON(cfg.blocks, { pane: "ge-blocks", interactive: false, style: () => ({ ...cfg.blockStyle }) });
      this.overlays["连片改造区块"] = this.blocks.addTo(this.map);
    }
    if (this.blocksUrl) {
      this.map.on("moveend", () => this.loadBlocks());
      this.loadBlocks();
    }
    if (cfg.parks) {
      this.parks = L.geoJSON(cfg.parks, { pane: "ge-parks", interactive: false, style: () => ({ ...cfg.parkStyle }) });
      this.overlays["园区边界"] = this.parks.addTo(this.map);
    }
    this.highlight = L.geoJSON(null, { pane: "ge-highlight", interactive: false, style: () => ({ ...cfg.highlightStyle }) }).addTo(this.map);
    this.map.on("click", (e) => this.onMapClick(e));
  }

  buildInline() {
    const features = this.cfg.parcels.features.features;
    const click = (f) => (e) => {
      L.DomEvent.stop(e);
      this.handlers.openParcel(f.properties.id, e.latlng);
    };
    this.parcels = L.geoJSON(
      { type: "FeatureCollection", features },
      {
        pane: "ge-parcels",
        bubblingMouseEvents: false,
        style: (f) => this.parcelStyle(f.properties.g, f.properties.x, 16, f.properties.c),
        onEachFeature: (f, layer) => {
          this.byId.set(f.properties.id, { feature: f, layer });
          layer.bindTooltip(f.properties.t, { sticky: true, direction: "top", className: "ge-tip" });
          layer.on("click", click(f));
        },
      },
    );
    this.overlays["地块"] = this.parcels.addTo(this.map);
    const flagged = features.filter((f) => f.properties.f > 0);
    this.flagLayers = new Map();
    this.flags = L.geoJSON(
      { type: "FeatureCollection", features: flagged },
      {
        pane: "ge-flags",
        bubblingMouseEvents: false,
        style: (f) => this.flagStyle(f.properties.id),
        onEachFeature: (f, layer) => {
          this.flagLayers.set(f.properties.id, layer);
          layer.bindTooltip(f.properties.t, { sticky: true, direction: "top", className: "ge-tip" });
          layer.on("click", click(f));
        },
      },
    );
    this.overlays["标记地块（按复核状态）"] = this.flags.addTo(this.map);
  }

  buildTiles() {
    const t = this.cfg.parcels;
    this.flagDots = Boolean(t.prebuilt); // a run's pre-built tiles: flags below park zooms are dots
    const common = {
      rendererFactory: L.canvas.tile,
      interactive: false,
      minZoom: t.minZoom,
      maxZoom: this.cfg.maxZoom,
      fetchOptions: { credentials: "same-origin" },
      getFeatureId: (f) => f.properties.parcel_id,
    };
    this.parcels = L.vectorGrid.protobuf(t.url, {
      ...common,
      pane: "ge-parcels",
      vectorTileLayerStyles: {
        parcels: (p, z) => this.parcelStyle(p.grade, p.tax_per_mu, z, this.changes?.get(p.parcel_id)),
        flagged: [],
      },
    });
    this.flags = L.vectorGrid.protobuf(t.url, {
      ...common,
      pane: "ge-flags",
      vectorTileLayerStyles: {
        // below park zooms a pre-built tile draws every flag as a dot (layer "flagged"), not as hatching
        parcels: (p, z) => (p.n_flags && (z > OVERVIEW_MAX_ZOOM || !this.flagDots) ? this.flagStyle(p.parcel_id, p.n_flags) : []),
        flagged: (p) => this.flagPointStyle(p),
      },
    });
    this.parcels.on("tileload", () => {
      if (!window.geoEval.firstTileAt) window.geoEval.firstTileAt = performance.now();
    });
    this.parcels.on("load", () => {
      window.geoEval.tilesLoadedAt = performance.now();
    });
    this.overlays["地块"] = this.parcels.addTo(this.map);
    this.overlays["标记地块（按复核状态）"] = this.flags.addTo(this.map);
  }

  /** Restyle the flagged parcels whose state may have changed. */
  restyle(parcelIds) {
    for (const id of parcelIds) {
      if (this.tiles) this.flags.setFeatureStyle(id, { parcels: (p) => (p.n_flags ? this.flagStyle(p.parcel_id, p.n_flags) : []) });
      else this.flagLayers.get(id)?.setStyle(this.flagStyle(id));
    }
  }

  async setColorBy(mode) {
    if (mode === "change" && this.tiles && !this.changes) {
      const url = this.cfg.service?.urls?.changes;
      const { body } = await requestJSON(url);
      this.changes = new Map(Object.entries(body.changes));
    }
    this.colorBy = mode;
    if (this.tiles) this.parcels.redraw();
    else this.parcels.setStyle((f) => this.parcelStyle(f.properties.g, f.properties.x, 16, f.properties.c));
  }

  /** Outline one parcel (a GeoJSON geometry) on top of everything. */
  showOutline(geometry) {
    this.highlight.clearLayers();
    if (geometry) this.highlight.addData({ type: "Feature", geometry, properties: {} });
  }

  inlineGeometry(id) {
    const hit = this.byId.get(id);
    return hit ? hit.feature.geometry : null;
  }

  /** The renewal block under a point, if any (blocks are few: tested in the browser). */
  blockAt(latlng) {
    return this.blockFeatures.find((f) => containsPoint(f.geometry, latlng.lng, latlng.lat)) || null;
  }

  /** A province's overview: the renewal blocks of the view (a little beyond it), from zoom BLOCKS_MIN_ZOOM on. */
  async loadBlocks() {
    if (this.map.getZoom() < BLOCKS_MIN_ZOOM) {
      this.blocksAsked = null; // an answer still on its way for a closer view is not shown out here
      this.shownBox = null;
      this.blockFeatures = [];
      this.blocks.clearLayers();
      return;
    }
    const view = this.map.getBounds();
    if (this.shownBox && this.shownBox.contains(view)) return;
    const box = view.pad(0.5);
    const bbox = [box.getWest(), box.getSouth(), box.getEast(), box.getNorth()].map((v) => v.toFixed(6)).join(",");
    const url = new URL(this.blocksUrl, location.origin);
    url.searchParams.set("bbox", bbox);
    const asked = (this.blocksAsked = url.search);
    let body;
    try {
      ({ body } = await requestJSON(url.pathname + url.search));
    } catch (err) {
      if (asked !== this.blocksAsked) return; // an earlier view's: the later one says how it went
      // said once until blocks load again (the next move of the map asks again)
      if (!this.blocksFailed) toast(`连片改造区块无法载入：${err.message}`, "error");
      this.blocksFailed = true;
      return;
    }
    this.blocksFailed = false;
    if (asked !== this.blocksAsked) return; // a later view's answer is on its way
    this.shownBox = body.truncated ? null : box;
    this.blockFeatures = body.features;
    this.blocks.clearLayers();
    this.blocks.addData(body);
  }

  onMapClick(e) {
    this.handlers.clickMap(e.latlng);
  }
}
