// A parcel's popup (a Leaflet popup on a desk, a bottom sheet on a phone): its figures, its flags
// with their review state, and for reviewers the buttons 确认 / 排除 / 待核查 / 撤回 and
// "本宗地全部确认". The same flag block is used by the review panel.

import { stateSwatch } from "./layers.js";
import { el, phone, toast } from "./util.js";

const ACTIONS = [
  ["confirmed", "确认"],
  ["dismissed", "排除"],
  ["site_visit", "待核查"],
];

/** The figures of a parcel or block as a table; cells arrive escaped by the service. */
export function figuresTable(fields, cells) {
  const table = el("table", { class: "ge-pop-table" });
  fields.forEach(([key, label, kind, optional], i) => {
    const text = cells[i];
    if (!text && optional) return;
    const td = el("td", { dataset: { field: key } });
    if (!text) td.textContent = "—";
    else if (kind === "lines") td.innerHTML = text.split("\n").map((line) => `<div>${line}</div>`).join("");
    else td.innerHTML = text; // escaped by the service (geo_eval.maps.popup_cells)
    table.append(el("tr", {}, el("th", {}, label), td));
  });
  return table;
}

/** One flag: its rule, short reason, review state and (for reviewers) the decision buttons. */
export class FlagBlock {
  constructor(app, parcelId) {
    this.app = app;
    this.parcelId = parcelId;
    this.node = el("section", { class: "ge-flags", dataset: { parcel: parcelId } });
    this.comment = null;
    this.render();
  }

  get flags() {
    return this.app.reviews.byParcel.get(this.parcelId) || [];
  }

  render() {
    const { reviews, cfg } = this.app;
    const flags = this.flags;
    const kept = this.comment ? this.comment.value : "";
    const focused = Boolean(this.comment) && document.activeElement === this.comment;
    this.node.replaceChildren();
    if (!flags.length) return;
    this.node.append(el("h4", {}, `标记（${flags.length} 项）`));
    const list = el("ul", { class: "ge-flag-list" });
    for (const f of flags) list.append(this.flagItem(f));
    this.node.append(list);
    if (reviews.canReview) {
      this.comment = el("textarea", {
        class: "ge-comment",
        rows: 2,
        maxlength: 2000,
        placeholder: "意见（可选）；排除时必填理由",
        "aria-label": "复核意见",
      });
      this.comment.value = kept;
      this.node.append(this.comment);
      if (focused) queueMicrotask(() => this.comment?.focus());
      const pending = flags.filter((f) => reviews.state(f.id).status !== "confirmed");
      if (flags.length > 1) {
        this.node.append(
          el(
            "button",
            { type: "button", class: "ge-btn ge-btn-all", disabled: !pending.length, onclick: () => this.decide(pending.map((f) => f.id), "confirmed") },
            "本宗地全部确认",
          ),
        );
      }
    } else if (reviews.service) {
      this.node.append(el("p", { class: "ge-note" }, "复核状态只读：复核由自然资源局复核人员进行。"));
    }
    this.node.append(el("div", { class: "ge-flag-error", role: "alert" }));
    void cfg;
    this.node.dispatchEvent(new CustomEvent("ge-render", { bubbles: true }));
  }

  flagItem(f) {
    const { reviews, cfg } = this.app;
    const st = reviews.state(f.id);
    const item = el("li", { class: `ge-flag ge-state-${st.status}`, dataset: { flag: f.id } });
    item.append(
      el(
        "div",
        { class: "ge-flag-head" },
        stateSwatch(cfg.flagStyles[st.status], 14),
        el("span", { class: `ge-badge ge-badge-${st.status}` }, cfg.statusLabels[st.status]),
        el("b", {}, f.rule),
        f.severity ? el("span", { class: `ge-sev ge-sev-${f.severity}` }, f.severity) : null,
      ),
      el("div", { class: "ge-flag-reason" }, f.reason),
    );
    if (st.version > 0 && (st.by || st.comment)) {
      const who = [st.by, st.at].filter(Boolean).join(" · ");
      item.append(
        el(
          "div",
          { class: "ge-flag-review" },
          who,
          st.comment ? el("div", {}, `意见：${st.comment}`) : null,
          st.carried ? el("div", { class: "ge-carried" }, st.carried) : null,
        ),
      );
    }
    if (reviews.canReview) {
      const buttons = el("div", { class: "ge-actions" });
      for (const [status, label] of ACTIONS) {
        buttons.append(
          el(
            "button",
            {
              type: "button",
              class: `ge-btn ge-btn-${status}`,
              "aria-pressed": st.status === status ? "true" : "false",
              disabled: st.status === status,
              onclick: () => this.decide([f.id], status),
            },
            label,
          ),
        );
      }
      if (st.status !== "pending") {
        buttons.append(el("button", { type: "button", class: "ge-btn ge-btn-undo", onclick: () => this.decide([f.id], "pending") }, "撤回"));
      }
      item.append(buttons);
    }
    return item;
  }

  showError(message, reloadIds = []) {
    const box = this.node.querySelector(".ge-flag-error");
    if (!box) return;
    box.replaceChildren(el("div", {}, message));
    if (reloadIds.length) {
      box.append(
        el(
          "button",
          {
            type: "button",
            class: "ge-btn ge-btn-reload",
            onclick: async () => {
              for (const id of reloadIds) await this.app.reviews.reload(id);
              toast("已载入该标记的最新复核状态");
            },
          },
          "重新载入该标记",
        ),
      );
    }
  }

