/* app.js: the console's pages, routed by the URL hash (#/devices, #/device/ID…).
   Every page reads and changes steward through Api (api.js), i.e. the same
   REST API stewardctl uses; nothing here is private to the console. */
"use strict";

const $ = (id) => document.getElementById(id);
const main = () => $("main");
const enc = encodeURIComponent;

/* ---- sign-in and the shell ------------------------------------------------ */

function showSignin() {
  $("shell").hidden = true;
  $("signin").hidden = false;
  $("signin-user").focus();
}

async function startShell() {
  $("signin").hidden = true;
  $("shell").hidden = false;
  $("who").textContent = `${Api.me.user || Api.me.actor} · ${Api.me.role}`;
  for (const a of document.querySelectorAll("#nav a[data-role]")) a.hidden = !Api.can(a.dataset.role);
  route();
}

async function boot() {
  try {
    const me = await Api.get("/api/v1/session");
    Api.me = me;
    Api.csrf = me.csrf || "";
    startShell();
  } catch (e) {
    showSignin();
  }
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("signin-error").textContent = "";
  $("signin-submit").disabled = true;
  try {
    const r = await Api.post("/api/v1/session", { user: $("signin-user").value, password: $("signin-password").value });
    Api.csrf = r.csrf;
    Api.me = { user: r.user, role: r.role, actor: "user:" + r.user };
    $("signin-password").value = "";
    startShell();
  } catch (e) {
    $("signin-error").textContent = e.status === 429 ? "Too many failed attempts: this account is locked for a while." : e.message;
  } finally {
    $("signin-submit").disabled = false;
  }
});

$("signout").addEventListener("click", async () => {
  try { await Api.del("/api/v1/session"); } catch (e) { /* signed out anyway */ }
  Api.me = null;
  Api.csrf = "";
  showSignin();
});
$("menu").addEventListener("click", () => $("nav").classList.toggle("open"));
window.addEventListener("steward-signed-out", () => { if (Api.me) { Api.me = null; showSignin(); } });
window.addEventListener("hashchange", () => { $("nav").classList.remove("open"); if (Api.me) route(); });

