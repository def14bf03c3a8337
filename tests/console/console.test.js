// console.test.js: the web console end to end in headless Chromium, driven by
// tests/integration/test_console.sh (which starts steward, enrolls devices with
// steward-devsim and makes the users). Signs in, reads the dashboard, finds a
// devsim device, sends DeviceInformation and sees the answer, locks with
// confirmation, checks the typed confirmation of a wipe, that a viewer cannot
// send commands, that markup in a device name stays text, and the phone layout.
// Profiles and groups: a profile built in the console (its name is markup), a
// signed .mobileconfig uploaded as a file (signer and payload shown),
// a group with the devsim device, rules edited on the group's page bringing a
// second device in (an attribute), the assignment and the device's convergence
// (installing, then installed after the device checks in). Compliance: a
// policy made in the editor (markup in its name), scoped to the group, finds the device
// non-compliant with the observed value; the dashboard's compliance figure and
// chart; the editor reloading the policy, and relaxing it making the device
// compliant again (both transitions in its history); clear passcode, mark lost and the typed wipe; a viewer's disabled
// buttons and refused calls.
// Screenshots go to $SHOTS. Exits non-zero on the first failed expectation.
"use strict";
const { chromium } = require("playwright-core");
const { execFileSync } = require("child_process");
const path = require("path");

const URL = process.env.CONSOLE_URL;
const SHOTS = process.env.SHOTS;
const DEVICE = process.env.DEVICE_ID;
const XSS_DEVICE = process.env.XSS_DEVICE_ID;
const NO_TOKEN_DEVICE = process.env.NO_TOKEN_DEVICE_ID || "";
const OTHER_DEVICE = process.env.OTHER_DEVICE_ID || "";
const PROFILE_ID = "com.steward.test.console";
const MARKUP = '<img src=x onerror="window.__xss=3">';
const textOf = (page, sel) => page.textContent(sel).then((t) => t || "");
let checks = 0;
function expect(what, ok, detail) {
  if (!ok) throw new Error(`FAIL: ${what}${detail ? ": " + detail : ""}`);
  checks++;
}
const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true });