  async decide(ids, status) {
    const comment = this.comment ? this.comment.value.trim() : "";
    if (status === "dismissed" && !comment) {
      this.showError("排除须填写理由：请在“意见”中写明排除的理由后再点“排除”。");
      this.comment?.focus();
      return;
    }
    for (const b of this.node.querySelectorAll("button")) b.disabled = true;
    let result;
    try {
      result = await this.app.reviews.decide(ids, status, comment);
    } catch (err) {
      this.render();
      this.showError(err.message);
      return;
    }
    const label = status === "pending" ? "已撤回为待复核" : `已${this.app.cfg.statusLabels[status]}`;
    if (this.comment && result.ok.length) this.comment.value = "";
    this.render();
    if (result.ok.length) toast(ids.length > 1 ? `${label} ${result.ok.length} 项` : label);
    const problems = [...result.stale.map((s) => s.message), ...result.errors.map((e) => e.message)];
    if (problems.length) this.showError(problems.join("\n"), result.stale.map((s) => s.id));
  }
}

/** The popup of the map: one parcel (figures + flags) or one renewal block at a time. */
export class Popup {
  constructor(app) {
    this.app = app;
    this.current = null; // {parcelId, block}
    this.sheet = el("div", { class: "ge-sheet", role: "dialog", "aria-label": "宗地信息", hidden: true });
    document.body.append(this.sheet);
    app.map.on("popupclose", () => {
      if (!phone.matches) this.closed();
    });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.close();
    });
    document.addEventListener("ge-render", () => {
      if (this.leaflet && this.leaflet.isOpen()) this.leaflet.update();
    });
    app.reviews.addEventListener("change", (e) => {
      if (this.current?.flagBlock && e.detail.parcels.has(this.current.parcelId)) this.current.flagBlock.render();
    });
  }

  content(title, body) {
    const close = el("button", { type: "button", class: "ge-sheet-close", "aria-label": "关闭", onclick: () => this.close() }, "×");
    const wrap = el("div", { class: "ge-pop" }, el("div", { class: "ge-pop-title" }, el("h3", {}, title), phone.matches ? close : null), body);
    return wrap;
  }

  showParcel(info, latlng) {
    const { cfg } = this.app;
    const flagBlock = new FlagBlock(this.app, info.id);
    const body = el("div", {}, figuresTable(cfg.fields, info.cells));
    const blockId = info.cells[cfg.fields.findIndex((f) => f[0] === "block_id")];
    const block = blockId && cfg.blocks ? cfg.blocks.features.find((f) => f.properties.id === blockId) : null;
    if (block) {
      body.append(
        el("button", { type: "button", class: "ge-link", onclick: () => this.showBlock(block, latlng) }, `查看连片改造区块 ${block.properties.id}`),
      );
    }
    body.append(flagBlock.node);
    this.show(this.content(`宗地 ${info.id}`, body), latlng, { parcelId: info.id, flagBlock }, info.geometry);
  }

  showBlock(feature, latlng) {
    const body = figuresTable(this.app.cfg.blockFields, feature.properties.v);
    this.show(this.content(`连片改造区块 ${feature.properties.id}`, body), latlng, { block: feature.properties.id }, feature.geometry);
  }

  show(node, latlng, current, outline) {
    this.close(); // the previous one, if any (Leaflet would close it on opening this one)
    this.current = current;
    this.app.layers.showOutline(outline || null);
    this.app.map.getContainer().classList.add("ge-popup-open");
    if (phone.matches) {
      this.app.map.closePopup();
      this.sheet.replaceChildren(node);
      this.sheet.hidden = false;
      document.body.style.setProperty("--ge-sheet", `${this.sheet.offsetHeight}px`);
      this.panAbove(latlng);
    } else {
      this.sheet.hidden = true;
      const maxHeight = Math.max(220, Math.min(520, this.app.map.getSize().y - 120));
      this.leaflet = L.popup({
        maxWidth: 380,
        minWidth: 300,
        maxHeight,
        autoPan: true,
        autoPanPaddingTopLeft: L.point(60, 70),
        autoPanPaddingBottomRight: L.point(30, 30),
        closeOnClick: false,
        className: "ge-leaflet-popup",
      })
        .setLatLng(latlng)
        .setContent(node)
        .openOn(this.app.map);
    }
    this.app.onPopup(this.current);
  }

  /** Keep the clicked point visible above the bottom sheet. */
  panAbove(latlng) {
    const map = this.app.map;
    const size = map.getSize();
    const free = size.y - this.sheet.offsetHeight;
    const at = map.latLngToContainerPoint(latlng);
    const target = L.point(size.x / 2, Math.max(60, free / 2));
    map.panBy(at.subtract(target), { animate: false });
  }

  close() {
    this.app.map.closePopup();
    this.closed();
  }

  closed() {
    if (!this.current) return;
    this.sheet.hidden = true;
    this.sheet.replaceChildren();
    document.body.style.setProperty("--ge-sheet", "0px");
    this.current = null;
    this.app.map.getContainer().classList.remove("ge-popup-open");
    this.app.layers.showOutline(null);
    this.app.onPopup(null);
  }
}