const pages = {};
/* Pages of one item light up their list's menu entry. */
const PARENT_PAGE = { device: "devices", profile: "profiles", group: "groups", policy: "compliance" };
function route() {
  const parts = (location.hash.replace(/^#\/?/, "") || "").split("/").map(decodeURIComponent);
  const name = parts[0] || "dashboard";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === name || (PARENT_PAGE[name] || "") === a.dataset.page);
  const page = pages[name] || pages.dashboard;
  main().replaceChildren(el("p.muted", {}, "Loading…"));
  page(...parts.slice(1)).catch((e) => main().replaceChildren(el("p.error", {}, "Could not load this page: " + e.message)));
}

/* ---- shared bits ---------------------------------------------------------- */

function table(columns, rows, onclick) {
  const head = el("tr", {}, columns.map((c) => el("th", {}, c.label)));
  const body = rows.map((r) => el("tr" + (onclick ? ".click" : ""), onclick ? { onclick: () => onclick(r) } : {},
    columns.map((c) => { const v = c.value(r); return el("td" + (c.wrap ? ".wrap" : ""), {}, v instanceof Node ? v : (v === null || v === undefined || v === "" ? "—" : String(v))); })));
  return el("div.table-wrap", {}, el("table", {}, el("thead", {}, head), el("tbody", {}, body.length ? body : el("tr", {}, el("td.muted", { colspan: columns.length }, "Nothing here yet.")))));
}

function pill(text) {
  const cls = /^(enrolled|Acknowledged|issued|delivered|true|installed|compliant)$/.test(text) ? ".ok"
    : /^(Error|CommandFormatError|failed|revoked|rejected|checked_out|locked|error|noncompliant|lost)$/.test(text) ? ".bad"
    : /^(Pending|NotNow|pending|authenticated|installing|removing|unknown)$/.test(text) ? ".warn" : "";
  return el("span.pill" + cls, {}, text);
}

/* A confirmation dialog; with typed, the user must type that exact text. */
function confirmDialog(title, message, action, typed) {
  return new Promise((resolve) => {
    const input = typed ? el("input", { id: "confirm-input", autocomplete: "off", placeholder: typed }) : null;
    const ok = el("button.danger", { id: "confirm-ok", disabled: !!typed }, action);
    const back = el("div.modal-back", {}, el("div.modal", { role: "dialog", "aria-label": title },
      el("h2", {}, title), el("p", {}, message),
      typed ? el("label", {}, `Type ${typed} to confirm`, input) : null,
      el("div.actions", {}, ok, el("button.secondary", { id: "confirm-cancel", onclick: () => { back.remove(); resolve(false); } }, "Cancel"))));
    if (input) input.addEventListener("input", () => { ok.disabled = input.value !== typed; });
    ok.addEventListener("click", () => { back.remove(); resolve(true); });
    document.body.append(back);
    (input || ok).focus();
  });
}

/* A dialog with inputs: fields [{name, label, placeholder}]; resolves to
   {name: value} on submit, null on cancel. */
function formDialog(title, message, fields, action, danger) {
  return new Promise((resolve) => {
    const inputs = fields.map((f) => el("input", { id: "dialog-" + f.name, placeholder: f.placeholder || "", autocomplete: "off" }));
    const ok = el("button" + (danger ? ".danger" : ""), { id: "dialog-ok", type: "submit" }, action);
    const back = el("div.modal-back", {}, el("form.modal", { role: "dialog", "aria-label": title,
      onsubmit: (ev) => { ev.preventDefault(); back.remove(); resolve(Object.fromEntries(fields.map((f, i) => [f.name, inputs[i].value]))); } },
      el("h2", {}, title), el("p", {}, message),
      fields.map((f, i) => el("label", {}, f.label, inputs[i])),
      el("div.actions", {}, ok, el("button.secondary", { id: "dialog-cancel", type: "button", onclick: () => { back.remove(); resolve(null); } }, "Cancel"))));
    document.body.append(back);
    (inputs[0] || ok).focus();
  });
}

/* Parses a textarea's JSON; throws with the field's name in the message. */
function parseJson(text, what) {
  try { return JSON.parse(text); } catch (e) { throw new Error(`${what}: not valid JSON (${e.message})`); }
}

/* A figure card: the number and what it counts. */
function figure(n, label, cls, href) {
  const card = el("div.card.figure" + (cls ? "." + cls : ""), {}, el("div.n", {}, n === null || n === undefined ? "—" : String(n)), el("div.l", {}, label));
  return href ? el("a.figure-link", { href }, card) : card;
}

function pager(offset, limit, total, go) {
  return el("div.pager", {},
    el("button.secondary", { disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) }, "Previous"),
    el("span.muted", {}, total === undefined ? `from ${offset + 1}` : `${Math.min(total, offset + 1)}–${Math.min(total, offset + limit)} of ${total}`),
    el("button.secondary", { disabled: total !== undefined ? offset + limit >= total : false, onclick: () => go(offset + limit) }, "Next"));
}

/* ---- dashboard -------------------------------------------------------------- */

