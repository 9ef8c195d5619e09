// The review panel (the reviewer's queue): the map's flags as a list, filterable by kind, state and
// severity, sorted by severity then area; progress counters for the park (and per park on the
// overview); "下一条" to the next unreviewed flag; downloads that follow the filters.
// On a province's overview (a "paged" review list) the service filters, sorts, counts and pages the
// list (queue.json): the panel asks for the rows it shows.

import { stateSwatch } from "./layers.js";
import { FlagBlock } from "./popup.js";
import { el, num2, phone, requestJSON, toast } from "./util.js";

const PAGE = 200;

export class Panel {
  constructor(app) {
    this.app = app;
    this.filters = { kind: "", state: "", sev: "" };
    this.shown = PAGE;
    this.selected = null; // flag id
    this.block = null; // the selected parcel's flags with their decision buttons (a FlagBlock)
    this.node = el("aside", { class: "ge-panel", id: "ge-panel", "aria-label": "复核面板", hidden: true });
    document.body.append(this.node);
    this.build();
    app.reviews.addEventListener("change", (e) => this.refresh(e.detail.parcels));
    // a paged list learns a parcel's flags when its popup loads: the selected row's buttons then show
    app.reviews.addEventListener("flags", (e) => {
      if (this.block && this.block.parcelId === e.detail.parcel) this.block.render();
    });
  }

  get open() {
    return !this.node.hidden;
  }

  setOpen(open) {
    this.node.hidden = !open;
    document.body.classList.toggle("ge-panel-open", open);
    this.app.bar?.panelButton?.setAttribute("aria-expanded", open ? "true" : "false");
    this.app.map.invalidateSize();
    this.app.saveState();
    if (open) this.refresh();
  }

  toggle() {
    this.setOpen(!this.open);
  }

  select(name, options) {
    const s = el("select", { class: "ge-select", "aria-label": name, dataset: { filter: name } });
    for (const [value, label] of options) s.append(el("option", { value }, label));
    s.addEventListener("change", () => {
      this.filters[name] = s.value;
      this.shown = PAGE;
      this.app.saveState();
      this.refresh();
    });
    return s;
  }

  build() {
    const { cfg } = this.app;
    const kinds = [["", "全部标记"], ...Object.entries(cfg.kinds)];
    const states = [["", "全部状态"], ...cfg.statusOrder.map((s) => [s, cfg.statusLabels[s]])];
    const sevs = [["", "全部严重程度"], ...cfg.severities.map((s) => [s, `严重程度：${s}`])];
    this.kindSelect = this.select("kind", kinds);
    this.stateSelect = this.select("state", states);
    this.sevSelect = this.select("sev", sevs);
    this.counters = el("div", { class: "ge-counters", "aria-live": "polite" });
    this.parkTable = el("div", { class: "ge-park-counts" });
    this.list = el("ol", { class: "ge-list" });
    this.more = el("button", { type: "button", class: "ge-btn ge-more", onclick: () => this.showMore() }, "显示更多");
    this.detail = el("div", { class: "ge-detail" });
    this.downloads = el("div", { class: "ge-downloads" });
    this.summary = el("div", { class: "ge-summary" });
    this.node.append(
      el(
        "div",
        { class: "ge-panel-head" },
        el("h2", {}, "复核面板"),
        el("button", { type: "button", class: "ge-btn ge-next", onclick: () => this.next() }, "下一条待复核"),
        el("button", { type: "button", class: "ge-icon-btn", "aria-label": "关闭复核面板", onclick: () => this.setOpen(false) }, "×"),
      ),
      this.counters,
      this.parkTable,
      el("div", { class: "ge-filters" }, this.kindSelect, this.stateSelect, this.sevSelect),
      this.downloads,
      this.summary,
      this.list,
      this.more,
    );
  }

  setFilters(filters) {
    Object.assign(this.filters, filters);
    this.kindSelect.value = this.filters.kind;
    this.stateSelect.value = this.filters.state;
    this.sevSelect.value = this.filters.sev;
  }

