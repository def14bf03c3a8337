/* profiles.js: the profiles and groups pages and the convergence views (per
   profile, and per device for the device page), on the profiles API
   (docs/profiles.md). Loaded after app.js, whose pages table it adds to;
   builds DOM with el() only, so names and payload values stay text. */
"use strict";

const CONVERGENCE_STATES = ["installed", "installing", "removing", "error", "not_applicable"];

/* Counts of a list of profile states: should (desired), has (installed),
   pending (installing or removing), failed (error), held (not applicable). */
function convergenceCounts(states) {
  const c = { should: 0, has: 0, pending: 0, failed: 0, held: 0 };
  for (const s of states) {
    if (s.desired_version !== null && s.desired_version !== undefined) c.should++;
    if (s.state === "installed") c.has++;
    else if (s.state === "installing" || s.state === "removing") c.pending++;
    else if (s.state === "error") c.failed++;
    else if (s.state === "not_applicable") c.held++;
  }
  return c;
}

function convergenceFigures(c, id) {
  return el("div.grid", { id },
    figure(c.should, "should have"),
    figure(c.has, "installed", c.has < c.should ? "warn" : ""),
    figure(c.pending, "pending", c.pending ? "warn" : ""),
    figure(c.failed, "failed", c.failed ? "bad" : ""),
    c.held ? figure(c.held, "held back (supervised only)") : null);
}

/* The device page's profiles panel: {node, reload}. */
function deviceConvergence(id) {
  const node = el("div", { id: "device-convergence" }, el("p.muted", {}, "Loading…"));
  async function reload() {
    try {
      const r = await Api.get(`/api/v1/devices/${enc(id)}/profiles`);
      const states = r.profiles || [];
      node.replaceChildren(
        convergenceFigures(convergenceCounts(states), "device-convergence-figures"),
        el("h3", {}, "Steward's profiles on this device"),
        table([
          { label: "Profile", value: (s) => el("a", { href: "#/profile/" + enc(s.profile) }, s.profile) },
          { label: "State", value: (s) => pill(s.state) },
          { label: "Should have", value: (s) => s.desired_version === null ? "no (to remove)" : "version " + s.desired_version },
          { label: "Installed", value: (s) => s.installed_version === null ? "—" : "version " + s.installed_version },
          { label: "Last action", value: (s) => s.action },
          { label: "Detail", value: (s) => s.detail, wrap: true },
          { label: "Updated", value: (s) => fmtTime(s.updated_at) },
        ], states),
        el("h3", {}, "Profiles the device last reported"),
        table([
          { label: "Identifier", value: (p) => p.identifier, wrap: true },
          { label: "Managed by Steward", value: (p) => p.steward ? pill("true") : "no" },
        ], r.reported || []));
    } catch (e) {
      node.replaceChildren(el("p.error", {}, e.message));
    }
  }
  return { node, reload };
}

/* ---- the profiles list and upload ------------------------------------------ */

function fileToBase64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ""));
    r.onerror = () => reject(new Error("could not read " + file.name));
    r.readAsDataURL(file);
  });
}

/* The upload form: a .mobileconfig (signed or not) or a JSON build spec,
   from a file or typed in. */
function profileUploadForm() {
  const file = el("input", { id: "profile-file", type: "file", accept: ".mobileconfig,.plist,.json,application/x-apple-aspen-config" });
  const spec = el("textarea", { id: "profile-spec", rows: 5, placeholder: '{"identifier": "com.example.wifi", "display_name": "Wi-Fi", "payloads": [{"PayloadType": "com.apple.wifi.managed", "SSID_STR": "corp", "EncryptionType": "WPA2"}]}' });
  const err = el("p.error", { id: "profile-upload-error", role: "alert" });
  return el("form.card.upload", {
    id: "profile-upload",
    onsubmit: async (ev) => {
      ev.preventDefault();
      err.textContent = "";
      try {
        let body;
        if (file.files.length) {
          const f = file.files[0];
          body = /\.json$/i.test(f.name) ? parseJson(await f.text(), f.name) : { import: await fileToBase64(f) };
        } else if (spec.value.trim()) {
          body = parseJson(spec.value, "Build spec");
        } else {
          throw new Error("choose a profile file or type a JSON build spec");
        }
        const p = await Api.post("/api/v1/profiles", body);
        toast(`Stored ${p.identifier}, version ${p.version}`);
        location.hash = "#/profile/" + enc(p.identifier);
      } catch (e) {
        err.textContent = e.message;
      }
    },
  }, el("h2", {}, "Upload or build a profile"),
    el("p.muted", {}, "A .mobileconfig (XML, binary or signed), or a JSON build spec (see docs/profiles.md). Uploading an identifier again stores a new version."),
    el("label", {}, "Profile file", file),
    el("label", {}, "…or a JSON build spec", spec),
    el("div.actions", {}, el("button", { type: "submit", id: "profile-upload-submit" }, "Upload")), err);
}