pages.dashboard = async () => {
  const s = await Api.get("/api/v1/stats");
  /* Per-policy counts for the compliance chart (only when policies exist). */
  const byPolicy = s.compliance && s.compliance.policies
    ? ((await Api.get("/api/v1/compliance?limit=1")).policies || []).filter((p) => p.enabled).slice(0, 24) : [];
  const fig = (n, label, cls) => figure(n, label, cls);
  const hours = s.checkins_by_hour.map((_, i) => { const d = new Date(Date.now() - (23 - i) * 3600e3); return String(d.getHours()).padStart(2, "0") + ":00"; });
  main().replaceChildren(
    el("h1", {}, "Dashboard"),
    el("div.grid", { id: "figures" },
      fig(s.devices.enrolled, "enrolled devices"),
      fig(s.devices.seen_24h, "seen in 24 hours"),
      fig(s.commands.pending, "pending commands", s.commands.pending ? "warn" : ""),
      fig(s.commands.failed_24h, "failed commands, 24 h", s.commands.failed_24h ? "bad" : ""),
      fig(s.push_failures_24h, "push failures, 24 h"),
      fig(s.certs.expiring, `certificates expiring in ${s.certs.within_days} days`, s.certs.expiring ? "warn" : ""),
      s.noncompliant === null || s.noncompliant === undefined ? null
        : figure(s.noncompliant, "out of compliance", s.noncompliant ? "bad" : "", "#/compliance")),
    el("div.charts", {},
      el("div.card.chart", {}, el("h2", {}, "Check-ins, last 24 hours"), barChart(s.checkins_by_hour, hours, "check-ins per hour")),
      el("div.card.chart", {}, el("h2", {}, "OS versions"), donutChart(s.os_versions.map((o) => ({ label: o.version, value: o.count })), "OS versions"))),
    s.compliance && s.compliance.policies ? el("div.charts", { id: "compliance-charts" },
      el("div.card.chart", {}, el("h2", {}, "Non-compliant devices by policy"),
        barChart(byPolicy.map((p) => p.noncompliant), byPolicy.map((p) => p.name), "non-compliant devices per policy")),
      el("div.card.chart", { id: "compliance-chart" }, el("h2", {}, el("a", { href: "#/compliance" }, "Compliance")),
        donutChart([
          { label: "compliant", value: Math.max(0, s.devices.enrolled - s.compliance.noncompliant - s.compliance.unknown) },
          { label: "non-compliant", value: s.compliance.noncompliant },
          { label: "unknown", value: s.compliance.unknown }], "devices by compliance", ["#16a34a", "#dc2626", "#d97706"]))) : null,
    el("p.muted", {}, `Figures as of ${new Date(s.generated_at).toLocaleString()}; ${s.devices.checked_out} checked out, ${s.devices.total} in total.`));
};

/* ---- devices ------------------------------------------------------------------ */

pages.devices = async () => {
  const q = new URLSearchParams(location.hash.split("?")[1] || "");
  const search = el("input", { id: "device-search", type: "search", placeholder: "name, serial or UDID", value: q.get("search") || "" });
  const status = el("select", { id: "device-status" }, ["", "enrolled", "authenticated", "checked_out"].map((v) => el("option", { value: v, selected: (q.get("status") || "") === v }, v || "any")));
  const os = el("input", { id: "device-os", placeholder: "e.g. 18.1", value: q.get("os") || "", size: 8 });
  const results = el("div", { id: "device-results" });
  let offset = 0;
  const limit = 50;
  async function load() {
    const p = new URLSearchParams({ limit, offset });
    if (search.value) p.set("search", search.value);
    if (status.value) p.set("status", status.value);
    if (os.value) p.set("os", os.value);
    try {
      const r = await Api.get("/api/v1/devices?" + p);
      results.replaceChildren(
        table([
          { label: "Name", value: (d) => d.device_name || d.id },
          { label: "Serial", value: (d) => d.serial_number },
          { label: "Model", value: (d) => d.product_name || d.model_name },
          { label: "OS", value: (d) => d.os_version },
          { label: "Status", value: (d) => pill(d.status) },
          { label: "Last seen", value: (d) => fmtTime(d.last_seen_at) },
        ], r.devices, (d) => { location.hash = "#/device/" + enc(d.id); }),
        pager(offset, limit, r.total, (o) => { offset = o; load(); }));
    } catch (e) {
      results.replaceChildren(el("p.error", {}, e.message));
    }
  }
  let timer;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { offset = 0; load(); }, 250); });
  status.addEventListener("change", () => { offset = 0; load(); });
  os.addEventListener("change", () => { offset = 0; load(); });
  main().replaceChildren(el("h1", {}, "Devices"),
    el("div.toolbar", {}, el("label", {}, "Search", search), el("label", {}, "Status", status), el("label", {}, "OS version", os)),
    results);
  await load();
};

