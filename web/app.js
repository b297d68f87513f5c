// Shared code of the gpuguard pages (webcam.html, identities.html,
// dashboard.html): the header with its navigation and API key field, the one
// fetch wrapper that sends the key and turns error bodies
// ({"error": {code, name, message}}) into exceptions, and DOM helpers that
// only ever set text, so names typed by users are never parsed as HTML.
"use strict";

const GG = (() => {
  // The key lives in sessionStorage, like the dashboard at / does
  // (docs/SECURITY.md, "The dashboard"): it survives moving between the
  // pages of one tab, is gone when the tab closes, and never travels as a
  // cookie.
  const KEY_ITEM = "gpuguard-api-key";
  const $ = (id) => document.getElementById(id);

  // el("td", {className: "x", onclick: fn}, "text", childNode, ...): children
  // that are strings become text nodes; nothing is ever set as HTML.
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "className" || k === "value" || k === "type" || k === "disabled" ||
               k === "checked" || k === "title" || k === "id" || k === "name")
        e[k] = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of kids.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }
  const text = (e, s) => { e.textContent = s; };

  function getKey() {
    return sessionStorage.getItem(KEY_ITEM) || "";
  }
  function setKey(k) {
    k = (k || "").trim();
    if (k) sessionStorage.setItem(KEY_ITEM, k);
    else sessionStorage.removeItem(KEY_ITEM);
  }

  // An error answer of the API: status, the body's error name and message,
  // and the whole body (422 refusals carry "faces" and "reasons").
  class ApiError extends Error {
    constructor(status, body, retryAfter) {
      const e = (body && body.error) || {};
      super(e.message || "HTTP " + status);
      this.status = status;
      this.errName = e.name || "http_" + status;
      this.body = body || {};
      this.retryAfter = retryAfter ? Number(retryAfter) : 0;
    }
  }

  // api("POST", "/api/identities", {json: {name}}) or {body: blob, type}:
  // the parsed JSON answer, or throws ApiError (or a TypeError when the
  // server cannot be reached).
  async function api(method, path, opt = {}) {
    const headers = {};
    const key = getKey();
    if (key) headers["Authorization"] = "Bearer " + key;
    let body;
    if (opt.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opt.json);
    } else if (opt.body !== undefined) {
      headers["Content-Type"] = opt.type || opt.body.type || "application/octet-stream";
      body = opt.body;
    }
    const r = await fetch(path, { method, headers, body, cache: "no-store" });
    let data = null;
    try { data = await r.json(); } catch (_) { data = null; }
    if (!r.ok) throw new ApiError(r.status, data, r.headers.get("Retry-After"));
    return data;
  }

  // One line for an error: "401 unauthorized: the API key ... is wrong".
  function errText(e) {
    if (e instanceof ApiError) return e.status + " " + e.errName + ": " + e.message;
    if (e instanceof TypeError) return "cannot reach the server: " + e.message;
    return (e && e.message) || String(e);
  }

  const fmtBytes = (b) => {
    if (!b) return "0 B";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return b.toFixed(i ? 1 : 0) + " " + u[i];
  };
  const fmtTime = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "–");
  const fmtScore = (s) => (typeof s === "number" ? s.toFixed(2) : "–");

  // Fills <header id="top"> with the title, the links to the pages (the
  // current one marked) and the API key field every page shares.
  function header(current) {
    const h = $("top");
    const pages = [["/", "Home"], ["/webcam", "Webcam"], ["/identities", "Identities"], ["/dashboard", "Dashboard"], ["/generate", "Generate"]];
    const nav = el("nav", {}, pages.map(([href, label]) =>
      el("a", { href, "aria-current": href === current ? "page" : null }, label)));
    const key = el("input", { id: "apikey", type: "password", autocomplete: "off",
      placeholder: "--api-key of the server", value: getKey() });
    key.addEventListener("change", () => setKey(key.value));
    key.addEventListener("input", () => setKey(key.value));
    h.replaceChildren(el("h1", {}, "gpuguard"), nav,
      el("label", { className: "keybox" }, "API key ", key));
  }

  // A per-tab stream id for /api/recognize?stream=: kept across reloads of
  // the tab so the server's tracks continue.
  function streamId() {
    let s = sessionStorage.getItem("gpuguard-stream");
    if (!s) {
      const r = new Uint8Array(6);
      crypto.getRandomValues(r);
      s = "web-" + Array.from(r, (b) => b.toString(16).padStart(2, "0")).join("");
      sessionStorage.setItem("gpuguard-stream", s);
    }
    return s;
  }

  // The identity for `name`, created when absent: {id, name, created}.
  async function identityFor(name) {
    try {
      const d = await api("POST", "/api/identities", { json: { name } });
      return { id: d.id, name: d.name, created: true };
    } catch (e) {
      if (e instanceof ApiError && e.status === 409 && e.body.id) return { id: e.body.id, name, created: false };
      throw e;
    }
  }

  // What a refused enrollment says: the reason, plus the quality reasons.
  function refusalText(e) {
    let s = errText(e);
    const reasons = e.body && e.body.reasons;
    if (reasons && reasons.length) s += " (" + reasons.join(", ") + ")";
    return s;
  }

  return { $, el, text, getKey, setKey, ApiError, api, errText, fmtBytes, fmtTime, fmtScore,
           header, streamId, identityFor, refusalText };
})();
