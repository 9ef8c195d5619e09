// The review states of the map's flags: the flag list (static for a run), the states polled from
// the service (flag id → state, version), and the decisions a reviewer makes. Other modules listen
// for "change" events ({detail: {parcels: Set}}) and restyle or re-render what changed.
//
// A province's overview ("paged" review list) holds no whole flag list: the panel asks the service
// for the rows it shows (queue.json) and the counts; a parcel's flags come with its popup; a parcel's
// state on the map is made from the reviewed flags (flag id = parcel id + ":" + rule) and its number
// of flags (from the tiles): a flag never reviewed is 待复核.

import { RequestError, requestJSON } from "./util.js";

const PENDING = "pending";

export class Reviews extends EventTarget {
  constructor(cfg) {
    super();
    this.cfg = cfg;
    this.service = cfg.service || null;
    this.urls = (this.service && this.service.urls) || {};
    this.order = cfg.statusOrder; // most urgent first: pending, site_visit, confirmed, dismissed
    this.flags = []; // {id, parcel, kind, rule, reason, severity, area, holder, park, lon, lat, bounds}
    this.byId = new Map();
    this.byParcel = new Map();
    this.states = new Map(); // flag id → {status, version, comment, by, at}
    this.etag = null;
    this.timer = null;
    this.paged = Boolean(this.service && this.service.reviewList === "paged" && this.urls.queue);
    this.totals = null; // paged: counts per state of the whole map (from queue.json)
    this.reviewedByParcel = new Map(); // paged: parcel id → its reviewed flags' ids
  }

  /** The parcel a flag id names (the id is the parcel code, ":", the rule). */
  parcelOf(flagId) {
    const f = this.byId.get(flagId);
    if (f) return f.parcel;
    const i = flagId.lastIndexOf(":");
    return i > 0 ? flagId.slice(0, i) : flagId;
  }

  /** Rows of the review list (columns as flags.json) as flag objects, remembered by id. */
  fromRows(columns, rows) {
    const at = Object.fromEntries(columns.map((name, i) => [name, i]));
    const out = (rows || []).map((r) => ({
      id: r[at.flag_id],
      parcel: r[at.parcel_id],
      kind: r[at.flag],
      rule: r[at.rule],
      reason: r[at.reason],
      severity: r[at.severity],
      area: r[at.area_mu],
      holder: r[at.holder],
      park: r[at.park],
      lon: r[at.lon],
      lat: r[at.lat],
      bounds: [
        [r[at.south], r[at.west]],
        [r[at.north], r[at.east]],
      ],
    }));
    for (const f of out) this.byId.set(f.id, f);
    return out;
  }

  /** A parcel's whole list of flags (from its popup), on a paged map. */
  setParcelFlags(parcelId, columns, rows) {
    this.byParcel.set(parcelId, this.fromRows(columns, rows));
    this.dispatchEvent(new CustomEvent("flags", { detail: { parcel: parcelId } }));
  }

  /** Whether the map has any flag. */
  get anyFlags() {
    if (!this.paged) return this.flags.length > 0;
    return Boolean(this.totals) && Object.values(this.totals).some((n) => n > 0);
  }

  /** Paged: the counts per state of the whole map, asked of the service. */
  async loadTotals() {
    if (!this.paged) return;
    const url = new URL(this.urls.queue, location.origin);
    url.searchParams.set("limit", "0");
    const { body } = await requestJSON(url.pathname + url.search);
    this.totals = body.counts;
  }

  indexReviewed() {
    this.reviewedByParcel = new Map();
    for (const id of this.states.keys()) {
      const p = this.parcelOf(id);
      if (!this.reviewedByParcel.has(p)) this.reviewedByParcel.set(p, []);
      this.reviewedByParcel.get(p).push(id);
    }
  }

  get canReview() {
    return Boolean(this.service && this.service.user && this.service.user.canReview);
  }

  /** Load the flag list (from the page, or from the service for a large map). */
  async load() {
    if (this.paged) {
      await Promise.all([this.loadTotals(), this.refresh()]);
      return;
    }
    let columns = this.cfg.flagColumns;
    let rows = this.cfg.flagRows;
    if (!rows && this.urls.flags) {
      const { body } = await requestJSON(this.urls.flags);
      columns = body.columns;
      rows = body.rows;
    }
    this.flags = this.fromRows(columns, rows);
    for (const f of this.flags) {
      if (!this.byParcel.has(f.parcel)) this.byParcel.set(f.parcel, []);
      this.byParcel.get(f.parcel).push(f);
    }
    if (this.urls.states) await this.refresh();
  }