const SECTIONS = ["device", "security", "profiles", "apps", "managed-apps", "certificates", "provisioning-profiles", "restrictions", "history"];

async function sendCommand(id, command, what) {
  try {
    const r = await Api.post("/api/v1/commands", { devices: [id], command });
    toast(`${what} queued (${r.command_uuid})`);
    return r;
  } catch (e) {
    toast(`${what}: ${e.message}`, true);
    return null;
  }
}

pages.device = async (id) => {
  const d = await Api.get("/api/v1/devices/" + enc(id));
  const name = d.device_name || d.serial_number || d.id;
  const op = Api.can("operator"), admin = Api.can("admin");
  const cmds = el("div", { id: "device-commands" });
  const section = el("div", { id: "device-section" });
  async function loadCommands() {
    const r = await Api.get(`/api/v1/devices/${enc(id)}/commands?limit=50`);
    cmds.replaceChildren(table([
      { label: "Command", value: (c) => c.request_type },
      { label: "Status", value: (c) => pill(c.status) },
      { label: "Queued", value: (c) => fmtTime(c.created_at) },
      { label: "Answered", value: (c) => fmtTime(c.updated_at) },
      { label: "", value: (c) => (c.status === "Pending" || c.status === "NotNow") && op
          ? el("button.link", { onclick: async (ev) => { ev.stopPropagation(); try { await Api.del(`/api/v1/devices/${enc(id)}/commands/${enc(c.command_uuid)}`); toast("Canceled"); loadCommands(); } catch (e) { toast(e.message, true); } } }, "Cancel") : "" },
    ], r.commands, (c) => { cmds.querySelector("pre")?.remove(); cmds.append(el("pre", { class: "result" }, JSON.stringify(c.result || c, null, 2))); }));
  }
  async function showSection(name, btn) {
    for (const b of tabs.children) b.classList.toggle("active", b === btn);
    section.replaceChildren(el("p.muted", {}, "Loading…"));
    try {
      const r = await Api.get(`/api/v1/devices/${enc(id)}/inventory/${name}?limit=500`);
      if (r.values) {
        const keys = Object.keys(r.values);
        section.replaceChildren(keys.length ? el("dl.kv", {}, keys.map((k) => [el("dt", {}, k), el("dd", {}, typeof r.values[k] === "object" && r.values[k] !== null ? JSON.stringify(r.values[k]) : String(r.values[k]))])) : el("p.muted", {}, "Not reported yet: send a query."));
      } else {
        const items = r.items || [];
        const cols = items.length ? Object.keys(items[0]).slice(0, 8) : [];
        section.replaceChildren(items.length ? table(cols.map((c) => ({ label: c, value: (row) => row[c] === null ? "" : typeof row[c] === "object" ? JSON.stringify(row[c]) : row[c], wrap: true })), items) : el("p.muted", {}, "Nothing reported yet."));
      }
    } catch (e) {
      section.replaceChildren(el("p.error", {}, e.message));
    }
  }
  const tabs = el("div.tabs", {}, SECTIONS.map((s) => { const b = el("button", { "data-section": s }, s); b.addEventListener("click", () => showSection(s, b)); return b; }));
  const act = (label, fn, opts) => el("button" + ((opts && opts.cls) || ".secondary"), { id: opts && opts.id, disabled: opts && opts.disabled, title: opts && opts.title, onclick: fn }, label);
  const actions = el("div.actions", { id: "device-actions" },
    act("Query", async () => { await sendCommand(id, { RequestType: "DeviceInformation", Queries: ["DeviceName", "OSVersion", "BuildVersion", "ModelName", "ProductName", "SerialNumber", "BatteryLevel", "AvailableDeviceCapacity", "DeviceCapacity", "WiFiMAC", "IsSupervised"] }, "DeviceInformation"); loadCommands(); }, { id: "act-query", disabled: !op }),
    act("Lock", async () => { if (await confirmDialog("Lock device", `Lock ${name} now? Its user needs the passcode to unlock it.`, "Lock")) { await sendCommand(id, { RequestType: "DeviceLock" }, "Lock"); loadCommands(); } }, { id: "act-lock", disabled: !op }),
    act("Roaming…", async () => {
      const voice = await confirmDialog("Roaming", "Turn voice and data roaming ON? (Cancel turns them off.)", "On");
      await sendCommand(id, { RequestType: "Settings", Settings: [{ Item: "VoiceRoaming", Enabled: voice }, { Item: "DataRoaming", Enabled: voice }] }, "Roaming settings");
      loadCommands();
    }, { id: "act-roaming", disabled: !op }),
    act("Clear passcode", async () => {
      if (!(await confirmDialog("Clear passcode", `Remove the passcode of ${name}? Anyone holding it can then open it.`, "Clear passcode"))) return;
      try {
        const r = await Api.post("/api/v1/commands", { devices: [id], request_type: "ClearPasscode" });
        const one = r.devices && r.devices[id];
        toast(one && !one.queued ? "Clear passcode: " + one.error : `ClearPasscode queued (${r.command_uuid || (one && one.command_uuid)})`, one && !one.queued);
      } catch (e) { toast("Clear passcode: " + e.message, true); }
      loadCommands();
    }, { id: "act-clear-passcode", disabled: !admin || !d.has_unlock_token,
      title: !d.has_unlock_token ? "no UnlockToken stored for this device: it sends one in TokenUpdate when it has a passcode" : admin ? "" : "needs the admin role" }),
    act("Mark lost…", async () => {
      const v = await formDialog("Mark lost", `Lock ${name} with a message and phone number on its screen, and remove its corporate (managed) profiles and apps. Nothing is erased.`,
        [{ name: "message", label: "Message on the lock screen", placeholder: "This device is lost. Please call:" }, { name: "phone", label: "Phone number", placeholder: "+1 555 0100" }], "Mark lost", true);
      if (!v) return;
      try {
        const r = await Api.post(`/api/v1/devices/${enc(id)}/lost`, { message: v.message || undefined, phone: v.phone || undefined });
        toast(`Marked lost: lock queued, ${r.profiles_removed} profile(s) and ${r.apps_removed} app(s) removed`);
      } catch (e) { toast("Mark lost: " + e.message, true); }
      loadCommands();
      compliance.reload();
    }, { id: "act-lost", cls: ".danger", disabled: !op, title: op ? "" : "needs the operator role" }),
    act("Push now", async () => {
      try {
        const r = await Api.post("/api/v1/push", { devices: [id] });
        const one = r.devices && r.devices[id];
        toast(one && one.pushed ? "Push sent" : "Push not sent" + (one && one.error ? ": " + one.error : ""), !(one && one.pushed));
      } catch (e) { toast("Push: " + e.message, true); }
    }, { id: "act-push", disabled: !op }),
    act("Unenroll…", async () => {
      const typed = d.serial_number || d.id;
      if (await confirmDialog("Unenroll device", `This removes management from ${name}: its profiles and apps go with it.`, "Unenroll", typed)) {
        try { await Api.post(`/api/v1/devices/${enc(id)}/unenroll`); toast("Unenroll queued"); loadCommands(); } catch (e) { toast("Unenroll: " + e.message, true); }
      }
    }, { id: "act-unenroll", disabled: !admin, title: admin ? "" : "needs the admin role" }),
    act("Wipe…", async () => {
      const typed = d.serial_number || d.id;
      if (await confirmDialog("Erase device", `This erases ALL data on ${name}, personal data included. It cannot be undone.`, "Erase", typed)) {
        try { const r = await Api.post(`/api/v1/devices/${enc(id)}/wipe`, { confirm: id }); toast(`Erase queued (${r.erase_command})`); } catch (e) { toast("Erase: " + e.message, true); }
        loadCommands();
        compliance.reload();
      }
    }, { id: "act-wipe", cls: ".danger", disabled: !admin, title: admin ? "" : "needs the admin role" }));
  const kv = [["Status", pill(d.status)], ["Serial", d.serial_number], ["Model", d.product_name || d.model_name], ["OS", [d.os_version, d.build_version].filter(Boolean).join(" ")],
    ["UDID", d.udid], ["Type", d.type], ["Enrolled", fmtTime(d.enrolled_at)], ["Last seen", fmtTime(d.last_seen_at)], ["Push token", d.push_token ? "yes" : "no"],
    ["Unlock token", d.has_unlock_token ? "stored" : "none"]];
  const convergence = deviceConvergence(id);
  const compliance = deviceCompliance(id);
  main().replaceChildren(
    el("p", {}, el("a", { href: "#/devices" }, "← Devices")),
    el("h1", { id: "device-title" }, name),
    el("div.card", {}, el("dl.kv", {}, kv.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v === undefined || v === null || v === "" ? "—" : v)])),
      el("h3", {}, "Actions"), actions),
    el("h2.section", {}, "Compliance"), compliance.node,
    el("h2.section", {}, "Profiles"), convergence.node,
    tabs, section,
    el("h2.section", {}, "Commands"), cmds);
  showSection("device", tabs.children[0]);
  await Promise.all([loadCommands(), compliance.reload(), convergence.reload()]);
};

