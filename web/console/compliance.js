/* compliance.js: the compliance pages (policies with their device states,
   the policy editor) and the device page's compliance panel, on the
   compliance API (docs/compliance.md). Loaded after app.js, whose pages
   table it adds to; builds DOM with el() only. */
"use strict";

/* Leaf rule types and their members, as the editor asks for them. */
const RULE_TYPES = {
  passcode: { label: "Passcode set and compliant", params: [{ key: "compliant", label: "must be compliant", kind: "bool", def: true }] },
  encryption: { label: "Hardware encryption", params: [{ key: "caps", label: "caps (1 block, 2 file, 3 both)", kind: "number", def: 3 }] },
  os_version: { label: "OS version", params: [{ key: "min", label: "min", kind: "text" }, { key: "max", label: "max", kind: "text" }] },
  supervised: { label: "Supervised", params: [{ key: "value", label: "must be supervised", kind: "bool", def: true }] },
  profiles_installed: { label: "Profiles installed", params: [{ key: "identifiers", label: "identifiers, comma-separated", kind: "list" }] },
  apps_required: { label: "Apps required", params: [{ key: "identifiers", label: "bundle ids, comma-separated", kind: "list" }] },
  apps_forbidden: { label: "Apps forbidden", params: [{ key: "identifiers", label: "bundle ids, comma-separated", kind: "list" }] },
  certificates_valid: { label: "Certificates not expiring", params: [{ key: "days", label: "within days", kind: "number", def: 30 }] },
  checked_in: { label: "Checked in recently", params: [{ key: "days", label: "within days", kind: "number", def: 7 }] },
  roaming: { label: "Roaming", params: [{ key: "allow_roaming", label: "roaming allowed", kind: "bool", def: false }, { key: "allow_data_roaming", label: "data roaming allowed", kind: "bool", def: true }] },
  restriction: { label: "Restriction in force", params: [{ key: "name", label: "restriction", kind: "text" }, { key: "value", label: "value (true, false, number or text)", kind: "scalar" }] },
};

const ACTION_TYPES = [
  { type: "notify", label: "Notify (webhook event and log)" },
  { type: "requery", label: "Query the device again" },
  { type: "push", label: "Push again" },
  { type: "remove_profiles", label: "Remove managed profiles", list: "identifiers" },
  { type: "remove_apps", label: "Remove managed apps", list: "identifiers" },
  { type: "lock", label: "Lock with a message", lock: true },
  { type: "wipe", label: "Erase the device", wipe: true },
];

/* A rule as one line of text: "all of (passcode, os_version min 17.6)". */
function ruleText(r) {
  if (!r || typeof r !== "object") return "—";
  if (Array.isArray(r.all)) return `all of (${r.all.map(ruleText).join(", ")})`;
  if (Array.isArray(r.any)) return `any of (${r.any.map(ruleText).join(", ")})`;
  const members = Object.keys(r).filter((k) => k !== "type" && k !== "name").map((k) => `${k} ${valueText(r[k])}`);
  return (r.name ? r.name + ": " : "") + [r.type, ...members].join(" ");
}

function scopeText(s) {
  if (s === "all" || s === null || s === undefined) return "all devices";
  if (s.groups) return "groups: " + s.groups.join(", ");
  if (s.devices) return "devices: " + s.devices.join(", ");
  return JSON.stringify(s);
}

function durationText(secs) {
  if (!secs) return "none";
  return secs % 86400 === 0 ? `${secs / 86400} day(s)` : secs % 3600 === 0 ? `${secs / 3600} hour(s)` : `${secs} s`;
}

function actionText(a) {
  const extra = [a.identifiers ? a.identifiers.join(", ") : "", a.message ? `"${a.message}"` : "", a.phone || "",
    a.after_seconds ? `after ${durationText(a.after_seconds)} more` : ""].filter(Boolean).join(" ");
  return a.type + (extra ? " — " + extra : "");
}

/* The wipe opt-in, impossible to miss. */
function wipeBadge(p) {
  return p.wipe_enabled ? el("span.pill.bad", { id: "policy-wipe" }, "Wipe ENABLED for this policy")
    : el("span.pill", { id: "policy-wipe" }, "Wipe never (not enabled)");
}

/* ---- the device page's panel ---------------------------------------------------- */