  matching() {
    const { reviews, cfg } = this.app;
    const sev = Object.fromEntries(cfg.severities.map((s, i) => [s, i]));
    return reviews.flags
      .filter(
        (f) =>
          (!this.filters.kind || f.kind === this.filters.kind) &&
          (!this.filters.state || reviews.state(f.id).status === this.filters.state) &&
          (!this.filters.sev || f.severity === this.filters.sev),
      )
      .sort((a, b) => (sev[a.severity] ?? 9) - (sev[b.severity] ?? 9) || (b.area ?? 0) - (a.area ?? 0) || (a.id < b.id ? -1 : 1));
  }

  countLine(counts) {
    const { cfg } = this.app;
    return cfg.statusOrder.map((s) => el("span", { class: `ge-count ge-count-${s}` }, stateSwatch(cfg.flagStyles[s], 12), `${cfg.statusLabels[s]} ${counts[s]}`));
  }

  refreshCounters(parkCounts) {
    const { reviews, cfg } = this.app;
    this.counters.replaceChildren(...this.countLine(reviews.counts()));
    const counted = parkCounts || [...new Set(reviews.flags.map((f) => f.park))].sort().map((park) => [park, reviews.counts(reviews.flags.filter((f) => f.park === park))]);
    if (cfg.service?.park || counted.length < 2) {
      this.parkTable.replaceChildren();
      return;
    }
    const head = el("tr", {}, el("th", {}, "园区"), ...cfg.statusOrder.map((s) => el("th", {}, cfg.statusLabels[s])));
    const rows = counted.map(([park, c]) => {
      const link = this.app.parkUrl(park);
      return el("tr", {}, el("td", {}, link ? el("a", { href: link }, park) : park), ...cfg.statusOrder.map((s) => el("td", {}, String(c[s]))));
    });
    this.parkTable.replaceChildren(el("table", { class: "ge-park-table" }, el("thead", {}, head), el("tbody", {}, rows)));
  }

  refreshDownloads() {
    const urls = this.app.cfg.service?.urls;
    if (!urls) return;
    const q = new URLSearchParams();
    if (this.filters.kind) q.set("flag", this.filters.kind);
    if (this.filters.state) q.set("status", this.filters.state);
    if (this.filters.sev) q.set("severity", this.filters.sev);
    const add = (url, extra) => `${url}${url.includes("?") ? "&" : "?"}${new URLSearchParams([...q, ...Object.entries(extra)])}`;
    this.downloads.replaceChildren(
      "下载（按当前筛选）：",
      el("a", { href: add(urls.flagsDownload, { format: "xlsx" }), class: "ge-dl" }, "标记清单"),
      el("a", { href: add(urls.checklist, { format: "xlsx" }), class: "ge-dl" }, "现场核查清单"),
    );
  }

  /** Redraw counters and list (``changed``: the parcels whose states changed, when known). */
  refresh(changed) {
    if (!this.open) return;
    if (this.app.reviews.paged) {
      this.refreshPaged(changed);
      return;
    }
    this.refreshCounters();
    this.refreshDownloads();
    // someone typing a comment in the selected flag's box keeps the box (and its focus) as it is
    if (this.block && this.block.node.contains(document.activeElement)) {
      if (!changed || changed.has(this.block.parcelId)) this.block.render();
      return;
    }
    const rows = this.matching();
    this.summary.textContent = `符合筛选的标记 ${rows.length} 条（按严重程度、面积排序）`;
    this.list.replaceChildren(...rows.slice(0, this.shown).map((f) => this.row(f)));
    this.more.hidden = rows.length <= this.shown;
  }

  showMore() {
    this.shown += PAGE;
    this.refresh();
  }

  /** The service's answer for the list as filtered: ``extra`` adds or overrides query parameters. */
  async ask(extra) {
    const url = new URL(this.app.cfg.service.urls.queue, location.origin);
    const params = { kind: this.filters.kind, state: this.filters.state, sev: this.filters.sev, limit: String(this.shown), ...extra };
    for (const [key, value] of Object.entries(params)) if (value) url.searchParams.set(key, value);
    const { body } = await requestJSON(url.pathname + url.search);
    return body;
  }