/* ---- certificates --------------------------------------------------------------- */

pages.certs = async () => {
  const status = el("select", { id: "cert-status" }, ["", "issued", "pending", "revoked", "rejected"].map((v) => el("option", { value: v }, v || "any")));
  const expiring = el("input", { id: "cert-expiring", type: "number", min: 0, placeholder: "days", size: 6 });
  const results = el("div");
  async function load() {
    const p = new URLSearchParams({ limit: 200 });
    if (status.value) p.set("status", status.value);
    if (expiring.value) p.set("expiring_within_days", expiring.value);
    const r = await Api.get("/api/v1/certs?" + p);
    results.replaceChildren(table([
      { label: "Subject", value: (c) => c.subject, wrap: true },
      { label: "Status", value: (c) => pill(c.status) },
      { label: "Device", value: (c) => c.device ? el("a", { href: "#/device/" + enc(c.device) }, c.device) : "" },
      { label: "Expires", value: (c) => c.not_after ? c.not_after.slice(0, 10) : "" },
      { label: "Serial", value: (c) => c.serial },
    ], r.certs));
  }
  status.addEventListener("change", load);
  expiring.addEventListener("change", load);
  main().replaceChildren(el("h1", {}, "Certificates"), el("p.muted", {}, "Device identity certificates issued by steward's CA."),
    el("div.toolbar", {}, el("label", {}, "Status", status), el("label", {}, "Expiring within", expiring)), results);
  await load();
};