async function signIn(page, user, password) {
  await page.goto(URL + "/console/");
  await page.waitForSelector("#signin-form");
  await page.fill("#signin-user", user);
  await page.fill("#signin-password", password);
  await page.click("#signin-submit");
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
  const page = await ctx.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("dialog", (d) => { pageErrors.push("unexpected dialog: " + d.message()); d.dismiss(); });

  // a wrong password is refused on the page
  await signIn(page, "ops", "not the password");
  await page.waitForFunction(() => document.getElementById("signin-error").textContent.length > 0);
  expect("wrong password message", (await page.textContent("#signin-error")).includes("wrong user name or password"));

  // sign in: the dashboard with figures and charts
  await signIn(page, "ops", "operator pass 1");
  await page.waitForSelector("#figures");
  const figures = await page.textContent("#figures");
  expect("dashboard shows enrolled devices", /3\s*enrolled devices/.test(figures), figures);
  expect("check-in chart drawn", (await page.locator(".chart svg rect.bar").count()) === 24);
  expect("OS chart drawn", (await page.locator(".chart svg path").count()) >= 1);
  expect("operator sees no admin pages", !(await page.isVisible("#nav a[data-page=audit]")));
  await shot(page, "01-dashboard");

  // find the devsim device and open it
  await page.click("#nav a[data-page=devices]");
  await page.waitForSelector("#device-results table");
  await page.fill("#device-search", DEVICE.slice(0, 12));
  await page.waitForFunction((id) => {
    const rows = document.querySelectorAll("#device-results tbody tr.click");
    return rows.length === 1;
  }, DEVICE);
  await shot(page, "02-devices");
  await page.click("#device-results tbody tr.click");
  await page.waitForSelector("#device-title");
  expect("device page", page.url().includes("#/device/" + encodeURIComponent(DEVICE)));
  expect("wipe needs admin", await page.isDisabled("#act-wipe"));
  expect("unenroll needs admin", await page.isDisabled("#act-unenroll"));
  expect("operator may push", !(await page.isDisabled("#act-push")));

  // send DeviceInformation; the device answers; the result shows
  await page.click("#act-query");
  await page.waitForFunction(() => document.querySelector("#device-commands")?.textContent.includes("DeviceInformation"));
  expect("query pending", (await page.textContent("#device-commands")).includes("Pending"));
  execFileSync("bash", ["-c", process.env.DEVSIM_CONNECT]);
  await page.reload();
  await page.waitForFunction(() => document.querySelector("#device-commands")?.textContent.includes("Acknowledged"));
  await page.click("#device-commands tbody tr.click");
  await page.waitForSelector("#device-commands pre.result");
  expect("result shown", (await page.textContent("#device-commands pre.result")).includes("QueryResponses"));
  await page.click("button[data-section=device]");
  await page.waitForSelector("#device-section dl.kv");
  const section = await page.textContent("#device-section");
  expect("inventory section shows the answer", section.includes("OSVersion") || section.includes("os_version"), section.slice(0, 300));
  await shot(page, "03-device-answered");

  // lock with confirmation: cancel first, then confirm
  await page.click("#act-lock");
  await page.click("#confirm-cancel");
  await page.click("#act-lock");
  await page.waitForSelector("#confirm-ok");
  await shot(page, "04-lock-confirm");
  await page.click("#confirm-ok");
  await page.waitForFunction(() => document.querySelector("#device-commands")?.textContent.includes("DeviceLock"));
  expect("exactly one lock queued", (await page.locator("#device-commands td", { hasText: /^DeviceLock$/ }).count()) === 1);

  // a profile built in the console: its name is markup, shown as text
  await page.click("#nav a[data-page=profiles]");
  await page.waitForSelector("#profile-upload");
  await page.fill("#profile-spec", JSON.stringify({ identifier: PROFILE_ID, display_name: MARKUP + " restrictions",
    payloads: [{ PayloadType: "com.apple.applicationaccess", allowCamera: false }] }));
  await page.click("#profile-upload-submit");
  await page.waitForSelector("#profile-title");
  expect("profile name shown as text", (await textOf(page, "#profile-title")).includes("<img"));
  expect("no element injected in the profile name", (await page.locator("#profile-title img").count()) === 0);
  expect("payload shown", (await textOf(page, "#profile-payloads")).includes("allowCamera"));
  // a signed .mobileconfig uploaded as a file
  await page.click("#nav a[data-page=profiles]");
  await page.setInputFiles("#profile-file", process.env.IMPORT_FILE);
  await page.click("#profile-upload-submit");
  await page.waitForFunction(() => (document.querySelector("#profile-title")?.textContent || "") === "Imported clip");
  const imported = await textOf(page, "main");
  expect("imported profile's signer shown", imported.includes("Configurator Signer"));
  expect("imported payload shown", (await textOf(page, "#profile-payloads")).includes("intranet.example.com"));
  // a group with the devsim device as a static member
  await page.click("#nav a[data-page=groups]");
  await page.waitForSelector("#group-create");
  await page.fill("#group-name", "console-group");
  await page.click("#group-create-submit");
  await page.waitForSelector("#group-title");
  await page.fill("#member-id", DEVICE);
  await page.click("#member-add-submit");
  await page.waitForFunction((id) => document.querySelector("#group-members")?.textContent.includes(id), DEVICE);
  await page.waitForFunction((id) => document.querySelector("#group-devices")?.textContent.includes(id), DEVICE);
  expect("the static member is among the group's devices", (await textOf(page, "#group-devices")).includes("static member"));
  // rules edited on the group's page: a custom attribute brings a second device in
  expect("attribute set", await page.evaluate((id) => Api.call("PUT", `/api/v1/devices/${encodeURIComponent(id)}/attributes/dept`, { value: "sales" }).then(() => 1, (e) => e.status), XSS_DEVICE) === 1);
  await page.fill("#group-rules-edit", JSON.stringify({ attributes: { dept: "sales" } }));
  await page.click("#group-edit button[type=submit]");
  await page.waitForFunction((id) => document.querySelector("#group-devices")?.textContent.includes(id), XSS_DEVICE);
  const groupDevices = await textOf(page, "#group-devices");
  expect("the rule-matched device shown as such", groupDevices.includes("rules") && groupDevices.includes("static member"), groupDevices.slice(0, 300));
  expect("the other devsim device is not in the group", !OTHER_DEVICE || !groupDevices.includes(OTHER_DEVICE));
  expect("the group's rules shown", (await textOf(page, "main")).includes("attributes"));
  expect("the static members unchanged", !(await textOf(page, "#group-members")).includes(XSS_DEVICE));
  await shot(page, "08-group-devices");
  // assign the profile to the group from the profile's page
  await page.goto(URL + "/console/#/profile/" + PROFILE_ID);
  await page.waitForSelector("#assign-group");
  await page.selectOption("#assign-group", "console-group");
  await page.click("#assign-submit");
  await page.waitForFunction(() => document.querySelector("#profile-groups")?.textContent.includes("console-group"));
  await page.waitForFunction((id) => document.querySelector("#profile-status")?.textContent.includes(id), DEVICE);
  expect("the device is installing the profile", (await textOf(page, "#profile-status")).includes("installing"));
  await shot(page, "09-profile-assigned");
  // the device's convergence: pending, then installed once it checked in
  await page.goto(URL + "/console/#/device/" + encodeURIComponent(DEVICE));
  await page.waitForFunction((p) => document.querySelector("#device-convergence")?.textContent.includes(p), PROFILE_ID);
  let conv = await textOf(page, "#device-convergence");
  expect("convergence pending on the device page", conv.includes("installing") && /1\s*should have/.test(conv), conv.slice(0, 300));
  execFileSync("bash", ["-c", process.env.DEVSIM_CONNECT]);
  await page.reload();
  await page.waitForFunction((p) => document.querySelector("#device-convergence")?.textContent.includes(p), PROFILE_ID);
  conv = await textOf(page, "#device-convergence");
  expect("convergence done after the check-in", conv.includes("installed") && !conv.includes("installing") && /1\s*installed/.test(conv), conv.slice(0, 300));
  await shot(page, "10-device-convergence");

  // clearing a passcode and erasing are admin's, typed commands included
  await page.goto(URL + "/console/#/device/" + encodeURIComponent(XSS_DEVICE));
  await page.waitForSelector("#device-title");
  expect("operator cannot clear a passcode", await page.isDisabled("#act-clear-passcode"));
  expect("the API refuses an operator's typed ClearPasscode", await page.evaluate((id) => Api.post("/api/v1/commands", { devices: [id], request_type: "ClearPasscode" }).then(() => 0, (e) => e.status), XSS_DEVICE) === 403);
  expect("the API refuses an operator's typed EraseDevice", await page.evaluate((id) => Api.post("/api/v1/commands", { devices: [id], request_type: "EraseDevice", confirm: true }).then(() => 0, (e) => e.status), XSS_DEVICE) === 403);
  // mark lost: lock with message and phone, no erase
  await page.click("#act-lost");
  await page.fill("#dialog-message", "Lost: please return");
  await page.fill("#dialog-phone", "+1 555 0100");
  await page.click("#dialog-ok");
  await page.waitForSelector("#device-lost");
  expect("lost shown with its phone", (await textOf(page, "#device-lost")).includes("+1 555 0100"));
  await page.waitForFunction(() => (document.querySelector("#device-commands")?.textContent || "").includes("DeviceLock"));
  expect("lost mode never erases", !(await textOf(page, "#device-commands")).includes("EraseDevice"));
  await shot(page, "11-device-lost");
  expect("an operator cannot create policies", await page.evaluate(() => Api.post("/api/v1/compliance/policies", { name: "x", rules: { type: "passcode" } }).then(() => 0, (e) => e.status)) === 403);

  // markup in a device name stays text
  await page.goto(URL + "/console/#/device/" + encodeURIComponent(XSS_DEVICE));
  await page.waitForSelector("#device-title");
  expect("markup shown as text", (await page.textContent("#device-title")).includes("<img"));
  expect("no element injected", (await page.locator("#device-title img").count()) === 0);
  await page.goto(URL + "/console/#/devices");
  await page.waitForSelector("#device-results table");
  await page.waitForTimeout(300);
  expect("script never ran", await page.evaluate(() => window.__xss === undefined));
  await page.click("#signout");
  await page.waitForSelector("#signin-form");

  // an admin: typed confirmation before a wipe, the audit log shows the lock
  await signIn(page, "root", "admin pass 12");
  await page.waitForSelector("#figures");
  await page.goto(URL + "/console/#/device/" + encodeURIComponent(DEVICE));
  await page.waitForSelector("#act-wipe:not([disabled])");
  await page.click("#act-wipe");
  await page.waitForSelector("#confirm-input");
  expect("erase disabled until typed", await page.isDisabled("#confirm-ok"));
  await page.fill("#confirm-input", "wrong");
  expect("wrong text keeps it disabled", await page.isDisabled("#confirm-ok"));
  await page.click("#confirm-cancel");

  // a compliance policy made in the editor; its name is markup
  await page.click("#nav a[data-page=compliance]");
  await page.click("#policy-new");
  await page.waitForSelector("#policy-form");
  await page.fill("#policy-name", MARKUP + " OS");
  await page.selectOption("#policy-rule-rows .rule-type", "os_version");
  await page.fill("#policy-rule-rows input[data-key=min]", "99.0");
  expect("rules JSON follows the builder", JSON.parse(await page.inputValue("#policy-rules-json")).min === "99.0");
  expect("wipe action off until opted in", await page.isDisabled("#action-wipe"));
  await page.check("#policy-wipe-enabled");
  expect("wipe action offered after the opt-in", !(await page.isDisabled("#action-wipe")));
  await page.uncheck("#policy-wipe-enabled");
  await page.check("#action-notify");
  // scoped to the group: its static member and its rule-matched device, nobody else
  await page.selectOption("#policy-scope", "groups");
  await page.check("#policy-scope-groups input[value=console-group]");
  await shot(page, "12-policy-editor");
  await page.click("#policy-save");
  await page.waitForSelector("#policy-title");
  expect("policy name shown as text", (await textOf(page, "#policy-title")).includes("<img"));
  expect("no element injected in the policy name", (await page.locator("#policy-title img").count()) === 0);
  expect("wipe shown as not enabled", (await textOf(page, "#policy-wipe")).includes("never"));
  await page.waitForFunction((id) => document.querySelector("#policy-states")?.textContent.includes(id), DEVICE);
  const states = await textOf(page, "#policy-states");
  expect("the devsim device is non-compliant with the observed OS", states.includes("noncompliant") && /\d+\.\d/.test(states), states.slice(0, 400));
  expect("a device outside the group is out of scope", !OTHER_DEVICE || !states.includes(OTHER_DEVICE), states.slice(0, 400));
  expect("the scope names the group", (await textOf(page, "main")).includes("groups: console-group"));
  const policyFigures = await textOf(page, "#policy-figures");
  expect("two devices in scope", /\b2\s*devices in scope/.test(policyFigures), policyFigures);
  await shot(page, "13-policy-states");
  await page.click("#nav a[data-page=dashboard]");
  await page.waitForSelector("#compliance-chart svg");
  expect("non-compliant by policy chart", (await page.locator("#compliance-charts svg rect.bar").count()) === 1);
  const figs = await textOf(page, "#figures");
  expect("dashboard shows out-of-compliance devices", /[1-9]\d*\s*out of compliance/.test(figs), figs);
  await shot(page, "14-dashboard-compliance");
  await page.goto(URL + "/console/#/device/" + encodeURIComponent(DEVICE));
  await page.waitForFunction(() => (document.querySelector("#device-compliance")?.textContent || "").includes("noncompliant"));
  // the editor loads the stored policy; a reachable minimum makes the device compliant again
  await page.click("#nav a[data-page=compliance]");
  await page.waitForSelector("#policy-list table");
  await page.click("#policy-list tbody tr.click");
  await page.click("#policy-edit");
  await page.waitForSelector("#policy-form");
  expect("editor shows the stored rule", (await page.inputValue("#policy-rule-rows input[data-key=min]")) === "99.0");
  expect("editor keeps the notify action", await page.isChecked("#action-notify"));
  await page.fill("#policy-rule-rows input[data-key=min]", "1.0");
  await page.click("#policy-save");
  await page.waitForFunction(() => (document.querySelector("#policy-rules")?.textContent || "").includes("min 1.0"));
  expect("the device is compliant again", !(await textOf(page, "#policy-states")).includes(DEVICE));
  await page.goto(URL + "/console/#/device/" + encodeURIComponent(DEVICE));
  await page.waitForFunction(() => /Overall:\s*compliant/.test(document.querySelector("#device-compliance")?.textContent || ""));
  expect("the device's history shows both transitions", /noncompliant\s*→\s*compliant/.test(await textOf(page, "#device-compliance")));
  // clear passcode: enabled where steward holds the UnlockToken, confirmed first
  if (NO_TOKEN_DEVICE) {
    await page.goto(URL + "/console/#/device/" + encodeURIComponent(NO_TOKEN_DEVICE));
    await page.waitForSelector("#device-title");
    expect("clear passcode disabled without an UnlockToken", await page.isDisabled("#act-clear-passcode"));
  }
  await page.goto(URL + "/console/#/device/" + encodeURIComponent(XSS_DEVICE));
  await page.waitForSelector("#act-clear-passcode:not([disabled])");
  await page.click("#act-clear-passcode");
  await page.click("#confirm-cancel");
  await page.click("#act-clear-passcode");
  await page.click("#confirm-ok");
  await page.waitForFunction(() => (document.querySelector("#device-commands")?.textContent || "").includes("ClearPasscode"));
  expect("exactly one ClearPasscode queued", (await page.locator("#device-commands td", { hasText: /^ClearPasscode$/ }).count()) === 1);
  // the wipe, a separate typed step
  await page.waitForSelector("#act-wipe:not([disabled])");
  await page.click("#act-wipe");
  await page.fill("#confirm-input", "XSS0001");
  await page.click("#confirm-ok");
  await page.waitForFunction(() => (document.querySelector("#device-commands")?.textContent || "").includes("EraseDevice"));
  await page.click("#nav a[data-page=pushcerts]");
  await page.waitForSelector("h1:text('Push certificates')");
  await page.click("#nav a[data-page=enrollusers]");
  await page.waitForSelector("h1:text('Enrollment users')");
  await page.click("#nav a[data-page=audit]");
  await page.waitForSelector("#audit-results table");
  const audit = await page.textContent("#audit-results");
  expect("audit shows the console's commands", audit.includes("user:ops") && audit.includes("POST /api/v1/commands"), audit.slice(0, 300));
  await shot(page, "05-audit");
  await page.click("#signout");

  // a viewer: can look, cannot send
  await signIn(page, "watcher", "viewer pass 1");
  await page.waitForSelector("#figures");
  await page.goto(URL + "/console/#/device/" + encodeURIComponent(DEVICE));
  await page.waitForSelector("#device-title");
  expect("viewer cannot query", await page.isDisabled("#act-query"));
  expect("viewer cannot lock", await page.isDisabled("#act-lock"));
  for (const b of ["#act-clear-passcode", "#act-lost", "#act-wipe", "#act-unenroll", "#act-push"])
    expect("viewer sees " + b + " disabled", await page.isDisabled(b));
  await page.waitForFunction(() => /Overall:\s*compliant/.test(document.querySelector("#device-compliance")?.textContent || ""));
  await page.click("#nav a[data-page=profiles]");
  await page.waitForSelector("#profile-list table");
  expect("viewer has no upload form", (await page.locator("#profile-upload").count()) === 0);
  await page.goto(URL + "/console/#/profile/" + PROFILE_ID);
  await page.waitForSelector("#profile-title");
  expect("viewer cannot delete a profile", await page.isDisabled("#profile-delete"));
  expect("viewer cannot assign", (await page.locator("#assign-submit").count()) === 0);
  await page.click("#nav a[data-page=compliance]");
  await page.waitForSelector("#policy-list table");
  expect("viewer cannot create a policy", await page.isDisabled("#policy-new"));
  expect("viewer cannot evaluate", await page.isDisabled("#compliance-evaluate"));
  expect("the API refuses a viewer's group", await page.evaluate(() => Api.post("/api/v1/groups", { name: "v" }).then(() => 0, (e) => e.status)) === 403);
  expect("the API refuses a viewer's clear passcode", await page.evaluate((id) => Api.post("/api/v1/commands", { devices: [id], request_type: "ClearPasscode" }).then(() => 0, (e) => e.status), XSS_DEVICE) === 403);
  expect("no markup ever ran", await page.evaluate(() => window.__xss === undefined));
  await shot(page, "06-viewer-device");

  // a phone screen: one column, the menu behind a button
  const phone = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const p2 = await phone.newPage();
  await signIn(p2, "ops", "operator pass 1");
  await p2.waitForSelector("#figures");
  expect("menu button on a phone", await p2.isVisible("#menu"));
  expect("nav hidden until opened", !(await p2.evaluate(() => { const r = document.getElementById("nav").getBoundingClientRect(); return r.right > 0; })));
  const overflow = await p2.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect("no horizontal scrolling", overflow <= 1, String(overflow));
  await shot(p2, "07-phone-dashboard");
  await p2.click("#menu");
  await p2.click("#nav a[data-page=devices]");
  await p2.waitForSelector("#device-results table");
  await shot(p2, "08-phone-devices");
  for (const [hash, sel, name] of [["#/profile/" + PROFILE_ID, "#profile-payloads", "15-phone-profile"], ["#/compliance", "#policy-list table", "16-phone-compliance"],
    ["#/device/" + encodeURIComponent(DEVICE), "#device-convergence table", "17-phone-device"]]) {
    await p2.goto(URL + "/console/" + hash);
    await p2.waitForSelector(sel);
    const over = await p2.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect("no horizontal scrolling on " + hash, over <= 1, String(over));
    await shot(p2, name);
  }

  expect("no script errors", pageErrors.length === 0, pageErrors.join("; "));
  await browser.close();
  console.log(`console.test.js: ${checks} checks passed`);
}

main().catch((e) => { console.error(e.message || e); process.exit(1); });