  /** Poll the states every `seconds` (and at once when the tab comes back into view). */
  start(seconds) {
    if (!this.urls.states) return;
    const tick = () => this.refresh().catch(() => {});
    this.timer = setInterval(tick, Math.max(1, seconds) * 1000);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") tick();
    });
  }

  /** Ask for the states; 304 when nothing changed since the last answer. */
  async refresh() {
    const { status, etag, body } = await requestJSON(this.urls.states, { etag: this.etag });
    if (status === 304) return;
    this.etag = etag;
    const next = new Map();
    for (const [id, [state, version, comment, by, at, carried]] of Object.entries(body.states || {})) {
      next.set(id, { status: state, version, comment, by, at, carried: carried || "" });
    }
    const changed = new Set();
    for (const id of new Set([...this.states.keys(), ...next.keys()])) {
      const a = this.states.get(id);
      const b = next.get(id);
      if (!a || !b || a.version !== b.version || a.status !== b.status) {
        if (this.paged || this.byId.has(id)) changed.add(this.parcelOf(id));
      }
    }
    this.states = next;
    this.indexReviewed();
    if (changed.size && this.paged) await this.loadTotals().catch(() => {});
    if (changed.size) this.emit(changed);
  }

  emit(parcels) {
    this.dispatchEvent(new CustomEvent("change", { detail: { parcels } }));
  }

  state(id) {
    return this.states.get(id) || { status: PENDING, version: 0, comment: "", by: "", at: "" };
  }

  /** The most urgent state among a parcel's flags (待复核 first), or null for an unflagged parcel;
   * ``nFlags`` (from the tiles) tells a paged map how many flags the parcel has. */
  parcelState(parcelId, nFlags) {
    const flags = this.byParcel.get(parcelId);
    let present;
    if (flags && flags.length) present = new Set(flags.map((f) => this.state(f.id).status));
    else if (this.paged) {
      const reviewed = this.reviewedByParcel.get(parcelId) || [];
      if (!reviewed.length && !nFlags) return null;
      present = new Set(reviewed.map((id) => this.state(id).status));
      if (!reviewed.length || (nFlags || 0) > reviewed.length) present.add(PENDING);
    } else return null;
    return this.order.find((s) => present.has(s)) || PENDING;
  }

  /** Counts per state of some flags (all by default: on a paged map, as the service counted them). */
  counts(flags) {
    const out = Object.fromEntries(this.order.map((s) => [s, 0]));
    if (!flags && this.paged) return { ...out, ...(this.totals || {}) };
    for (const f of flags || this.flags) out[this.state(f.id).status] += 1;
    return out;
  }

  apply(id, review) {
    this.states.set(id, {
      status: review.status,
      version: review.version,
      comment: review.comment,
      by: review.updated_by,
      at: review.updated_at_label || "",
    });
    if (this.paged) this.indexReviewed();
  }

  /**
   * Record a decision on some flags (one PATCH, or the batch route for several). Returns
   * {ok: [ids], stale: [{id, message, current}], errors: [{id, message}]}; the states are updated
   * from the answers, so the map restyles at once.
   */
  async decide(ids, status, comment) {
    const result = { ok: [], stale: [], errors: [] };
    const changed = new Set(ids.map((id) => this.parcelOf(id)));
    try {
      if (ids.length === 1) {
        const id = ids[0];
        const url = this.urls.review.replace("{id}", encodeURIComponent(id));
        try {
          const { body } = await requestJSON(url, {
            method: "PATCH",
            body: { status, comment, version: this.state(id).version },
          });
          this.apply(id, body.review);
          result.ok.push(id);
        } catch (err) {
          if (!(err instanceof RequestError) || err.status !== 409) throw err;
          result.stale.push({ id, message: err.message, current: err.body.current || null });
        }
      } else {
        const items = ids.map((id) => ({ flag_id: id, version: this.state(id).version }));
        const { body } = await requestJSON(this.urls.batch, { method: "POST", body: { status, comment, items } });
        for (const r of body.results) {
          if (r.ok) {
            this.apply(r.flag_id, r.review);
            result.ok.push(r.flag_id);
          } else if (r.error === "conflict") {
            result.stale.push({ id: r.flag_id, message: r.detail, current: r.current || null });
          } else {
            result.errors.push({ id: r.flag_id, message: r.detail });
          }
        }
      }
    } finally {
      if (this.paged) await this.loadTotals().catch(() => {});
      this.emit(changed);
    }
    return result;
  }

  /** Read one flag's current review again (after a 409), so the page shows what the other reviewer did. */
  async reload(id) {
    const url = this.urls.review.replace("{id}", encodeURIComponent(id));
    const { body } = await requestJSON(url);
    this.apply(id, body.properties.review);
    this.emit(new Set([this.parcelOf(id)]));
  }
}
