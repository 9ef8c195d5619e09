// Everything around the map: the top bar (navigation to parks and years, colouring, basemap, panel,
// print, sign-out), the legend, the search box, the buttons on the map (whole park, north arrow),
// the metric scale and what a printed map carries (title, date, legend, scale, north arrow).

import { BLOCKS_MIN_ZOOM, stateSwatch } from "./layers.js";
import { el, phone, requestJSON, toast } from "./util.js";

const COLOURINGS = [
  ["grade", "按分类"],
  ["tax_per_mu", "按亩均税收"],
];

function selectNav(label, options, onchange) {
  const s = el("select", { class: "ge-select", "aria-label": label });
  for (const o of options) s.append(el("option", { value: o.value, selected: o.current || null }, o.label));
  s.addEventListener("change", () => onchange(s.value));
  return s;
}

export class Bar {
  constructor(app) {
    this.app = app;
    const { cfg } = app;
    const svc = cfg.service || {};
    const run = svc.run || {};
    const title = svc.park || (svc.urls ? "园区总览" : cfg.title);
    this.node = el("header", { class: "ge-bar" });
    this.menu = el("div", { class: "ge-bar-menu", id: "ge-menu" });
    this.menuButton = el(
      "button",
      { type: "button", class: "ge-icon-btn ge-menu-btn", "aria-label": "菜单", "aria-expanded": "false", "aria-controls": "ge-menu", onclick: () => this.toggleMenu() },
      "☰",
    );
    this.node.append(el("h1", { class: "ge-bar-title", title: cfg.title }, title, run.year ? el("small", {}, ` ${run.year} 年度`) : null));
    if (svc.urls) {
      this.panelButton = el(
        "button",
        { type: "button", class: "ge-btn ge-panel-btn", "aria-controls": "ge-panel", "aria-expanded": "false", onclick: () => app.panel.toggle() },
        "复核面板",
        el("span", { class: "ge-pending-count" }),
      );
    }
    this.node.append(this.menu, this.panelButton || null, this.menuButton);
    document.body.prepend(this.node);
    this.buildMenu();
  }

  toggleMenu(open) {
    const show = open ?? !this.menu.classList.contains("ge-open");
    this.menu.classList.toggle("ge-open", show);
    this.menuButton.setAttribute("aria-expanded", show ? "true" : "false");
  }

  buildMenu() {
    const { cfg } = this.app;
    const svc = cfg.service || {};
    const urls = svc.urls || {};
    const nav = el("nav", { class: "ge-nav", "aria-label": "导航" });
    if (urls.home) nav.append(el("a", { href: urls.home }, "首页"));
    if (urls.overview) nav.append(el("a", { href: urls.overview, class: svc.park ? null : "ge-current" }, "园区总览"));
    const parks = svc.parks || [];
    if (parks.length) {
      const opts = [{ value: "", label: "选择园区…", current: !svc.park }, ...parks.map((p) => ({ value: p.url, label: p.name, current: p.current }))];
      nav.append(selectNav("园区", opts, (url) => url && (location.href = url)));
    }
    const years = svc.years || [];
    if (years.length) {
      const opts = years.map((y) => ({ value: y.url, label: `${y.year} 年度`, current: y.run === svc.run?.id }));
      nav.append(selectNav("评价年度", opts, (url) => (location.href = url + location.hash)));
    }
    const tools = el("div", { class: "ge-tools" });
    const colour = el("div", { class: "ge-seg", role: "group", "aria-label": "着色" });
    const colourings = cfg.changes ? [...COLOURINGS, ["change", "分类变化"]] : COLOURINGS;
    for (const [value, label] of colourings) {
      colour.append(
        el("button", { type: "button", class: "ge-seg-btn", dataset: { colour: value }, "aria-pressed": value === this.app.colorBy ? "true" : "false", onclick: () => this.app.setColorBy(value) }, label),
      );
    }
    tools.append(colour);
    const bases = svc.basemaps || [];
    if (bases.length) {
      const opts = bases.map((b) => ({ value: b.url, label: `底图：${b.label}`, current: b.current }));
      tools.append(selectNav("底图", opts, (url) => (location.href = url + location.hash)));
    }
    tools.append(el("button", { type: "button", class: "ge-btn", onclick: () => window.print() }, "打印"));
    if (svc.user) {
      const out = el("form", { method: "post", action: urls.logout || "/logout", class: "ge-logout" }, el("button", { type: "submit", class: "ge-btn" }, "退出"));
      tools.append(el("span", { class: "ge-user", title: svc.user.roleLabel }, svc.user.name), out);
    }
    this.menu.append(nav, tools);
  }

