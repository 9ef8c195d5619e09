// The park map page: reads the configuration the server wrote (#ge-config, #ge-session), takes the
// Leaflet map Folium made, and builds the reviewer's workbench on it: layers styled by review state,
// popups with review buttons, the review panel, polling for other reviewers' decisions, search,
// legend, navigation, URL state, printing and the phone layout.

import { Bar, Legend, mapButtons, notice, printHeader, runBanner, Search } from "./chrome.js";
import { Layers } from "./layers.js";
import { Panel } from "./panel.js";
import { Popup } from "./popup.js";
import { Reviews } from "./reviews.js";
import { phone, requestJSON, toast } from "./util.js";

function readJSON(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

/** The view and panel kept in the URL's fragment: #map=z/lat/lng&panel=1&kind=…&state=…&sev=…&parcel=… */
function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const out = { panel: params.get("panel") === "1", parcel: params.get("parcel") || null };
  const view = (params.get("map") || "").split("/").map(Number);
  if (view.length === 3 && view.every(Number.isFinite)) out.view = view;
  out.filters = { kind: params.get("kind") || "", state: params.get("state") || "", sev: params.get("sev") || "" };
  return out;
}

class App {
  constructor(cfg) {
    this.cfg = cfg;
    this.map = window[cfg.map];
    this.colorBy = cfg.colorBy;
    this.openParcelId = null;
    window.geoEval = { app: this, map: this.map, drawn: 0, readyAt: 0, firstTileAt: 0, tilesLoadedAt: 0 };
  }

  async start() {
    const { cfg, map } = this;
    const start = readHash();
    map.setMaxZoom(cfg.maxZoom);
    map.options.zoomSnap = 0.5;
    map.attributionControl.setPrefix(false);
    map.attributionControl.addAttribution(cfg.attribution);
    L.control.zoom({ position: "topleft", zoomInTitle: "放大", zoomOutTitle: "缩小" }).addTo(map);
    // the view first, so that the parcel tiles asked for are the ones of the view the user sees
    if (start.view) map.setView([start.view[1], start.view[2]], start.view[0], { animate: false });
    else this.fitAll(false);
    this.reviews = new Reviews(cfg);
    this.layers = new Layers(map, cfg, this.reviews, {
      openParcel: (id, latlng) => this.openParcel(id, latlng),
      clickMap: (latlng) => this.clickMap(latlng),
    });
    window.geoEval.layers = { parcels: this.layers.parcels, flags: this.layers.flags, blocks: this.layers.blocks, parks: this.layers.parks };
    window.geoEval.drawn = cfg.parcels.mode === "inline" ? cfg.parcels.features.features.length : 0;
    this.basemapControl();
    this.popup = new Popup(this);
    if (cfg.service?.urls) this.panel = new Panel(this);
    this.bar = new Bar(this);
    mapButtons(this);
    new Search(this);
    L.control.scale({ position: "bottomleft", imperial: false, maxWidth: 160 }).addTo(map);
    printHeader(this);
    notice(cfg.service?.notice);
    runBanner(this);
    map.on("moveend", () => this.saveState());
    this.reviews.addEventListener("change", (e) => {
      this.layers.restyle(e.detail.parcels);
      this.bar.setPending(this.reviews.counts().pending);
    });
    phone.addEventListener("change", () => map.invalidateSize());
    window.geoEval.readyAt = performance.now();
    try {
      await this.reviews.load();
    } catch (err) {
      toast(`复核状态无法载入：${err.message}`, "error");
    }
    this.layers.restyle(this.reviews.byParcel.keys());
    this.bar.setPending(this.reviews.counts().pending);
    if (this.panel) {
      this.panel.setFilters(start.filters);
      if (start.panel) this.panel.setOpen(true);
    }
    this.legend = new Legend(this);
    if (cfg.colorBy === "change" && cfg.parcels.mode === "tiles") this.setColorBy("change");
    this.reviews.start(cfg.service?.poll || 10);
    if (start.parcel) this.zoomToParcel(start.parcel);
    window.geoEval.statesAt = performance.now();
  }

  basemapControl() {
    const bases = {};
    const overlays = { ...this.layers.overlays };
    for (const b of this.cfg.basemaps || []) {
      const layer = window[b.var];
      if (!layer) continue;
      if (b.overlay) overlays[b.label] = layer;
      else bases[b.label] = layer;
    }
    L.control.layers(bases, overlays, { position: "topright", collapsed: phone.matches }).addTo(this.map);
  }