  /** A paged list: counters, park table and the first ``shown`` rows, as the service answers. */
  async refreshPaged(changed) {
    const asked = (this.asking = (this.asking || 0) + 1);
    let body;
    try {
      body = await this.ask({});
    } catch (err) {
      this.summary.textContent = `复核清单无法载入：${err.message}`;
      return;
    }
    if (asked !== this.asking || !this.open) return; // a later request's answer is on its way
    const { reviews } = this.app;
    reviews.totals = body.counts;
    this.refreshCounters(body.parks);
    this.refreshDownloads();
    if (this.block && this.block.node.contains(document.activeElement)) {
      if (!changed || changed.has(this.block.parcelId)) this.block.render();
      return;
    }
    const rows = reviews.fromRows(body.columns, body.rows);
    this.summary.textContent = `符合筛选的标记 ${body.total} 条（按严重程度、面积排序；由服务分页）`;
    this.list.replaceChildren(...rows.map((f) => this.row(f)));
    this.more.hidden = body.total <= this.shown;
  }

  /** A paged list's next 待复核 flag after the selected one (the service looks it up). */
  async nextPaged() {
    const kindSev = { kind: this.filters.kind, sev: this.filters.sev };
    const state = this.filters.state && this.filters.state !== "pending" ? null : "pending";
    try {
      let body = state ? await this.ask({ ...kindSev, state, after: this.selected || "", limit: "1" }) : null;
      if (!body || !body.rows.length) body = await this.ask({ kind: "", sev: "", state: "pending", after: this.selected || "", limit: "1" });
      const [f] = this.app.reviews.fromRows(body.columns, body.rows);
      if (!f) {
        this.summary.textContent = "没有待复核的标记了。";
        return;
      }
      this.open_(f);
    } catch (err) {
      toast(err.message, "error");
    }
  }

  /** The selected parcel's flags and buttons, kept across refreshes (its comment box keeps what was typed). */
  selectedBlock(f) {
    if (!this.block || this.block.parcelId !== f.parcel) this.block = new FlagBlock(this.app, f.parcel);
    else this.block.render();
    return el("div", { class: "ge-row-detail" }, this.block.node);
  }

  row(f) {
    const { reviews, cfg } = this.app;
    const st = reviews.state(f.id).status;
    const area = f.area === null || f.area === undefined ? "" : `${num2(f.area)} 亩`;
    const li = el(
      "li",
      { class: `ge-row ge-state-${st}${this.selected === f.id ? " ge-selected" : ""}`, dataset: { flag: f.id, parcel: f.parcel } },
      el(
        "button",
        { type: "button", class: "ge-row-btn", onclick: () => this.open_(f) },
        el("div", { class: "ge-row-head" }, stateSwatch(cfg.flagStyles[st], 12), el("span", { class: `ge-badge ge-badge-${st}` }, cfg.statusLabels[st]), el("b", {}, f.parcel), f.severity ? el("span", { class: `ge-sev ge-sev-${f.severity}` }, f.severity) : null),
        el("div", { class: "ge-row-meta" }, [f.holder || "（无权利人）", area, cfg.service?.park ? null : f.park].filter(Boolean).join(" · ")),
        el("div", { class: "ge-row-reason" }, `${f.rule}：${f.reason}`),
      ),
    );
    if (this.selected === f.id) li.append(this.selectedBlock(f));
    return li;
  }

  /** Zoom to a flag's parcel and open it (on a phone the panel gives way to the map). */
  open_(f) {
    this.selected = f.id;
    if (phone.matches) this.setOpen(false);
    this.app.zoomToParcel(f.parcel, f.bounds, L.latLng(f.lat, f.lon));
    this.refresh();
  }

  /** The next 待复核 flag after the selected one in the list's order (wrapping round). */
  next() {
    const { reviews } = this.app;
    if (reviews.paged) {
      this.nextPaged();
      return;
    }
    const rows = this.matching();
    const pending = (f) => reviews.state(f.id).status === "pending";
    const start = rows.findIndex((f) => f.id === this.selected);
    const after = [...rows.slice(start + 1), ...rows.slice(0, start + 1)];
    const f = after.find(pending) || reviews.flags.find(pending);
    if (!f) {
      this.summary.textContent = "没有待复核的标记了。";
      return;
    }
    this.open_(f);
  }
}