  setColour(mode) {
    for (const b of this.menu.querySelectorAll("[data-colour]")) b.setAttribute("aria-pressed", b.dataset.colour === mode ? "true" : "false");
  }

  setPending(n) {
    const badge = this.panelButton?.querySelector(".ge-pending-count");
    if (badge) badge.textContent = n ? ` 待复核 ${n}` : "";
  }
}

/** The legend: colouring classes with counts, review states (live counts), blocks and parks. */
export class Legend {
  constructor(app) {
    this.app = app;
    const control = L.control({ position: "bottomright" });
    control.onAdd = () => {
      this.node = el("div", { class: "ge-legend leaflet-bar" });
      this.toggle = el("button", { type: "button", class: "ge-legend-toggle", "aria-expanded": "true", onclick: () => this.setOpen(!this.open) }, "图例");
      this.body = el("div", { class: "ge-legend-body" });
      this.node.append(this.toggle, this.body);
      L.DomEvent.disableClickPropagation(this.node);
      L.DomEvent.disableScrollPropagation(this.node);
      return this.node;
    };
    control.addTo(app.map);
    this.setOpen(!phone.matches);
    this.render();
    app.reviews.addEventListener("change", () => this.render());
  }

  setOpen(open) {
    this.open = open;
    this.body.hidden = !open;
    this.toggle.setAttribute("aria-expanded", open ? "true" : "false");
    this.toggle.textContent = open ? "图例 ▾" : "图例 ▸";
  }

  render() {
    const { cfg, reviews } = this.app;
    const rows = [el("div", { class: "ge-legend-title" }, cfg.title)];
    if (this.app.colorBy === "change" && cfg.changes) {
      rows.push(el("div", { class: "ge-legend-sub" }, "分类变化（主要使用企业，与上年相比）"));
      for (const [, colour, label, n] of cfg.changes) rows.push(el("div", {}, el("i", { style: `background:${colour}` }), label, el("span", { class: "ge-n" }, String(n))));
    } else if (this.app.colorBy === "grade") {
      rows.push(el("div", { class: "ge-legend-sub" }, "分类（按宗地主要使用企业）"));
      for (const [, colour, label, n] of cfg.grades) rows.push(el("div", {}, el("i", { style: `background:${colour}` }), label, el("span", { class: "ge-n" }, String(n))));
    } else {
      rows.push(el("div", { class: "ge-legend-sub" }, "亩均税收（万元/亩）"));
      cfg.tax.labels.forEach((label, i) => rows.push(el("div", {}, el("i", { style: `background:${cfg.tax.colours[i]}` }), label, el("span", { class: "ge-n" }, String(cfg.tax.counts[i])))));
      rows.push(el("div", {}, el("i", { style: `background:${cfg.tax.noData}` }), "无数据", el("span", { class: "ge-n" }, String(cfg.tax.noDataCount))));
    }
    if (reviews.anyFlags) {
      const counts = reviews.counts();
      rows.push(el("div", { class: "ge-legend-sub" }, "标记（按复核状态；一宗地显示最急的状态）"));
      for (const s of cfg.statusOrder) rows.push(el("div", {}, stateSwatch(cfg.flagStyles[s], 14), `标记·${cfg.statusLabels[s]}`, el("span", { class: "ge-n" }, `${counts[s]} 条`)));
    }
    if (cfg.blocks) rows.push(el("div", {}, el("i", { class: "ge-line", style: `border-top:4px dashed ${cfg.blockStyle.color}` }), "连片改造区块"));
    else if (cfg.service?.urls?.blocks) rows.push(el("div", {}, el("i", { class: "ge-line", style: `border-top:4px dashed ${cfg.blockStyle.color}` }), `连片改造区块（${BLOCKS_MIN_ZOOM} 级及以上）`));
    if (cfg.parks) rows.push(el("div", {}, el("i", { class: "ge-line", style: `border-top:2.5px solid ${cfg.parkStyle.color}` }), "园区边界"));
    if (cfg.parcels.mode === "tiles") rows.push(el("div", { class: "ge-note" }, `地块以矢量瓦片显示：放大到 ${cfg.parcels.minZoom} 级及以上可见。`));
    this.body.replaceChildren(...rows);
  }
}