  fitAll(animate = true) {
    if (this.cfg.bounds) this.map.fitBounds(this.cfg.bounds, { padding: [16, 16], animate });
  }

  async setColorBy(mode) {
    try {
      await this.layers.setColorBy(mode);
    } catch (err) {
      toast(`分类变化无法载入：${err.message}`, "error");
      return;
    }
    this.colorBy = mode;
    this.legend?.render();
    this.bar.setColour(mode);
    const url = new URL(location.href);
    if (mode === "grade") url.searchParams.delete("color_by");
    else url.searchParams.set("color_by", mode);
    history.replaceState(null, "", url);
  }

  parkUrl(park) {
    return (this.cfg.service?.parks || []).find((p) => p.name === park)?.url || null;
  }

  saveState() {
    const c = this.map.getCenter();
    const params = new URLSearchParams();
    params.set("map", `${this.map.getZoom()}/${c.lat.toFixed(5)}/${c.lng.toFixed(5)}`);
    if (this.panel?.open) params.set("panel", "1");
    for (const [key, value] of Object.entries(this.panel?.filters || {})) if (value) params.set(key, value);
    if (this.openParcelId) params.set("parcel", this.openParcelId);
    history.replaceState(null, "", `${location.pathname}${location.search}#${params}`);
  }

  onPopup(current) {
    this.openParcelId = current?.parcelId || null;
    this.saveState();
  }

  /** A parcel's popup figures: from the page (inline) or from the service (tiles). */
  async parcelInfo(id, point) {
    if (this.cfg.parcels.mode === "inline") {
      const hit = this.layers.byId.get(id);
      if (!hit) return null;
      return { id, cells: hit.feature.properties.v, geometry: hit.feature.geometry, bounds: hit.layer.getBounds() };
    }
    const url = new URL(this.cfg.service.urls.parcel, location.origin);
    if (id) url.searchParams.set("id", id);
    else {
      url.searchParams.set("lon", point.lng.toFixed(7));
      url.searchParams.set("lat", point.lat.toFixed(7));
    }
    try {
      const { body } = await requestJSON(url.pathname + url.search);
      if (this.reviews.paged && body.flags) this.reviews.setParcelFlags(body.parcel_id, body.flags.columns, body.flags.rows);
      return { id: body.parcel_id, cells: body.cells, geometry: body.geometry, bounds: L.latLngBounds(body.bounds), point: L.latLng(body.point[1], body.point[0]) };
    } catch (err) {
      if (err.status === 404) return null;
      throw err;
    }
  }

  async openParcel(id, latlng) {
    const info = await this.parcelInfo(id);
    if (!info) return;
    this.popup.showParcel(info, latlng || info.point || info.bounds.getCenter());
  }

  async clickMap(latlng) {
    if (this.cfg.parcels.mode === "tiles" && this.map.getZoom() >= this.cfg.parcels.minZoom) {
      try {
        const info = await this.parcelInfo(null, latlng);
        if (info) {
          this.popup.showParcel(info, latlng);
          return;
        }
      } catch (err) {
        toast(err.message, "error");
        return;
      }
    }
    const block = this.layers.blockAt(latlng);
    if (block) this.popup.showBlock(block, latlng);
    else this.popup.close();
  }

  /** Zoom to a parcel, outline it and open its popup (from the review list, search or a link). */
  async zoomToParcel(id, bounds, latlng) {
    let info;
    try {
      info = await this.parcelInfo(id);
    } catch (err) {
      toast(err.message, "error");
      return;
    }
    if (!info) {
      toast(`地图上没有宗地 ${id}`, "error");
      return;
    }
    const box = bounds ? L.latLngBounds(bounds) : info.bounds;
    this.map.fitBounds(box, { maxZoom: 18, padding: [40, 40], animate: false });
    const flag = this.reviews.byParcel.get(id)?.[0];
    const at = latlng || info.point || (flag ? L.latLng(flag.lat, flag.lon) : box.getCenter());
    this.popup.showParcel(info, at);
  }
}

const cfg = readJSON("ge-config");
cfg.service = cfg.service ? { ...cfg.service, ...(readJSON("ge-session") || {}) } : readJSON("ge-session");
new App(cfg).start();
