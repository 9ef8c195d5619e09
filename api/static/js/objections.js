// The objections page (/objections): the list of a year's objections with filters, one objection's
// details (evidence files, history) and its decision (reviewers, administrators), and the form a park
// committee (or an administrator) records an objection with, evidence files uploaded after it. The
// page's config is the JSON block #ob-config; every text is set as text (util.js el()).

import { RequestError, el, requestJSON } from "./util.js";

const MAX_FILES = 5;
const MAX_FILE_BYTES = 10 * 1024 * 1024;
const FILE_TYPES = { pdf: "application/pdf", png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg" };

const cfg = JSON.parse(document.getElementById("ob-config")?.textContent || "null");
const root = document.getElementById("ob-app");

function link(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const text = q.toString();
  return text ? `${path}?${text}` : path;
}

/** Replace a node's children, skipping the missing ones (null, undefined, false). */
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function itemUrl(template, id) {
  return template.replace("{id}", encodeURIComponent(id));
}

function fieldOf(name) {
  return cfg.fields.find((f) => f.name === name) || { name, label: name, table: "enterprises", kind: "text", unit: "" };
}

function withUnit(value, unit) {
  if (value === "" || value === null || value === undefined) return "（空）";
  return unit ? `${value} ${unit}` : String(value);
}

function badge(o) {
  return el("span", { class: `ob-badge ob-badge-${o.status}` }, o.status_label);
}

function outcome(o) {
  if (o.status === "accepted") return `更正值 ${withUnit(o.corrected_value, o.unit)}`;
  if (o.status === "rejected") return `理由：${o.decision_reason}`;
  return "—";
}

function sizeLabel(bytes) {
  return bytes >= 1024 * 1024 ? `${(bytes / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

function showMessage(box, message, ...extra) {
  fill(box, el("span", {}, message), ...extra);
  box.hidden = false;
}

/** Upload one evidence file as the request body (its own content type); the file's record, or an error. */
async function uploadEvidence(id, file) {
  const url = link(itemUrl(cfg.urls.evidence, id), { name: file.name });
  const ext = (file.name.split(".").pop() || "").toLowerCase();
  const fileType = file.type || FILE_TYPES[ext] || "application/octet-stream";
  return (await requestJSON(url, { method: "POST", file, fileType })).body;
}

/** Files the page refuses before sending (too many, too large): file → Chinese reason. */
function precheck(files, already) {
  const refused = new Map();
  files.forEach((f, i) => {
    if (already + i >= MAX_FILES) refused.set(f, `每条异议最多上传 ${MAX_FILES} 个证明材料，该文件未上传`);
    else if (f.size > MAX_FILE_BYTES) refused.set(f, `文件 ${sizeLabel(f.size)}，超过 10 MB，未上传`);
    else if (f.size === 0) refused.set(f, "文件为空，未上传");
  });
  return refused;
}

async function uploadAll(id, files, already = 0) {
  const refused = precheck(files, already);
  const results = [];
  for (const f of files) {
    if (refused.has(f)) {
      results.push({ file: f, ok: false, message: refused.get(f) });
      continue;
    }
    try {
      await uploadEvidence(id, f);
      results.push({ file: f, ok: true, message: "已上传" });
    } catch (err) {
      results.push({ file: f, ok: false, message: err.message });
    }
  }
  return results;
}

function uploadReport(results) {
  if (!results.length) return null;
  return el(
    "ul",
    { class: "ob-uploads" },
    results.map((r) =>
      el("li", { class: r.ok ? "ob-ok" : "ob-bad" }, el("b", {}, r.file.name), `：${r.ok ? r.message : `上传失败：${r.message}`}`),
    ),
  );
}

// --- the list --------------------------------------------------------------------------------------------
class ObjectionList {
  constructor(page) {
    this.page = page;
    this.status = "";
    this.park = "";
    this.items = [];
    this.count = el("p", { class: "ob-count", "aria-live": "polite" });
    this.body = el("div", { class: "ob-list-body" });
    const statusSelect = el(
      "select",
      { id: "ob-filter-status", onchange: (ev) => this.filter({ status: ev.target.value }) },
      el("option", { value: "" }, "全部状态"),
      cfg.statuses.map((s) => el("option", { value: s.key }, s.label)),
    );
    const filters = [el("label", { class: "ob-filter" }, "状态", statusSelect)];
    if (cfg.parks.length > 1) {
      const parkSelect = el(
        "select",
        { id: "ob-filter-park", onchange: (ev) => this.filter({ park: ev.target.value }) },
        el("option", { value: "" }, "全部园区"),
        cfg.parks.map((p) => el("option", { value: p }, p)),
      );
      filters.push(el("label", { class: "ob-filter" }, "园区", parkSelect));
    }
    this.node = el(
      "section",
      { class: "ob-list", "aria-labelledby": "ob-list-title" },
      el("h2", { id: "ob-list-title" }, `${cfg.year} 年度异议`),
      el("div", { class: "ob-filters" }, filters),
      this.count,
      this.body,
    );
  }

  filter(change) {
    Object.assign(this, change);
    this.page.updateDownloads();
    this.load();
  }

  async load() {
    try {
      const { body } = await requestJSON(link(cfg.urls.list, { year: cfg.year, park: this.park, status: this.status }));
      this.items = body;
      this.render();
    } catch (err) {
      fill(this.body, el("p", { class: "error", role: "alert" }, `异议列表载入失败：${err.message}`));
    }
  }

  render() {
    const open = this.items.filter((o) => o.status === "open").length;
    this.count.textContent = this.items.length ? `共 ${this.items.length} 条，其中待处理 ${open} 条。` : "";
    if (!this.items.length) {
      const filtered = this.status || this.park ? "没有符合筛选条件的异议。" : `${cfg.year} 年度暂无异议。`;
      fill(this.body, el("p", { class: "ob-empty" }, filtered));
      return;
    }
    const head = ["编号", "园区", "企业／宗地", "事项", "公示值", "主张值", "状态", "处理结果", "登记时间"];
    const rows = this.items.map((o) => {
      const who = [el("span", { class: "ob-name" }, o.enterprise || "（未注明企业）")];
      if (o.uscc) who.push(el("small", {}, o.uscc));
      if (o.parcel_id) who.push(el("small", {}, `宗地 ${o.parcel_id}`));
      const cells = [
        el("a", { class: "ob-open", href: `#id=${o.id}`, "aria-label": `查看第 ${o.id} 号异议` }, `第 ${o.id} 号`),
        o.park,
        who,
        o.field_label,
        withUnit(o.run_value, o.unit),
        withUnit(o.claimed_value, o.unit),
        badge(o),
        outcome(o),
        o.created_at_label,
      ];
      return el(
        "tr",
        { dataset: { id: String(o.id) }, class: this.page.detail.id === o.id ? "ob-selected" : null },
        cells.map((c, i) => el("td", { "data-label": head[i], class: i === 4 || i === 5 ? "num" : null }, el("div", {}, c))),
      );
    });
    fill(this.body,
      el(
        "table",
        { class: "ob-table" },
        el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { class: i === 4 || i === 5 ? "num" : null }, h)))),
        el("tbody", {}, rows),
      ),
    );
  }
}