/** The search box: parcel codes, enterprise names and USCCs; hits are set as text. */
export class Search {
  constructor(app) {
    this.app = app;
    this.index = app.cfg.search.index;
    this.remote = app.cfg.service?.search === "remote" && Boolean(app.cfg.search.url);
    this.loading = null;
    const control = L.control({ position: "topleft" });
    control.onAdd = () => this.build();
    control.addTo(app.map);
  }

  /** The service's rows for what was typed (null when a later question has been asked meanwhile). */
  async ask(text) {
    const q = text.trim();
    const asked = (this.asked = (this.asked || 0) + 1);
    const url = new URL(this.app.cfg.search.url, location.origin);
    url.searchParams.set("q", q);
    url.searchParams.set("limit", String(this.app.cfg.search.limit));
    try {
      const { body } = await requestJSON(url.pathname + url.search);
      return asked === this.asked ? body : null;
    } catch (err) {
      toast(`搜索失败：${err.message}`, "error");
      return null;
    }
  }

  load() {
    const url = this.app.cfg.search.url;
    if (this.index || this.loading || !url) return this.loading;
    this.loading = fetch(url, { credentials: "same-origin" })
      .then((r) => r.json())
      .then((rows) => (this.index = rows));
    return this.loading;
  }

  build() {
    const cfg = this.app.cfg.search;
    const div = el("div", { class: "ge-search leaflet-bar" });
    const toggle = el("button", { type: "button", class: "ge-search-toggle", "aria-label": "搜索", title: "搜索" }, "搜索");
    const input = el("input", { type: "search", placeholder: cfg.placeholder, "aria-label": cfg.placeholder });
    const list = el("ul", { role: "listbox" });
    div.append(toggle, input, list);
    toggle.addEventListener("click", () => {
      div.classList.toggle("ge-open");
      if (div.classList.contains("ge-open")) input.focus();
    });
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    let hits = [];
    const go = (row) => {
      list.replaceChildren();
      div.classList.remove("ge-open");
      const bounds = L.latLngBounds([row[4], row[3]], [row[6], row[5]]);
      this.app.zoomToParcel(row[0], [[row[4], row[3]], [row[6], row[5]]], bounds.getCenter());
    };
    const render = (found) => {
      list.replaceChildren();
      hits = found;
      for (const r of hits) {
        const li = el("li", { role: "option" }, r[0], r[1] ? el("small", {}, r[1]) : null);
        li.addEventListener("click", (e) => {
          L.DomEvent.stop(e);
          go(r);
        });
        list.append(li);
      }
      if (!hits.length) list.append(el("li", { class: "ge-empty" }, cfg.empty));
    };
    const show = (q) => {
      q = q.trim().toLowerCase();
      if (!q || !this.index) {
        list.replaceChildren();
        hits = [];
        return;
      }
      const found = [];
      for (const r of this.index) {
        if (found.length >= cfg.limit) break;
        if ([r[0], r[1], r[2]].some((v) => String(v).toLowerCase().includes(q))) found.push(r);
      }
      render(found);
    };
    if (this.remote) {
      // a province's overview: the service searches (its whole index would be 130 MB), a moment after typing
      let timer = null;
      input.addEventListener("input", () => {
        clearTimeout(timer);
        if (!input.value.trim()) {
          this.asked = (this.asked || 0) + 1; // an answer still on its way is for text no longer there
          list.replaceChildren();
          hits = [];
          return;
        }
        timer = setTimeout(() => this.ask(input.value).then((found) => found && render(found)), 250);
      });
    } else {
      input.addEventListener("focus", () => this.load());
      input.addEventListener("input", () => {
        const p = this.load();
        if (p) p.then(() => show(input.value));
        else show(input.value);
      });
    }
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && hits.length) {
        e.preventDefault();
        go(hits[0]);
      }
      if (e.key === "Escape") list.replaceChildren();
    });
    return div;
  }
}