pages.profiles = async () => {
  const r = await Api.get("/api/v1/profiles");
  main().replaceChildren(el("h1", {}, "Profiles"),
    el("p.muted", {}, "Configuration profiles, installed on the devices of the groups they are assigned to."),
    Api.can("operator") ? profileUploadForm() : null,
    el("div", { id: "profile-list" }, table([
      { label: "Name", value: (p) => p.display_name || p.identifier, wrap: true },
      { label: "Identifier", value: (p) => p.identifier, wrap: true },
      { label: "Version", value: (p) => p.version },
      { label: "Payloads", value: (p) => (p.payload_types || []).join(", "), wrap: true },
      { label: "Groups", value: (p) => p.groups },
      { label: "Source", value: (p) => p.source },
      { label: "Updated", value: (p) => fmtTime(p.updated_at) },
    ], r.profiles || [], (p) => { location.hash = "#/profile/" + enc(p.identifier); })));
};

/* ---- one profile ---------------------------------------------------------------- */

function valueText(v) {
  return v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
}

function payloadCard(p, i) {
  const keys = Object.keys(p).filter((k) => k !== "PayloadType" && k !== "PayloadDisplayName");
  return el("div.card.payload", {},
    el("h3", {}, `${i + 1}. ${p.PayloadDisplayName || p.PayloadType || "payload"}`),
    el("p.muted", {}, p.PayloadType || ""),
    el("dl.kv", {}, keys.map((k) => [el("dt", {}, k), el("dd", {}, valueText(p[k]))])));
}

/* The groups a profile is assigned to (each group's detail names its profiles). */
async function groupsOfProfile(identifier, groups) {
  const details = await Promise.all(groups.slice(0, 100).map((g) => Api.get("/api/v1/groups/" + enc(g.name)).catch(() => null)));
  return details.filter((g) => g && (g.profile_ids || []).includes(identifier)).map((g) => g.name);
}

pages.profile = async (identifier) => {
  const [p, status, groups] = await Promise.all([
    Api.get("/api/v1/profiles/" + enc(identifier)),
    Api.get(`/api/v1/profiles/${enc(identifier)}/status`),
    Api.get("/api/v1/groups"),
  ]);
  const op = Api.can("operator");
  const assigned = await groupsOfProfile(identifier, groups.groups || []);
  const content = p.content || {};
  const payloads = Array.isArray(content.PayloadContent) ? content.PayloadContent : [];
  const groupSel = el("select", { id: "assign-group" }, (groups.groups || []).filter((g) => !assigned.includes(g.name)).map((g) => el("option", { value: g.name }, g.name)));
  const kv = [["Identifier", p.identifier], ["Version", p.version], ["Source", p.source], ["Signed by", p.signer],
    ["Payload types", (p.payload_types || []).join(", ")], ["Holds secrets", p.has_secrets ? "yes (encrypted per device, never shown)" : "no"],
    ["Supervised only", p.supervised_only ? "yes" : "no"], ["Updated", fmtTime(p.updated_at)]];
  main().replaceChildren(
    el("p", {}, el("a", { href: "#/profiles" }, "← Profiles")),
    el("h1", { id: "profile-title" }, p.display_name || p.identifier),
    el("div.card", {}, el("dl.kv", {}, kv.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v === undefined || v === null || v === "" ? "—" : String(v))])),
      (p.flags || []).length ? el("ul.flags", {}, p.flags.map((f) => el("li", {}, f))) : null,
      el("div.actions", {},
        el("a", { href: `/api/v1/profiles/${enc(identifier)}/mobileconfig`, download: identifier + ".mobileconfig" }, "Download signed .mobileconfig"),
        el("button.danger", { id: "profile-delete", disabled: !op, onclick: async () => {
          if (!(await confirmDialog("Delete profile", `Delete every version of ${identifier}? Devices that have it get a RemoveProfile.`, "Delete", identifier))) return;
          try { await Api.del("/api/v1/profiles/" + enc(identifier)); toast("Deleted"); location.hash = "#/profiles"; } catch (e) { toast(e.message, true); }
        } }, "Delete…"))),
    el("h2.section", {}, "Assigned to groups"),
    el("div.card", { id: "profile-groups" },
      assigned.length ? el("div.actions", {}, assigned.map((g) => el("span.chip", {}, el("a", { href: "#/group/" + enc(g) }, g),
        op ? el("button.link", { title: "unassign", "aria-label": "unassign from " + g, onclick: async () => {
          try { await Api.del(`/api/v1/groups/${enc(g)}/profiles/${enc(identifier)}`); toast(`Unassigned from ${g}`); route(); } catch (e) { toast(e.message, true); }
        } }, "×") : null))) : el("p.muted", {}, "Not assigned: no device gets it yet."),
      op && !groupSel.options.length ? el("p.muted", {}, "No other group to assign it to: create one on the Groups page.") : null,
      op && groupSel.options.length ? el("form.form-row", { onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          const r = await Api.post(`/api/v1/groups/${enc(groupSel.value)}/profiles`, { profile: identifier });
          const c = r.convergence || {};
          toast(`Assigned to ${groupSel.value}: ${c.installs || 0} install(s) queued`);
          route();
        } catch (e) { toast(e.message, true); }
      } }, el("label", {}, "Group", groupSel), el("button", { type: "submit", id: "assign-submit" }, "Assign")) : null),
    el("h2.section", {}, "Convergence"),
    convergenceFigures(convergenceCounts(status.devices || []), "profile-convergence-figures"),
    el("div", { id: "profile-status" }, table([
      { label: "Device", value: (s) => el("a", { href: "#/device/" + enc(s.device) }, s.device) },
      { label: "State", value: (s) => pill(s.state) },
      { label: "Should have", value: (s) => s.desired_version === null ? "no (to remove)" : "version " + s.desired_version },
      { label: "Installed", value: (s) => s.installed_version === null ? "—" : "version " + s.installed_version },
      { label: "Detail", value: (s) => s.detail, wrap: true },
      { label: "Updated", value: (s) => fmtTime(s.updated_at) },
    ], status.devices || [])),
    el("h2.section", {}, `Payloads (${payloads.length})`),
    el("div.payloads", { id: "profile-payloads" }, payloads.length ? payloads.map(payloadCard) : el("p.muted", {}, "No payloads.")));
};