function deviceCompliance(id) {
  const node = el("div", { id: "device-compliance" }, el("p.muted", {}, "Loading…"));
  async function reload() {
    try {
      const r = await Api.get(`/api/v1/devices/${enc(id)}/compliance?history=20`);
      node.replaceChildren(
        el("div.card", {},
          el("p", {}, "Overall: ", pill(r.state || "compliant"), " ", el("span.muted", {}, "evaluated " + fmtTime(r.evaluated_at))),
          r.lost ? el("p.lost", { id: "device-lost" }, pill("lost"), ` since ${fmtTime(r.lost.at)}`, r.lost.message ? ` — "${r.lost.message}"` : "", r.lost.phone ? ` — ${r.lost.phone}` : "") : null,
          r.wiped_at ? el("p", {}, pill("error"), " erase sent " + fmtTime(r.wiped_at)) : null),
        table([
          { label: "Policy", value: (s) => el("a", { href: "#/policy/" + s.policy_id }, s.policy || String(s.policy_id)) },
          { label: "State", value: (s) => pill(s.state) },
          { label: "Failing rule", value: (s) => s.rule, wrap: true },
          { label: "Observed", value: (s) => s.observed, wrap: true },
          { label: "Since", value: (s) => fmtTime(s.since) },
        ], r.policies || []),
        (r.history || []).length ? el("details", {}, el("summary", {}, `History (${r.history.length})`),
          table([
            { label: "When", value: (h) => fmtTime(h.at) },
            { label: "What", value: (h) => h.kind },
            { label: "Policy", value: (h) => h.policy },
            { label: "Change", value: (h) => h.from || h.to ? `${h.from || "—"} → ${h.to || "—"}` : h.action },
            { label: "Detail", value: (h) => [h.rule, h.observed, h.detail].filter(Boolean).join(" · "), wrap: true },
          ], r.history)) : null);
    } catch (e) {
      node.replaceChildren(el("p.error", {}, e.message));
    }
  }
  return { node, reload };
}

/* ---- the policies --------------------------------------------------------------------- */

pages.compliance = async () => {
  const r = await Api.get("/api/v1/compliance?limit=200");
  const admin = Api.can("admin"), op = Api.can("operator");
  main().replaceChildren(el("h1", {}, "Compliance"),
    el("div.grid", { id: "compliance-figures" },
      figure(r.totals.noncompliant, "non-compliant (device, policy)", r.totals.noncompliant ? "bad" : ""),
      figure(r.totals.unknown, "unknown", r.totals.unknown ? "warn" : ""),
      figure(r.policies.length, "policies")),
    el("div.toolbar", {},
      el("button", { id: "policy-new", disabled: !admin, title: admin ? "" : "needs the admin role", onclick: () => { location.hash = "#/policy/new"; } }, "New policy"),
      el("button.secondary", { id: "compliance-evaluate", disabled: !op, title: op ? "" : "needs the operator role", onclick: async () => {
        try { const e = await Api.post("/api/v1/compliance/evaluate"); toast(`Evaluated ${e.devices} device(s): ${e.noncompliant} non-compliant, ${e.unknown} unknown`); route(); } catch (e) { toast(e.message, true); }
      } }, "Evaluate now")),
    el("h2.section", {}, "Policies"),
    el("div", { id: "policy-list" }, table([
      { label: "Name", value: (p) => p.name, wrap: true },
      { label: "Enabled", value: (p) => pill(String(p.enabled)) },
      { label: "In scope", value: (p) => p.devices_in_scope },
      { label: "Compliant", value: (p) => p.compliant },
      { label: "Non-compliant", value: (p) => p.noncompliant ? pill(String(p.noncompliant)) : 0 },
      { label: "Unknown", value: (p) => p.unknown },
      { label: "Evaluated", value: (p) => fmtTime(p.evaluated_at) },
    ], r.policies, (p) => { location.hash = "#/policy/" + p.id; })),
    el("h2.section", {}, "Devices out of compliance"),
    el("div", { id: "compliance-states" }, statesTable(r.states, r.policies)));
};

function statesTable(states, policies) {
  const names = Object.fromEntries((policies || []).map((p) => [p.id, p.name]));
  return table([
    { label: "Device", value: (s) => el("a", { href: "#/device/" + enc(s.device) }, s.device) },
    { label: "Policy", value: (s) => names[s.policy_id] || s.policy_id, wrap: true },
    { label: "State", value: (s) => pill(s.state) },
    { label: "Failing rule", value: (s) => s.rule, wrap: true },
    { label: "Observed", value: (s) => s.observed, wrap: true },
    { label: "Since", value: (s) => fmtTime(s.since) },
    { label: "Actions fired", value: (s) => s.actions_fired ? Object.keys(s.actions_fired).join(", ") : "" },
  ], states || []);
}