/** Buttons on the map: back to the whole park, and a north arrow (also printed). */
export function mapButtons(app) {
  const home = L.control({ position: "topleft" });
  home.onAdd = () => {
    const b = el("button", { type: "button", class: "ge-home leaflet-bar", title: "回到全园", "aria-label": "回到全园" }, "全园");
    L.DomEvent.disableClickPropagation(b);
    b.addEventListener("click", () => app.fitAll());
    return b;
  };
  home.addTo(app.map);
  const north = L.control({ position: "topright" });
  north.onAdd = () =>
    el(
      "div",
      { class: "ge-north", title: "指北针（上方为北）", "aria-label": "指北针" },
      el("span", { class: "ge-north-arrow" }, "▲"),
      el("span", {}, "北"),
    );
  north.addTo(app.map);
}

/** What only a printed map shows: its title, the year and the date. */
export function printHeader(app) {
  const svc = app.cfg.service || {};
  const date = new Date().toLocaleDateString("zh-CN", { timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit" });
  const which = svc.runStatus?.line || (svc.run?.year ? `${svc.run.year} 年度` : "");
  const lines = [app.cfg.title, `${which ? `${which} · ` : ""}打印日期 ${date}`];
  document.body.append(el("div", { class: "ge-print-head" }, el("div", { class: "ge-print-title" }, lines[0]), el("div", {}, lines[1])));
  const fit = () => app.map.invalidateSize();
  window.addEventListener("beforeprint", fit);
  window.addEventListener("afterprint", fit);
}

export function notice(text) {
  if (!text) return;
  const box = el("div", { class: "ge-notice", role: "alert" }, text, el("button", { type: "button", class: "ge-icon-btn", "aria-label": "关闭提示", onclick: () => box.remove() }, "×"));
  document.body.append(box);
}

/**
 * The run's publication status under the bar: 草稿, 公示中 with its dates (and, for those who may, a link to
 * record an objection) or 已发布; the status word also goes next to the year in the title.
 */
export function runBanner(app) {
  const status = app.cfg.service?.runStatus;
  if (!status) return;
  const title = document.querySelector(".ge-bar-title");
  if (title) title.after(el("span", { class: `ge-run-status ge-run-${status.status}`, title: status.line }, status.label));
  const lines = [];
  if (status.status === "publicity") {
    const link = el("a", { href: status.objections }, status.mayObject ? "登记或查看异议" : "查看异议");
    lines.push(el("span", {}, `${status.line}：公示期内受理对本年度评价数据的异议。`, link));
  }
  if (status.carried) lines.push(el("span", { class: "ge-carried" }, status.carried));
  if (!lines.length) return;
  const banner = el("div", { class: `ge-run-banner ge-run-banner-${status.status}`, role: "status" }, ...lines);
  document.body.append(banner);
  document.body.classList.add("ge-has-banner");
  const height = () => document.documentElement.style.setProperty("--ge-banner", `${banner.offsetHeight}px`);
  height();
  new ResizeObserver(height).observe(banner);
}