// --- one objection ---------------------------------------------------------------------------------------
class ObjectionDetail {
  constructor(page) {
    this.page = page;
    this.id = null;
    this.node = el("section", { id: "ob-detail", class: "ob-detail ob-card", hidden: true, "aria-live": "polite" });
  }

  close() {
    this.id = null;
    this.node.hidden = true;
    fill(this.node);
    if (location.hash) history.pushState(null, "", location.pathname + location.search);
    this.page.list.render();
  }

  async open(id) {
    this.id = id;
    this.node.hidden = false;
    fill(this.node, el("p", {}, `正在载入第 ${id} 号异议……`));
    try {
      const [{ body: o }, { body: history }] = await Promise.all([
        requestJSON(itemUrl(cfg.urls.item, id)),
        requestJSON(itemUrl(cfg.urls.history, id)),
      ]);
      if (this.id !== id) return;
      this.render(o, history);
    } catch (err) {
      fill(this.node,
        el("p", { class: "error", role: "alert" }, `第 ${id} 号异议载入失败：${err.message}`),
        el("button", { type: "button", onclick: () => this.close() }, "关闭"),
      );
    }
    this.page.list.render();
  }

  render(o, history) {
    const f = fieldOf(o.field);
    const rows = [
      ["评价批次", `${o.year} 年度（${o.run_id}）`],
      ["园区", o.park],
      ["企业", o.enterprise || "（未注明）"],
      ["统一社会信用代码", o.uscc || "—"],
      ...(o.parcel_id ? [["宗地代码", o.parcel_id]] : []),
      ["异议事项", f.label],
      ["公示值", withUnit(o.run_value, o.unit)],
      ["主张值", withUnit(o.claimed_value, o.unit)],
      ["异议理由", o.reason],
      ["登记", `${o.created_by}，${o.created_at_label}`],
      ["处理结果", badge(o)],
    ];
    if (o.status === "accepted") rows.push(["更正值", withUnit(o.corrected_value, o.unit)]);
    if (o.decision_reason) rows.push([o.status === "rejected" ? "不采纳理由" : "处理意见", o.decision_reason]);
    if (o.decided_by) rows.push(["处理", `${o.decided_by}，${o.decided_at_label}`]);
    const files = o.files.length
      ? el(
          "ul",
          { class: "ob-files" },
          o.files.map((x) =>
            el(
              "li",
              {},
              el("a", { href: x.url, download: x.name }, x.name),
              el("small", {}, `（${sizeLabel(x.size)}，${x.uploaded_by} 于 ${x.uploaded_at_label} 上传）`),
            ),
          ),
        )
      : el("p", { class: "ob-muted" }, "无证明材料。");
    fill(this.node,
      el(
        "div",
        { class: "ob-detail-head" },
        el("h2", {}, `第 ${o.id} 号异议 `, badge(o)),
        el("button", { type: "button", class: "ob-close", onclick: () => this.close() }, "关闭"),
      ),
      el("dl", { class: "ob-fields" }, rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      el("h3", {}, "证明材料"),
      files,
      this.moreEvidence(o),
      this.decideForm(o),
      el("h3", {}, "处理记录"),
      el(
        "ol",
        { class: "ob-history" },
        history.map((h) => el("li", {}, el("span", { class: "ob-when" }, h.at_label), ` ${h.actor} ${h.action_label}`, historyNote(h))),
      ),
    );
  }

  /** More evidence files for an open objection (who may record it, while objections are taken). */
  moreEvidence(o) {
    if (o.status !== "open" || !cfg.user.canRecord || !cfg.recordParks.includes(o.park) || o.files.length >= MAX_FILES) {
      return null;
    }
    const input = el("input", { type: "file", multiple: true, accept: ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg", id: "ob-more-files" });
    const report = el("div", { class: "ob-result", hidden: true });
    const send = el("button", { type: "button" }, "上传");
    send.addEventListener("click", async () => {
      const chosen = [...input.files];
      if (!chosen.length) {
        showMessage(report, "请先选择文件。");
        return;
      }
      send.disabled = true;
      const results = await uploadAll(o.id, chosen, o.files.length);
      send.disabled = false;
      showMessage(report, "证明材料：", uploadReport(results));
      if (results.every((r) => r.ok)) {
        await this.open(o.id);
        this.page.list.load();
      }
    });
    return el(
      "div",
      { class: "ob-more" },
      el("label", { for: "ob-more-files" }, `补充证明材料（PDF、PNG 或 JPEG，每个不超过 10 MB，还可上传 ${MAX_FILES - o.files.length} 个）`),
      el("div", { class: "ob-row" }, input, send),
      report,
    );
  }

  decideForm(o) {
    if (!cfg.user.canDecide || o.status !== "open") return null;
    const value = el("input", { type: "text", id: "ob-corrected", value: o.claimed_value, autocomplete: "off" });
    const reason = el("textarea", { id: "ob-decision-reason", rows: 3, maxlength: 2000 });
    const error = el("div", { class: "ob-error", role: "alert", hidden: true });
    const accept = el("button", { type: "button", class: "primary" }, "采纳");
    const reject = el("button", { type: "button", class: "danger" }, "不采纳");
    const decide = async (decision) => {
      error.hidden = true;
      if (decision === "rejected" && !reason.value.trim()) {
        showMessage(error, "不采纳须填写理由。");
        reason.focus();
        return;
      }
      if (decision === "accepted" && !value.value.trim()) {
        showMessage(error, "采纳须填写更正值。");
        value.focus();
        return;
      }
      accept.disabled = reject.disabled = true;
      try {
        await requestJSON(itemUrl(cfg.urls.item, o.id), {
          method: "PATCH",
          body: {
            decision,
            corrected_value: decision === "accepted" ? value.value.trim() : "",
            reason: reason.value,
            version: o.version,
          },
        });
        await this.open(o.id);
        this.page.list.load();
      } catch (err) {
        accept.disabled = reject.disabled = false;
        const reload =
          err instanceof RequestError && err.status === 409
            ? el("button", { type: "button", class: "ob-reload", onclick: () => this.reload(o.id) }, "重新载入该异议")
            : null;
        showMessage(error, err.message, reload);
      }
    };
    accept.addEventListener("click", () => decide("accepted"));
    reject.addEventListener("click", () => decide("rejected"));
    return el(
      "fieldset",
      { class: "ob-decide" },
      el("legend", {}, "处理异议"),
      el("label", { for: "ob-corrected" }, `更正值（采纳时；默认为主张值，可修改${o.unit ? `，单位：${o.unit}` : ""}）`),
      value,
      el("label", { for: "ob-decision-reason" }, "处理意见（采纳时可选；不采纳时必须填写理由）"),
      reason,
      error,
      el("div", { class: "ob-actions" }, accept, reject),
    );
  }

  async reload(id) {
    await this.open(id);
    this.page.list.load();
  }
}

function historyNote(h) {
  const after = h.after || {};
  if (h.action === "objection.decide") {
    const label = { accepted: "采纳", rejected: "不采纳" }[after.status] || after.status;
    const value = after.status === "accepted" ? `，更正值 ${after.corrected_value}` : "";
    const why = after.decision_reason ? `，${after.decision_reason}` : "";
    return `：${label}${value}${why}`;
  }
  if (h.action === "objection.evidence") return `：${after.name || ""}`;
  if (h.action === "objection.add") return `：${after.field_label || ""} 主张值 ${after.claimed_value || ""}`;
  return "";
}

// --- recording an objection ------------------------------------------------------------------------------
class RecordForm {
  constructor(page) {
    this.page = page;
    this.subjects = new Map(); // park → the answer of /api/objections/subjects
    this.park = el("select", { id: "ob-park", required: true }, cfg.recordParks.map((p) => el("option", { value: p }, p)));
    this.search = el("input", {
      type: "search",
      id: "ob-search",
      placeholder: "输入企业名称或统一社会信用代码筛选",
      autocomplete: "off",
    });
    this.enterprise = el("select", { id: "ob-enterprise", required: true });
    this.shown = el("small", { class: "ob-muted", "aria-live": "polite" });
    this.field = el(
      "select",
      { id: "ob-field", required: true },
      cfg.fields.map((f) => el("option", { value: f.name }, f.table === "parcels" ? `${f.label}（宗地）` : f.label)),
    );
    this.parcel = el("select", { id: "ob-parcel" });
    this.parcelRow = el("div", { class: "ob-item", hidden: true }, el("label", { for: "ob-parcel" }, "宗地"), this.parcel);
    this.runValue = el("output", { id: "ob-run-value", for: "ob-enterprise ob-field ob-parcel", class: "ob-value" });
    this.claimed = el("input", { type: "text", id: "ob-claimed", required: true, autocomplete: "off", maxlength: 200 });
    this.unit = el("span", { class: "ob-unit" });
    this.reason = el("textarea", { id: "ob-reason", rows: 3, required: true, maxlength: 2000 });
    this.files = el("input", {
      type: "file",
      id: "ob-files",
      multiple: true,
      accept: ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg",
    });
    this.error = el("div", { class: "ob-error", role: "alert", hidden: true });
    this.result = el("div", { class: "ob-result", role: "status", hidden: true });
    this.submit = el("button", { type: "submit", class: "primary" }, "提交异议");
    this.form = el(
      "form",
      { id: "ob-form", class: "ob-form", novalidate: true },
      el("div", { class: "ob-item" }, el("label", { for: "ob-park" }, "园区"), this.park),
      el(
        "div",
        { class: "ob-item" },
        el("label", { for: "ob-search" }, "企业"),
        this.search,
        el("label", { for: "ob-enterprise", class: "ob-sr" }, "选择企业"),
        this.enterprise,
        this.shown,
      ),
      el("div", { class: "ob-item" }, el("label", { for: "ob-field" }, "异议事项"), this.field),
      this.parcelRow,
      el("div", { class: "ob-item" }, el("span", { class: "ob-label" }, "公示值"), this.runValue),
      el("div", { class: "ob-item" }, el("label", { for: "ob-claimed" }, "主张值"), el("div", { class: "ob-row" }, this.claimed, this.unit)),
      el("div", { class: "ob-item" }, el("label", { for: "ob-reason" }, "异议理由"), this.reason),
      el(
        "div",
        { class: "ob-item" },
        el("label", { for: "ob-files" }, `证明材料（可选；PDF、PNG 或 JPEG，每个不超过 10 MB，最多 ${MAX_FILES} 个）`),
        this.files,
      ),
      this.error,
      el(
        "div",
        { class: "ob-actions" },
        this.submit,
        el("button", { type: "button", onclick: () => this.hide() }, "关闭"),
      ),
      this.result,
    );
    this.node = el(
      "section",
      { id: "ob-record", class: "ob-card", hidden: true, "aria-labelledby": "ob-record-title" },
      el("h2", { id: "ob-record-title" }, "登记异议"),
      el(
        "p",
        { class: "ob-muted" },
        `对 ${cfg.run.statusLine} 的数据提出异议：选择企业和异议事项，核对公示值，填写主张值和理由。`,
      ),
      this.form,
    );
    this.park.addEventListener("change", () => this.loadPark());
    this.search.addEventListener("input", () => this.fillEnterprises());
    this.enterprise.addEventListener("change", () => this.update());
    this.field.addEventListener("change", () => this.update());
    this.parcel.addEventListener("change", () => this.showValue());
    this.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.send();
    });
  }

  async show() {
    this.node.hidden = false;
    if (!this.subjects.has(this.park.value)) await this.loadPark();
    this.node.scrollIntoView({ block: "start" });
    this.park.focus();
  }

  hide() {
    this.node.hidden = true;
  }

  get data() {
    return this.subjects.get(this.park.value) || null;
  }

  async loadPark() {
    const park = this.park.value;
    if (!this.subjects.has(park)) {
      fill(this.enterprise, el("option", { value: "" }, "正在载入……"));
      try {
        const { body } = await requestJSON(link(cfg.urls.subjects, { year: cfg.year, park }));
        this.subjects.set(park, body);
      } catch (err) {
        showMessage(this.error, `园区企业载入失败：${err.message}`);
        return;
      }
    }
    this.fillEnterprises();
  }

  fillEnterprises() {
    const data = this.data;
    if (!data) return;
    const query = this.search.value.trim().toLowerCase();
    const keep = this.enterprise.value;
    const hits = data.enterprises.filter((x) => !query || x.name.toLowerCase().includes(query) || x.uscc.toLowerCase().includes(query));
    fill(this.enterprise,
      ...(hits.length
        ? hits.map((x) => el("option", { value: x.uscc, selected: x.uscc === keep }, `${x.name}（${x.uscc}）`))
        : [el("option", { value: "" }, "没有符合的企业")]),
    );
    this.shown.textContent = `本园区 ${data.enterprises.length} 家企业${query ? `，符合筛选的 ${hits.length} 家` : ""}`;
    this.update();
  }

  update() {
    const data = this.data;
    const f = fieldOf(this.field.value);
    this.unit.textContent = f.unit;
    this.claimed.placeholder = f.kind === "number" ? `数值（${f.unit}）` : f.kind === "code" ? "18 位统一社会信用代码" : "文字";
    this.claimed.inputMode = f.kind === "number" ? "decimal" : "text";
    const parcelField = f.table === "parcels";
    this.parcelRow.hidden = !parcelField;
    if (parcelField && data) {
      const uscc = this.enterprise.value;
      const keep = this.parcel.value;
      const mine = data.parcels.filter((p) => p.holder_uscc === uscc || p.users.split(";").includes(uscc));
      fill(this.parcel,
        ...(mine.length
          ? mine.map((p) =>
              el(
                "option",
                { value: p.parcel_id, selected: p.parcel_id === keep },
                `${p.parcel_id}（${p.holder_uscc === uscc ? "权利人" : "使用"}，登记面积 ${withUnit(p.values.registered_area_m2, "平方米")}）`,
              ),
            )
          : [el("option", { value: "" }, "该企业在本园区没有宗地")]),
      );
    }
    this.showValue();
  }

  /** The figure the run holds for the chosen enterprise (or parcel) and field. */
  current() {
    const data = this.data;
    if (!data) return null;
    const f = fieldOf(this.field.value);
    if (f.table === "parcels") {
      const p = data.parcels.find((x) => x.parcel_id === this.parcel.value);
      return p ? { value: p.values[f.name] ?? "", unit: f.unit } : null;
    }
    const x = data.enterprises.find((e) => e.uscc === this.enterprise.value);
    return x ? { value: x.values[f.name] ?? "", unit: f.unit } : null;
  }

  showValue() {
    const now = this.current();
    this.runValue.textContent = now ? withUnit(now.value, now.unit) : "—（请先选择企业" + (this.parcelRow.hidden ? "）" : "和宗地）");
  }

  async send() {
    this.error.hidden = true;
    const f = fieldOf(this.field.value);
    const problems = [];
    if (!this.enterprise.value) problems.push("请选择企业");
    if (f.table === "parcels" && !this.parcel.value) problems.push("请选择宗地");
    if (!this.claimed.value.trim()) problems.push("请填写主张值");
    if (!this.reason.value.trim()) problems.push("请填写异议理由");
    if (problems.length) {
      showMessage(this.error, `${problems.join("；")}。`);
      return;
    }
    const files = [...this.files.files];
    const body = {
      year: cfg.year,
      uscc: this.enterprise.value,
      parcel_id: f.table === "parcels" ? this.parcel.value : "",
      field: f.name,
      claimed_value: this.claimed.value.trim(),
      reason: this.reason.value,
    };
    this.submit.disabled = true;
    this.result.hidden = true;
    let created;
    try {
      ({ body: created } = await requestJSON(cfg.urls.list, { method: "POST", body }));
    } catch (err) {
      this.submit.disabled = false;
      showMessage(this.error, `未能登记：${err.message}`);
      return;
    }
    const results = await uploadAll(created.id, files);
    this.submit.disabled = false;
    this.claimed.value = "";
    this.reason.value = "";
    this.files.value = "";
    const failed = results.filter((r) => !r.ok).length;
    showMessage(
      this.result,
      `已登记第 ${created.id} 号异议：${created.enterprise} · ${created.field_label}（公示值 ${withUnit(created.run_value, created.unit)}，主张值 ${withUnit(created.claimed_value, created.unit)}）。`,
      failed ? el("span", { class: "ob-bad" }, ` ${failed} 个证明材料未上传，可在异议详情中补充。`) : null,
      uploadReport(results),
      el("a", { href: `#id=${created.id}` }, "查看该异议"),
    );
    this.result.classList.toggle("ob-partial", failed > 0);
    this.page.list.load();
  }
}

// --- the page --------------------------------------------------------------------------------------------
class ObjectionsPage {
  constructor() {
    this.detail = new ObjectionDetail(this);
    this.list = new ObjectionList(this);
    this.form = cfg.user.canRecord ? new RecordForm(this) : null;
    this.register = el("a", { class: "button", id: "ob-register" }, "下载异议处理登记表（Excel）");
    const tools = [this.register];
    if (cfg.user.mayCorrections) {
      tools.push(el("a", { class: "button secondary", href: link(cfg.urls.corrections, { year: cfg.year }) }, "下载更正表（corrections.csv）"));
    }
    if (this.form) {
      tools.unshift(el("button", { type: "button", class: "primary", id: "ob-new", onclick: () => this.form.show() }, "登记异议"));
    }
    // why there is no 登记异议 button: the banner says it when the year takes no objections
    const text = cfg.user.canRecord || !cfg.accepting ? "" : recordHint();
    const hint = text ? el("p", { class: "ob-muted ob-hint" }, text) : null;
    this.updateDownloads();
    fill(root, el("div", { class: "ob-toolbar" }, tools), hint, this.form?.node, this.detail.node, this.list.node);
  }

  updateDownloads() {
    this.register.href = link(cfg.urls.register, { year: cfg.year, park: this.list?.park, format: "xlsx" });
  }

  async start() {
    window.addEventListener("hashchange", () => this.follow());
    await this.list.load();
    this.follow();
  }

  follow() {
    const m = /^#id=(\d+)$/.exec(location.hash);
    if (!m) return;
    this.detail.open(Number(m[1])).then(() => this.detail.node.scrollIntoView({ block: "start" }));
  }
}

function recordHint() {
  if (cfg.user.role === "reviewer") return "复核人员处理异议：打开一条待处理的异议，采纳（填写更正值）或不采纳（填写理由）。异议由园区管委会代企业登记。";
  return "";
}

if (cfg && root) {
  const page = new ObjectionsPage();
  page.start();
}