/* ---- push certificates and enrollment users ------------------------------------------ */

/* A table of every scalar member of the first item (for lists whose shape
   belongs to another area). */
function genericTable(items) {
  const cols = items.length ? Object.keys(items[0]).filter((k) => items[0][k] === null || typeof items[0][k] !== "object" || k.endsWith("_at")).slice(0, 9) : [];
  return table(cols.map((c) => ({ label: c.replace(/_/g, " "), value: (row) => row[c] === null || row[c] === undefined ? "" : typeof row[c] === "object" ? JSON.stringify(row[c]) : typeof row[c] === "number" && !Number.isInteger(row[c]) ? row[c].toFixed(1) : row[c], wrap: c === "subject" })), items);
}

pages.pushcerts = async () => {
  const r = await Api.get("/api/v1/pushcerts");
  main().replaceChildren(el("h1", {}, "Push certificates"),
    el("p.muted", {}, "APNs certificates per topic, with days left before they expire. Renew them at Apple before they do: devices cannot be reached without one."),
    genericTable(r.pushcerts || []));
};

pages.enrollusers = async () => {
  const r = await Api.get("/api/v1/enroll/users");
  main().replaceChildren(el("h1", {}, "Enrollment users"),
    el("p.muted", {}, "People who may enroll devices through the enrollment portal."),
    genericTable(r.users || []));
};

/* ---- users and keys --------------------------------------------------------------- */

const roleSelect = (id) => el("select", { id }, ["viewer", "operator", "admin"].map((r) => el("option", { value: r }, r)));