pages.policy = async (id, mode) => {
  if (id === "new") return policyEditor(null);
  const p = await Api.get("/api/v1/compliance/policies/" + enc(id));
  if (mode === "edit") return policyEditor(p);
  const [r, all] = await Promise.all([Api.get(`/api/v1/compliance?policy=${enc(id)}&limit=500`), Api.get("/api/v1/compliance?limit=1")]);
  const sum = (all.policies || []).find((x) => String(x.id) === String(id)) || {};
  const admin = Api.can("admin");
  main().replaceChildren(
    el("p", {}, el("a", { href: "#/compliance" }, "← Compliance")),
    el("h1", { id: "policy-title" }, p.name),
    el("div.card", {}, el("dl.kv", {},
      el("dt", {}, "Description"), el("dd", {}, p.description || "—"),
      el("dt", {}, "Enabled"), el("dd", {}, pill(String(p.enabled))),
      el("dt", {}, "Rules"), el("dd", { id: "policy-rules" }, ruleText(p.rules)),
      el("dt", {}, "Scope"), el("dd", {}, scopeText(p.scope)),
      el("dt", {}, "Grace period"), el("dd", {}, durationText(p.grace_seconds)),
      el("dt", {}, "Actions"), el("dd", {}, (p.actions || []).length ? el("ul.plain", {}, p.actions.map((a) => el("li", {}, actionText(a)))) : "none"),
      el("dt", {}, "Wipe"), el("dd", {}, wipeBadge(p)),
      el("dt", {}, "Last fleet evaluation"), el("dd", {}, fmtTime(p.evaluated_at))),
      el("div.actions", {},
        el("button.secondary", { id: "policy-edit", disabled: !admin, title: admin ? "" : "needs the admin role", onclick: () => { location.hash = `#/policy/${p.id}/edit`; } }, "Edit"),
        el("button.danger", { id: "policy-delete", disabled: !admin, onclick: async () => {
          if (!(await confirmDialog("Delete policy", `Delete ${p.name} and its device states? (History stays.)`, "Delete"))) return;
          try { await Api.del("/api/v1/compliance/policies/" + p.id); toast("Deleted"); location.hash = "#/compliance"; } catch (e) { toast(e.message, true); }
        } }, "Delete"))),
    el("div.grid", { id: "policy-figures" },
      figure(sum.devices_in_scope, "devices in scope"), figure(sum.compliant, "compliant"),
      figure(sum.noncompliant, "non-compliant", sum.noncompliant ? "bad" : ""), figure(sum.unknown, "unknown", sum.unknown ? "warn" : "")),
    el("h2.section", {}, "Devices not compliant or unknown"),
    el("div", { id: "policy-states" }, statesTable(r.states, [p])));
};

/* ---- the editor ------------------------------------------------------------------------ */

function ruleRow(rule, onchange) {
  const type = el("select.rule-type", {}, Object.entries(RULE_TYPES).map(([t, d]) => el("option", { value: t, selected: rule.type === t }, d.label)));
  const params = el("span.rule-params");
  const row = el("div.rule-row", {}, type, params, el("button.link", { type: "button", "aria-label": "remove rule", onclick: () => { row.remove(); onchange(); } }, "Remove"));
  function draw(from) {
    params.replaceChildren(...RULE_TYPES[type.value].params.map((pd) => {
      const v = from && from[pd.key] !== undefined ? from[pd.key] : pd.def;
      const input = pd.kind === "bool" ? el("input", { type: "checkbox", checked: v === true })
        : el("input", { type: pd.kind === "number" ? "number" : "text", size: pd.kind === "list" ? 28 : 10,
          value: v === undefined ? "" : Array.isArray(v) ? v.join(", ") : String(v) });
      input.dataset.key = pd.key;
      input.dataset.kind = pd.kind;
      input.addEventListener("input", onchange);
      input.addEventListener("change", onchange);
      return el("label.inline", {}, pd.label, input);
    }));
  }
  type.addEventListener("change", () => { draw(null); onchange(); });
  draw(rule);
  row.read = () => {
    const r = { type: type.value };
    for (const i of params.querySelectorAll("input")) {
      const k = i.dataset.key, kind = i.dataset.kind;
      if (kind === "bool") r[k] = i.checked;
      else if (i.value.trim() === "") continue;
      else if (kind === "number") r[k] = Number(i.value);
      else if (kind === "list") r[k] = i.value.split(",").map((x) => x.trim()).filter(Boolean);
      else if (kind === "scalar") r[k] = /^(true|false)$/.test(i.value.trim()) ? i.value.trim() === "true" : /^-?\d+$/.test(i.value.trim()) ? Number(i.value) : i.value;
      else r[k] = i.value.trim();
    }
    return r;
  };
  return row;
}