/* ---- groups ------------------------------------------------------------------------ */

function rulesText(rules) {
  if (rules === null || rules === undefined) return "static members only";
  const keys = Object.keys(rules);
  if (!keys.length) return "every enrolled device";
  return keys.map((k) => `${k}: ${valueText(rules[k])}`).join("; ");
}

pages.groups = async () => {
  const r = await Api.get("/api/v1/groups");
  const op = Api.can("operator");
  const name = el("input", { id: "group-name", placeholder: "e.g. sales" });
  const desc = el("input", { id: "group-description", placeholder: "optional" });
  const rules = el("textarea", { id: "group-rules", rows: 2, placeholder: '{"os_min": "17.0", "attributes": {"dept": "sales"}} (empty: static members only)' });
  main().replaceChildren(el("h1", {}, "Groups"),
    el("p.muted", {}, "A device is in a group as a static member or when the group's rules match it; it gets the profiles assigned to its groups."),
    op ? el("form.card.upload", { id: "group-create", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const body = { name: name.value };
        if (desc.value) body.description = desc.value;
        if (rules.value.trim()) body.rules = parseJson(rules.value, "Rules");
        await Api.post("/api/v1/groups", body);
        toast("Group created");
        location.hash = "#/group/" + enc(name.value);
      } catch (e) { toast(e.message, true); }
    } }, el("h2", {}, "New group"),
      el("div.form-row", {}, el("label", {}, "Name", name), el("label", {}, "Description", desc)),
      el("label", {}, "Rules (JSON, see docs/profiles.md)", rules),
      el("div.actions", {}, el("button", { type: "submit", id: "group-create-submit" }, "Create group"))) : null,
    el("div", { id: "group-list" }, table([
      { label: "Name", value: (g) => g.name },
      { label: "Description", value: (g) => g.description, wrap: true },
      { label: "Rules", value: (g) => rulesText(g.rules), wrap: true },
      { label: "Static members", value: (g) => g.members },
      { label: "Profiles", value: (g) => g.profiles },
      { label: "Created", value: (g) => fmtTime(g.created_at) },
    ], r.groups || [], (g) => { location.hash = "#/group/" + enc(g.name); })));
};