pages.users = async () => {
  const r = await Api.get("/api/v1/users");
  const name = el("input", { id: "user-name", placeholder: "name" }), pw = el("input", { id: "user-password", type: "password", placeholder: "at least 8 characters" }), role = roleSelect("user-role");
  main().replaceChildren(el("h1", {}, "Console users"),
    el("form.form-row", { onsubmit: async (ev) => { ev.preventDefault(); try { await Api.post("/api/v1/users", { name: name.value, password: pw.value, role: role.value }); toast("User added"); route(); } catch (e) { toast(e.message, true); } } },
      el("label", {}, "Name", name), el("label", {}, "Password", pw), el("label", {}, "Role", role), el("button", { type: "submit" }, "Add user")),
    table([
      { label: "Name", value: (u) => u.name },
      { label: "Role", value: (u) => u.role },
      { label: "Last sign-in", value: (u) => fmtTime(u.last_login_at) },
      { label: "State", value: (u) => u.locked ? pill("locked") : "ok" },
      { label: "", value: (u) => el("button.link", { onclick: async () => { if (await confirmDialog("Delete user", `Delete ${u.name}?`, "Delete")) { try { await Api.del("/api/v1/users/" + enc(u.name)); route(); } catch (e) { toast(e.message, true); } } } }, "Delete") },
    ], r.users));
};

pages.keys = async () => {
  const r = await Api.get("/api/v1/keys");
  const name = el("input", { id: "key-name", placeholder: "name" }), role = roleSelect("key-role");
  const shown = el("div");
  main().replaceChildren(el("h1", {}, "API keys"),
    el("form.form-row", { onsubmit: async (ev) => { ev.preventDefault(); try { const k = await Api.post("/api/v1/keys", { name: name.value, role: role.value }); shown.replaceChildren(el("div.card", {}, el("p", {}, "The new key, shown this once:"), el("pre", {}, k.key))); } catch (e) { toast(e.message, true); } } },
      el("label", {}, "Name", name), el("label", {}, "Role", role), el("button", { type: "submit" }, "Create key")),
    shown,
    table([
      { label: "Name", value: (k) => k.name }, { label: "Role", value: (k) => k.role }, { label: "Id", value: (k) => k.id },
      { label: "Created", value: (k) => fmtTime(k.created_at) }, { label: "Last used", value: (k) => fmtTime(k.last_used_at) },
      { label: "", value: (k) => el("button.link", { onclick: async () => { if (await confirmDialog("Revoke key", `Revoke ${k.name}? Scripts using it stop working.`, "Revoke")) { try { await Api.del("/api/v1/keys/" + enc(k.id)); route(); } catch (e) { toast(e.message, true); } } } }, "Revoke") },
    ], r.keys));
};

/* ---- webhooks ------------------------------------------------------------------------ */

