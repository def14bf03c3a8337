/* api.js: the console's only door to steward: the public REST API
   (docs/api.md) with the session cookie, and the CSRF token on every change.
   Also el(), the one way the console builds DOM: text always goes in as
   text (textContent), never as HTML, so device and profile names that
   contain markup stay inert. */
"use strict";

const Api = {
  csrf: "",
  me: null,
  async call(method, path, body) {
    const opts = { method, headers: { "X-Requested-With": "steward-console" }, credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD") opts.headers["X-CSRF-Token"] = Api.csrf;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    let data = null;
    const text = await r.text();
    if (text) { try { data = JSON.parse(text); } catch (e) { data = { raw: text }; } }
    if (r.status === 401 && path !== "/api/v1/session") {
      window.dispatchEvent(new Event("steward-signed-out"));
    }
    if (!r.ok) {
      const msg = data && data.error ? data.error.message : "HTTP " + r.status;
      const err = new Error(msg);
      err.status = r.status;
      err.data = data;
      throw err;
    }
    return data;
  },
  get(path) { return Api.call("GET", path); },
  post(path, body) { return Api.call("POST", path, body === undefined ? {} : body); },
  patch(path, body) { return Api.call("PATCH", path, body); },
  del(path) { return Api.call("DELETE", path); },
  can(role) {
    const order = { viewer: 1, operator: 2, admin: 3 };
    return Api.me && (order[Api.me.role] || 0) >= order[role];
  },
};

/* el("tag.class", {attr: value, onclick: fn}, children…): children are
   nodes or strings (added as text). */
function el(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const n = document.createElement(tag || "div");
  if (classes.length) n.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else if (k === "text") n.textContent = v;
    else n.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

function fmtTime(s) {
  if (!s) return "—";
  const d = new Date(s);
  if (isNaN(d)) return String(s);
  const diff = (Date.now() - d.getTime()) / 1000;
  const rel = Math.abs(diff) < 60 ? "just now" : Math.abs(diff) < 3600 ? Math.round(diff / 60) + " min ago"
    : Math.abs(diff) < 86400 ? Math.round(diff / 3600) + " h ago" : Math.round(diff / 86400) + " d ago";
  return diff < 0 ? d.toISOString().slice(0, 16).replace("T", " ") : rel;
}

function toast(msg, bad) {
  const t = document.getElementById("toast");
  t.textContent = msg;
  t.className = "toast" + (bad ? " bad" : "");
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}