pages.group = async (name) => {
  const [g, profiles] = await Promise.all([Api.get("/api/v1/groups/" + enc(name)), Api.get("/api/v1/profiles")]);
  const op = Api.can("operator");
  const converged = (r, what) => { const c = (r && r.convergence) || {}; toast(`${what}: ${c.installs || 0} install(s), ${c.removes || 0} removal(s) queued`); route(); };
  const member = el("input", { id: "member-id", placeholder: "device id (UDID)" });
  const profSel = el("select", { id: "group-profile" }, (profiles.profiles || []).filter((p) => !(g.profile_ids || []).includes(p.identifier))
    .map((p) => el("option", { value: p.identifier }, `${p.display_name || p.identifier} (${p.identifier})`)));
  const rules = el("textarea", { id: "group-rules-edit", rows: 3 }, g.rules === null ? "" : JSON.stringify(g.rules, null, 1));
  const desc = el("input", { id: "group-description-edit", value: g.description || "" });
  main().replaceChildren(
    el("p", {}, el("a", { href: "#/groups" }, "← Groups")),
    el("h1", { id: "group-title" }, g.name),
    el("div.card", {}, el("dl.kv", {},
      el("dt", {}, "Description"), el("dd", {}, g.description || "—"),
      el("dt", {}, "Rules"), el("dd", {}, rulesText(g.rules)),
      el("dt", {}, "On entering"), el("dd", {}, g.enter_settings ? JSON.stringify(g.enter_settings) : "—"),
      el("dt", {}, "On leaving"), el("dd", {}, g.leave_settings ? JSON.stringify(g.leave_settings) : "—"),
      el("dt", {}, "Created"), el("dd", {}, fmtTime(g.created_at))),
      op ? el("form", { id: "group-edit", onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          const body = { description: desc.value || null, rules: rules.value.trim() ? parseJson(rules.value, "Rules") : null,
            enter_settings: g.enter_settings, leave_settings: g.leave_settings };
          converged(await Api.call("PUT", "/api/v1/groups/" + enc(name), body), "Saved");
        } catch (e) { toast(e.message, true); }
      } }, el("h3", {}, "Edit"), el("label", {}, "Description", desc), el("label", {}, "Rules (JSON; empty: static members only)", rules),
        el("div.actions", {}, el("button", { type: "submit" }, "Save"),
          el("button.danger", { type: "button", id: "group-delete", onclick: async () => {
            if (!(await confirmDialog("Delete group", `Delete ${name}? Its devices lose the profiles it gave them.`, "Delete"))) return;
            try { await Api.del("/api/v1/groups/" + enc(name)); toast("Deleted"); location.hash = "#/groups"; } catch (e) { toast(e.message, true); }
          } }, "Delete group"))) : null),
    el("h2.section", {}, "Profiles"),
    el("div.card", { id: "group-profiles" },
      (g.profile_ids || []).length ? table([
        { label: "Profile", value: (p) => el("a", { href: "#/profile/" + enc(p) }, p) },
        { label: "", value: (p) => op ? el("button.link", { onclick: async () => {
          try { converged(await Api.del(`/api/v1/groups/${enc(name)}/profiles/${enc(p)}`), "Unassigned"); } catch (e) { toast(e.message, true); }
        } }, "Unassign") : "" },
      ], g.profile_ids) : el("p.muted", {}, "No profile assigned."),
      op && !profSel.options.length ? el("p.muted", {}, "No other profile to assign: upload one on the Profiles page.") : null,
      op && profSel.options.length ? el("form.form-row", { onsubmit: async (ev) => {
        ev.preventDefault();
        try { converged(await Api.post(`/api/v1/groups/${enc(name)}/profiles`, { profile: profSel.value }), "Assigned"); } catch (e) { toast(e.message, true); }
      } }, el("label", {}, "Profile", profSel), el("button", { type: "submit", id: "group-assign-submit" }, "Assign profile")) : null),
    el("h2.section", {}, `Devices (${g.devices_total || 0})`),
    el("div.card", { id: "group-devices" },
      el("p.muted", {}, g.rules === null ? "The enrolled static members." : "The enrolled static members, plus every enrolled device the rules match."),
      (g.device_ids || []).length ? table([
        { label: "Device", value: (d) => el("a", { href: "#/device/" + enc(d) }, d) },
        { label: "Why", value: (d) => (g.member_ids || []).includes(d) ? "static member" : "rules" },
      ], g.device_ids) : el("p.muted", {}, "No device is in this group."),
      (g.devices_total || 0) > (g.device_ids || []).length ? el("p.muted", {}, `The first ${g.device_ids.length} shown.`) : null),
    el("h2.section", {}, "Static members"),
    el("div.card", { id: "group-members" },
      table([
        { label: "Device", value: (m) => el("a", { href: "#/device/" + enc(m) }, m) },
        { label: "", value: (m) => op ? el("button.link", { onclick: async () => {
          try { converged(await Api.del(`/api/v1/groups/${enc(name)}/members/${enc(m)}`), "Removed"); } catch (e) { toast(e.message, true); }
        } }, "Remove") : "" },
      ], g.member_ids || []),
      op ? el("form.form-row", { onsubmit: async (ev) => {
        ev.preventDefault();
        try { converged(await Api.post(`/api/v1/groups/${enc(name)}/members`, { devices: [member.value.trim()] }), "Added"); } catch (e) { toast(e.message, true); }
      } }, el("label", {}, "Add a device", member), el("button", { type: "submit", id: "member-add-submit" }, "Add member")) : null));
};