pages.webhooks = async (id) => {
  if (id) {
    const r = await Api.get(`/api/v1/webhooks/${enc(id)}/deliveries?limit=100`);
    main().replaceChildren(el("p", {}, el("a", { href: "#/webhooks" }, "← Webhooks")), el("h1", {}, `Deliveries of webhook ${id}`),
      table([
        { label: "Event", value: (d) => d.event }, { label: "Status", value: (d) => pill(d.status) }, { label: "Attempts", value: (d) => d.attempts },
        { label: "HTTP", value: (d) => d.last_http_status }, { label: "Error", value: (d) => d.last_error, wrap: true },
        { label: "Created", value: (d) => fmtTime(d.created_at) }, { label: "Next try", value: (d) => fmtTime(d.next_try_at) },
      ], r.deliveries));
    return;
  }
  const r = await Api.get("/api/v1/webhooks");
  const url = el("input", { id: "hook-url", placeholder: "https://…", size: 34 }), events = el("input", { id: "hook-events", value: "*", size: 24 });
  const shown = el("div");
  main().replaceChildren(el("h1", {}, "Webhooks"),
    el("p.muted", {}, "Events: device.enrolled, device.checked_out, command.completed, command.failed, command.not_now, cert.expiring, mdm.Authenticate, mdm.TokenUpdate, mdm.CheckOut, mdm.Connect; \"mdm.*\" picks a family, \"*\" all."),
    el("form.form-row", { onsubmit: async (ev) => { ev.preventDefault(); try { const h = await Api.post("/api/v1/webhooks", { url: url.value, events: events.value }); shown.replaceChildren(el("div.card", {}, el("p", {}, "Signing secret, shown this once:"), el("pre", {}, h.secret))); route(); } catch (e) { toast(e.message, true); } } },
      el("label", {}, "URL", url), el("label", {}, "Events", events), el("button", { type: "submit" }, "Add webhook")),
    shown,
    table([
      { label: "URL", value: (h) => h.url, wrap: true }, { label: "Events", value: (h) => h.events },
      { label: "Enabled", value: (h) => pill(String(h.enabled)) },
      { label: "", value: (h) => el("span", {},
          el("a", { href: "#/webhooks/" + h.id }, "Deliveries"), " ",
          el("button.link", { onclick: async () => { try { await Api.post(`/api/v1/webhooks/${h.id}/test`); toast("Test event queued"); } catch (e) { toast(e.message, true); } } }, "Test"),
          el("button.link", { onclick: async () => { try { await Api.patch(`/api/v1/webhooks/${h.id}`, { enabled: !h.enabled }); route(); } catch (e) { toast(e.message, true); } } }, h.enabled ? "Disable" : "Enable"),
          el("button.link", { onclick: async () => { if (await confirmDialog("Delete webhook", `Delete ${h.url}?`, "Delete")) { try { await Api.del(`/api/v1/webhooks/${h.id}`); route(); } catch (e) { toast(e.message, true); } } } }, "Delete")) },
    ], r.webhooks));
};

/* ---- audit log --------------------------------------------------------------------------- */

pages.audit = async () => {
  const actor = el("input", { id: "audit-actor", placeholder: "user:alice or key:name" });
  const target = el("input", { id: "audit-target", placeholder: "device, user, id…" });
  const failed = el("input", { id: "audit-failed", type: "checkbox" });
  const results = el("div", { id: "audit-results" });
  const links = el("span.actions");
  let offset = 0;
  const limit = 100;
  function params() {
    const p = new URLSearchParams();
    if (actor.value) p.set("actor", actor.value);
    if (target.value) p.set("target", target.value);
    if (failed.checked) p.set("failed", "1");
    return p;
  }
  async function load() {
    const p = params();
    links.replaceChildren(el("a", { href: "/api/v1/audit?format=csv&" + p, download: "steward-audit.csv" }, "Export CSV"), el("a", { href: "/api/v1/audit?format=jsonl&" + p, download: "steward-audit.jsonl" }, "Export JSON lines"));
    p.set("limit", limit);
    p.set("offset", offset);
    const r = await Api.get("/api/v1/audit?" + p);
    results.replaceChildren(table([
      { label: "When", value: (a) => new Date(a.at).toLocaleString() },
      { label: "Who", value: (a) => a.actor }, { label: "Role", value: (a) => a.role },
      { label: "What", value: (a) => a.action }, { label: "Target", value: (a) => a.target, wrap: true },
      { label: "Result", value: (a) => pill(String(a.status)) }, { label: "From", value: (a) => a.remote_addr },
    ], r.entries), pager(offset, limit, undefined, (o) => { offset = o; load(); }));
  }
  for (const i of [actor, target]) i.addEventListener("change", () => { offset = 0; load(); });
  failed.addEventListener("change", () => { offset = 0; load(); });
  main().replaceChildren(el("h1", {}, "Audit log"), el("p.muted", {}, "Every change made through the API, the console or stewardctl."),
    el("div.toolbar", {}, el("label", {}, "Who", actor), el("label", {}, "Target", target), el("label", {}, "Failures only", failed), links), results);
  await load();
};

/* After every deferred script (profiles.js, compliance.js) has added its pages. */
document.addEventListener("DOMContentLoaded", boot);
