// Small helpers shared by the map page's modules: DOM building (text is always set as text),
// JSON requests with the session cookie, number and label formatting.

/** Escape text for HTML (only for the few places that build markup from strings). */
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/**
 * Create an element: el("button", {class: "x", type: "button", onclick: fn}, "text", child…).
 * Strings become text nodes, never markup; null/false children are skipped.
 */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Two decimals with thousands separators ("" for a missing figure), as the popups show them. */
export function num2(value) {
  if (value === null || value === undefined || value === "") return "";
  const x = Number(value);
  return Number.isFinite(x) ? x.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : "";
}

/** An error a request ended in, with the service's Chinese message and what came with it. */
export class RequestError extends Error {
  constructor(status, body) {
    super((body && typeof body.detail === "string" && body.detail) || RequestError.fallback(status));
    this.status = status;
    this.body = body || {};
  }
  static fallback(status) {
    if (status === 401) return "登录已过期，请重新登录后再操作";
    if (status === 403) return "没有权限进行此操作";
    if (status === 0) return "网络不通，请检查连接后重试";
    return `服务暂时无法完成请求（${status}），请稍后重试`;
  }
}

/**
 * A JSON request with the session cookie. Returns {status, etag, body}; 304 has no body. ``file`` (a File
 * or Blob, with ``fileType``) is sent as the request's body instead of ``body`` as JSON.
 * Throws RequestError for 4xx/5xx (except 304) and for a network failure.
 */
export async function requestJSON(url, { method = "GET", body, etag, file, fileType } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (file !== undefined) headers["Content-Type"] = fileType || "application/octet-stream";
  if (etag) headers["If-None-Match"] = etag;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: file !== undefined ? file : body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {
    throw new RequestError(0, null);
  }
  if (response.status === 304) return { status: 304, etag: response.headers.get("ETag"), body: null };
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) throw new RequestError(response.status, data);
  return { status: response.status, etag: response.headers.get("ETag"), body: data };
}

/** Whether the page is laid out for a phone (the same breakpoint as map.css). */
export const phone = window.matchMedia("(max-width: 700px)");

/** Ray-casting point-in-polygon over a GeoJSON Polygon or MultiPolygon (lon/lat). */
export function containsPoint(geometry, lon, lat) {
  if (!geometry) return false;
  const polygons = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.type === "MultiPolygon" ? geometry.coordinates : [];
  return polygons.some((rings) => {
    let inside = false;
    for (const ring of rings) {
      for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        const [xi, yi] = ring[i];
        const [xj, yj] = ring[j];
        if (yi > lat !== yj > lat && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside;
      }
    }
    return inside;
  });
}

/** A short message at the bottom of the screen (role=status, so screen readers hear it too). */
export function toast(message, kind = "info") {
  let box = document.getElementById("ge-toast");
  if (!box) {
    box = el("div", { id: "ge-toast", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = el("div", { class: `ge-toast ge-toast-${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 9000 : 4000);
}