/* Flat rules (one leaf, or all/any of leaves) the builder can show. */
function flatRules(rules) {
  if (!rules) return { op: "all", leaves: [{ type: "passcode" }] };
  if (rules.type) return { op: "all", leaves: [rules] };
  const op = Array.isArray(rules.all) ? "all" : "any";
  const kids = rules[op] || [];
  return kids.every((k) => k && k.type && !k.name) ? { op, leaves: kids } : null;
}

async function policyEditor(p) {
  const groups = (await Api.get("/api/v1/groups")).groups || [];
  const editing = !!p;
  p = p || { name: "", description: "", enabled: true, rules: null, scope: "all", grace_seconds: 0, actions: [], wipe_enabled: false };
  const name = el("input", { id: "policy-name", value: p.name, required: true });
  const desc = el("input", { id: "policy-description", value: p.description || "", size: 40 });
  const enabled = el("input", { id: "policy-enabled", type: "checkbox", checked: p.enabled });
  const flat = flatRules(p.rules);
  const op = el("select", { id: "policy-op" }, el("option", { value: "all", selected: flat && flat.op === "all" }, "all of these rules (and)"),
    el("option", { value: "any", selected: flat && flat.op === "any" }, "any of these rules (or)"));
  const rows = el("div.rule-rows", { id: "policy-rule-rows" });
  const json = el("textarea", { id: "policy-rules-json", rows: 4 });
  const sync = () => { json.value = JSON.stringify(buildRules()); };
  function buildRules() {
    const leaves = [...rows.children].map((r) => r.read());
    return leaves.length === 1 ? leaves[0] : { [op.value]: leaves };
  }
  if (flat) for (const l of flat.leaves) rows.append(ruleRow(l, sync));
  op.addEventListener("change", sync);
  json.value = JSON.stringify(p.rules || buildRules(), null, 1);
  const builder = el("div", { hidden: !flat },
    el("label", {}, "Combine", op), rows,
    el("button.secondary", { type: "button", id: "policy-add-rule", onclick: () => { rows.append(ruleRow({ type: "os_version" }, sync)); sync(); } }, "Add rule"));

  const scopeKind = el("select", { id: "policy-scope" }, ["all", "groups", "devices"].map((k) => el("option", { value: k, selected: (p.scope === "all" ? "all" : p.scope.groups ? "groups" : "devices") === k }, k === "all" ? "all devices" : k)));
  const scopeGroups = el("div.checks", { id: "policy-scope-groups" }, groups.length ? groups.map((g) => el("label.inline", {},
    el("input", { type: "checkbox", value: g.name, checked: !!(p.scope.groups && p.scope.groups.includes(g.name)) }), g.name)) : el("span.muted", {}, "no groups yet"));
  const scopeDevices = el("input", { id: "policy-scope-devices", size: 40, placeholder: "device ids, comma-separated", value: p.scope.devices ? p.scope.devices.join(", ") : "" });
  const showScope = () => { scopeGroups.hidden = scopeKind.value !== "groups"; scopeDevices.hidden = scopeKind.value !== "devices"; };
  scopeKind.addEventListener("change", showScope);
  showScope();

  const grace = el("input", { id: "policy-grace", type: "number", min: 0, step: "any", value: p.grace_seconds / 3600, size: 6 });
  const wipeEnabled = el("input", { id: "policy-wipe-enabled", type: "checkbox", checked: p.wipe_enabled });
  const existing = Object.fromEntries((p.actions || []).map((a) => [a.type, a]));
  const actionInputs = ACTION_TYPES.map((a) => {
    const cur = existing[a.type];
    const box = el("input", { type: "checkbox", id: "action-" + a.type, checked: !!cur });
    const list = a.list ? el("input", { placeholder: "identifiers, comma-separated", size: 30, value: cur && cur[a.list] ? cur[a.list].join(", ") : "" }) : null;
    const msg = a.lock ? el("input", { placeholder: "message", value: (cur && cur.message) || "" }) : null;
    const phone = a.lock ? el("input", { placeholder: "phone", value: (cur && cur.phone) || "", size: 14 }) : null;
    if (a.wipe) {
      const gate = () => { box.disabled = !wipeEnabled.checked; if (!wipeEnabled.checked) box.checked = false; };
      wipeEnabled.addEventListener("change", gate);
      gate();
    }
    return { a, cur, box, list, msg, phone, node: el("div.action-row" + (a.wipe ? ".danger-row" : ""), {}, el("label.inline", {}, box, a.label), list, msg, phone) };
  });
  const err = el("p.error", { id: "policy-error", role: "alert" });
  main().replaceChildren(
    el("p", {}, el("a", { href: editing ? "#/policy/" + p.id : "#/compliance" }, editing ? "← " + p.name : "← Compliance")),
    el("h1", {}, editing ? "Edit policy" : "New policy"),
    el("form.card.editor", { id: "policy-form", onsubmit: async (ev) => {
      ev.preventDefault();
      err.textContent = "";
      try {
        const body = {
          name: name.value, description: desc.value || null, enabled: enabled.checked,
          rules: parseJson(json.value, "Rules"),
          scope: scopeKind.value === "all" ? "all" : scopeKind.value === "groups"
            ? { groups: [...scopeGroups.querySelectorAll("input:checked")].map((i) => i.value) }
            : { devices: scopeDevices.value.split(",").map((x) => x.trim()).filter(Boolean) },
          grace_seconds: Math.round(Number(grace.value || 0) * 3600),
          wipe_enabled: wipeEnabled.checked,
          actions: actionInputs.filter((x) => x.box.checked).map((x) => {
            const o = { type: x.a.type };
            if (x.cur && x.cur.after_seconds) o.after_seconds = x.cur.after_seconds;
            if (x.list) o[x.a.list] = x.list.value.split(",").map((v) => v.trim()).filter(Boolean);
            if (x.msg && x.msg.value) o.message = x.msg.value;
            if (x.phone && x.phone.value) o.phone = x.phone.value;
            return o;
          }),
        };
        if (body.actions.some((a) => a.type === "wipe") &&
            !(await confirmDialog("Wipe action", "Devices that stay non-compliant past the grace period will be ERASED, personal data included.", "Allow wipe", body.name))) return;
        const saved = editing ? await Api.call("PUT", "/api/v1/compliance/policies/" + p.id, body) : await Api.post("/api/v1/compliance/policies", body);
        try { await Api.post("/api/v1/compliance/evaluate"); } catch (e) { /* evaluation needs the operator role; the schedule does it too */ }
        toast(editing ? "Policy saved" : "Policy created");
        location.hash = "#/policy/" + saved.id;
      } catch (e) { err.textContent = e.message; }
    } },
      el("div.form-row", {}, el("label", {}, "Name", name), el("label", {}, "Description", desc), el("label.inline", {}, enabled, "Enabled")),
      el("h3", {}, "Rules"),
      flat ? null : el("p.muted", {}, "These rules are nested: edit them as JSON."),
      builder,
      el("details", { open: !flat }, el("summary", {}, "Rules as JSON (nesting, names)"), json,
        el("p.muted", {}, "What is saved. The builder above rewrites it; edit it by hand for nested all/any.")),
      el("h3", {}, "Scope"), el("div.form-row", {}, el("label", {}, "Applies to", scopeKind), scopeGroups, scopeDevices),
      el("h3", {}, "After non-compliance"),
      el("label", {}, "Grace period before actions (hours)", grace),
      actionInputs.map((x) => x.node),
      el("div.wipe-optin", {}, el("label.inline", {}, wipeEnabled, el("strong", {}, "Allow this policy to erase devices (wipe opt-in)")),
        el("p.muted", {}, "Off by default; without it a wipe action is refused, and it is checked again before any wipe.")),
      el("div.actions", {}, el("button", { type: "submit", id: "policy-save" }, editing ? "Save" : "Create policy")), err));
  if (flat && !p.rules) sync();
}
