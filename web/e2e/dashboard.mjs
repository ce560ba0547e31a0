// End-to-end test of the dashboard in Debian's Chromium (playwright-core; never a downloaded browser),
// against a real `leannodes serve` that tests/dashboard.rs starts with a flow of demo-backend process
// nodes. Elements are found by role and label. Screenshots go to $ARTIFACTS.
//
// Environment: ADMIN_URL, PROXY_URL, ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_TOKEN (a token of the same
// administrator, to save the draft behind the browser's back), VIEWER_EMAIL, VIEWER_PASSWORD, VIEWER_ID,
// INVITE_URL,
// EDITOR_NODES (JSON: name, command line and port of three demo-backend nodes), ARTIFACTS.

import { mkdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const admin = env("ADMIN_URL");
const proxy = env("PROXY_URL");
const artifacts = env("ARTIFACTS");
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const step = (what) => console.log(`step: ${what}`);
const offsite = [];

/** The element's box once it has stopped moving (the graph fits itself into view after a change). */
async function settledBox(locator) {
  await locator.evaluate(
    (el) =>
      new Promise((resolve) => {
        let last = "";
        let same = 0;
        const tick = () => {
          const r = el.getBoundingClientRect();
          const now = `${r.x},${r.y},${r.width},${r.height}`;
          same = now === last ? same + 1 : 0;
          last = now;
          if (same >= 5) resolve();
          else requestAnimationFrame(tick);
        };
        tick();
      }),
  );
  return locator.boundingBox();
}

async function signIn(page, email, password) {
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: "light" });
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  // Nothing may leave the machine: every request goes to LeanNodes itself.
  page.on("request", (request) => {
    if (!request.url().startsWith(admin)) offsite.push(request.url());
  });

  step("a deep link asks for a sign-in, then returns to the page");
  await page.goto(`${admin}/flows/shop`);
  await page.waitForURL(/\/login\?next=%2Fflows%2Fshop/);
  await page.screenshot({ path: join(artifacts, "login.png") });
  await signIn(page, env("ADMIN_EMAIL"), "wrong password");
  await page.getByRole("alert").waitFor();
  await signIn(page, env("ADMIN_EMAIL"), env("ADMIN_PASSWORD"));
  await page.waitForURL(`${admin}/flows/shop`);
  await page.getByRole("heading", { name: /^shop/ }).waitFor();

  step("the live graph turns ready node by node when a request wakes the flow");
  for (const node of ["db", "cache", "search", "web"]) {
    await page.getByRole("group", { name: `node ${node}: asleep` }).waitFor();
  }
  await page.getByRole("status").filter({ hasText: "live updates on" }).waitFor();
  const response = fetch(`${proxy}/hello`);
  await page.getByRole("group", { name: "node db: starting" }).waitFor();
  await page.getByRole("group", { name: "node web: ready" }).waitFor();
  const body = await (await response).text();
  if (body !== "web GET /hello\n") throw new Error(`the held request got ${JSON.stringify(body)}`);
  await page.getByText(/ready in \d+ ms/).first().waitFor();
  step("the execution timeline shows the wake");
  await page.getByRole("list", { name: "Recent wakes" }).getByText(/request, succeeded/).waitFor();
  await page.screenshot({ path: join(artifacts, "flow-detail.png"), fullPage: true });

  step("why the flow is awake, then asleep after a drain");
  await page.getByRole("list", { name: "Why it is awake" }).getByText(/within its idle window/).waitFor();
  await page.getByRole("group", { name: "Operations" }).getByRole("button", { name: "Drain" }).click();
  await page.getByRole("group", { name: "node web: asleep" }).waitFor();
  await page.getByRole("list", { name: "Why it is asleep" }).getByText(/no request has asked for it/).waitFor();

  step("a wake that fails shows the failing node and its reason");
  await page.goto(`${admin}/flows/broken`);
  await page.getByRole("group", { name: "Operations" }).getByRole("button", { name: "Warm" }).click();
  await page.getByRole("group", { name: "node crash: failed" }).waitFor();
  await page.getByRole("status").filter({ hasText: /Last wake failed at node crash: \w+/ }).waitFor();
  await page.getByRole("list", { name: "Recent wakes" }).getByText(/manual, failed/).waitFor();
  await page.screenshot({ path: join(artifacts, "failed-wake.png"), fullPage: true });

  step("a new flow in the visual editor: three nodes, two edges, the upstream");
  const editorNodes = JSON.parse(env("EDITOR_NODES"));
  await page.goto(`${admin}/flows`);
  await page.getByRole("link", { name: "New flow" }).click();
  await page.getByLabel("Name").fill("review");
  await page.getByLabel("Hosts").fill("localhost");
  await page.getByRole("button", { name: "Create and edit" }).click();
  await page.waitForURL(`${admin}/flows/review/edit`);
  await page.getByText(/You hold the editor lock until/).waitFor();
  const palette = page.getByRole("group", { name: "Add a node" });
  const nodeList = page.getByRole("navigation", { name: "Nodes" });
  for (const node of editorNodes) {
    // A new node is named after its kind with the first free number; the previous one was renamed.
    await palette.getByRole("button", { name: "+ process" }).click();
    await nodeList.getByRole("button", { name: "process-1" }).click();
    await page.getByLabel("Name", { exact: true }).fill(node.name);
    await page.getByLabel("Command").fill(node.command);
    await page.getByLabel("Port").fill(String(node.port));
    await page.getByRole("group", { name: `node ${node.name} (process)` }).waitFor();
  }
  const [db, api, web] = editorNodes.map((n) => n.name);
  // db → api by dragging from db's right handle onto api; api → web with the keyboard-friendly checkbox.
  const from = await settledBox(page.locator(`.react-flow__node[data-id="${db}"] .react-flow__handle.source`));
  const to = await settledBox(page.locator(`.react-flow__node[data-id="${api}"] .react-flow__handle.target`));
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(to.x + to.width / 2, to.y + to.height / 2, { steps: 12 });
  await page.mouse.up();
  await page.locator(`[aria-label="edge ${db} to ${api}"]`).waitFor({ state: "attached" }); // a straight edge has no height
  await nodeList.getByRole("button", { name: web }).click();
  await page.getByRole("group", { name: "Waits for" }).getByLabel(api).check();
  await page.locator(`[aria-label="edge ${api} to ${web}"]`).waitFor({ state: "attached" });
  await page.getByRole("button", { name: "Send requests here (upstream)" }).click();
  await page.getByRole("button", { name: "This is the upstream" }).waitFor();
  await page.getByRole("status", { name: "Save state" }).filter({ hasText: "All changes saved" }).waitFor();
  await page.getByText("Nothing stops its activation.").waitFor();
  await page.screenshot({ path: join(artifacts, "editor.png"), fullPage: true });

  step("a save that races another one: the editor offers to reload or keep what was typed");
  const draftUrl = `${admin}/api/v1/flows/review/draft`;
  const authorization = { authorization: `Bearer ${env("ADMIN_TOKEN")}` };
  const behind = await (await fetch(draftUrl, { headers: authorization })).json();
  const sneaked = await fetch(draftUrl, {
    method: "PUT",
    headers: { ...authorization, "content-type": "application/json", "if-match": String(behind.version) },
    body: JSON.stringify({ spec: { ...behind.spec, idle_after: "5m" } }),
  });
  if (sneaked.status !== 200) throw new Error(`the concurrent save got ${sneaked.status}: ${await sneaked.text()}`);
  await nodeList.getByRole("button", { name: "Flow settings" }).click();
  await page.getByLabel("Idle after").fill("20m");
  await page.getByRole("alert").filter({ hasText: "Your changes are kept" }).waitFor();
  if ((await page.getByLabel("Idle after").inputValue()) !== "20m") throw new Error("the typed value was lost on a refused save");
  await page.getByRole("button", { name: "Save mine over it" }).click();
  await page.getByRole("status", { name: "Save state" }).filter({ hasText: "All changes saved" }).waitFor();
  const saved = await (await fetch(draftUrl, { headers: authorization })).json();
  if (saved.spec.idle_after !== "20m" || saved.spec.upstream !== web) throw new Error(`the draft holds ${JSON.stringify(saved.spec)}`);
  // A keep-warm window (29 February: never open while the test runs), written a line per window.
  await page.getByLabel("Kept warm").fill("0 0 29 2 * for 1h in Europe/Berlin");
  const expected = JSON.stringify([{ cron: "0 0 29 2 *", for: "1h", tz: "Europe/Berlin" }]);
  let warmed = null;
  for (let i = 0; i < 100; i++) {
    warmed = (await (await fetch(draftUrl, { headers: authorization })).json()).spec.keep_warm;
    if (JSON.stringify(warmed) === expected) break;
    await page.waitForTimeout(100);
  }
  if (JSON.stringify(warmed) !== expected) throw new Error(`the draft's keep_warm is ${JSON.stringify(warmed)}`);
  await page.getByRole("status", { name: "Save state" }).filter({ hasText: "All changes saved" }).waitFor();

  step("commit and activate from the dialog");
  await page.getByRole("button", { name: "Commit…" }).click();
  const dialog = page.getByRole("dialog", { name: "Commit review" });
  await dialog.getByLabel("Message").fill("first version: db, api, web");
  await dialog.getByLabel("Note").fill("made in the visual editor");
  await dialog.getByRole("button", { name: "Commit and activate" }).click();
  await page.waitForURL(`${admin}/flows/review`);
  await page.getByText("store, version 1").waitFor();
  await page.getByText(/0 0 29 2 \* \(Europe\/Berlin\) for 60 min — next wake/).waitFor();

  step("drain it, then a request wakes it and the graph turns ready node by node");
  await page.getByRole("group", { name: "Operations" }).getByRole("button", { name: "Drain" }).click();
  await page.getByRole("group", { name: `node ${web}: asleep` }).waitFor();
  await page.getByRole("status").filter({ hasText: "live updates on" }).waitFor();
  const proxyPort = new URL(proxy).port;
  const woken = fetch(`http://localhost:${proxyPort}/hello`);
  await page.getByRole("group", { name: `node ${db}: starting` }).waitFor();
  await page.getByRole("group", { name: `node ${api}: ready` }).waitFor();
  await page.getByRole("group", { name: `node ${web}: ready` }).waitFor();
  const reply = await (await woken).text();
  if (reply !== `${web} GET /hello\n`) throw new Error(`the held request got ${JSON.stringify(reply)}`);
  await page.getByRole("list", { name: "Recent wakes" }).getByText(/request, succeeded/).waitFor();
  await page.screenshot({ path: join(artifacts, "editor-flow-awake.png"), fullPage: true });

  step("change a node, commit, and see the diff side by side");
  await page.getByRole("link", { name: "Edit the draft" }).click();
  await page.waitForURL(`${admin}/flows/review/edit`);
  await nodeList.getByRole("button", { name: api }).click();
  await page.getByLabel("Wake budget").fill("45s");
  await page.getByRole("status", { name: "Save state" }).filter({ hasText: "All changes saved" }).waitFor();
  await page.getByRole("button", { name: "Commit…" }).click();
  await dialog.getByLabel("Message").fill("api: 45s wake budget");
  await dialog.getByRole("button", { name: "Commit and activate" }).click();
  await page.waitForURL(`${admin}/flows/review`);
  await page.getByText("store, version 2").waitFor();
  await page.getByRole("button", { name: "Compare v1 with v2" }).click();
  await page.getByRole("figure", { name: "Graph of v1" }).getByRole("group", { name: `node ${api}: changed` }).waitFor();
  await page.getByRole("figure", { name: "Graph of v2 (active)" }).getByRole("group", { name: `node ${db}: unchanged` }).waitFor();
  await page.getByRole("table", { name: `Changes of node ${api}` }).getByRole("row", { name: /\/timeout/ }).getByRole("cell", { name: "45s" }).waitFor();
  await page.screenshot({ path: join(artifacts, "diff.png"), fullPage: true });

  step("the flow's recent changes and access: the viewer becomes an operator of this flow only");
  await page.getByRole("list", { name: "Recent changes" }).getByText(/flow\.commit by/).first().waitFor();
  await page.getByLabel("Grant to").fill(`user:${env("VIEWER_ID")}`);
  await page.getByRole("region", { name: "Access" }).getByLabel("Role", { exact: true }).selectOption("operator");
  await page.getByRole("button", { name: "Add grant" }).click();
  await page.getByRole("button", { name: "Save access" }).click();
  await page.getByRole("status").filter({ hasText: "Access saved." }).waitFor();
  await page.getByRole("combobox", { name: `Role of user:${env("VIEWER_ID")}` }).waitFor();

  step("roll back to version 1");
  await page.getByRole("button", { name: "Activate v1" }).click();
  await page.getByRole("table", { name: "Versions" }).getByRole("row", { name: /v1 active/ }).waitFor();
  await page.getByText("store, version 1").waitFor();

  step("a stale draft: another version is activated while the editor is open; rebase keeps the edit");
  await page.getByRole("link", { name: "Edit the draft" }).click();
  await page.waitForURL(`${admin}/flows/review/edit`);
  await page.getByText(/You hold the editor lock until/).waitFor();
  const activated = await fetch(`${admin}/api/v1/flows/review/versions/2/activate`, { method: "POST", headers: authorization });
  if (activated.status !== 200) throw new Error(`activating v2 behind the editor's back got ${activated.status}: ${await activated.text()}`);
  await nodeList.getByRole("button", { name: web }).click();
  await page.getByLabel("Wake budget").fill("50s");
  await page.getByRole("status").filter({ hasText: "Version 2 was activated after this draft was started" }).waitFor();
  await page.getByRole("button", { name: "Commit…" }).click();
  await dialog.getByLabel("Message").fill("frontend: 50s wake budget");
  await dialog.getByRole("button", { name: "Commit and activate" }).click();
  const stale = page.getByRole("alert").filter({ hasText: "rebase it" });
  await stale.getByRole("button", { name: "Discard the draft" }).waitFor();
  await stale.getByRole("button", { name: "Rebase onto version 2" }).click();
  await page.getByRole("status").filter({ hasText: "The draft is now based on version 2." }).waitFor();
  if ((await page.getByLabel("Wake budget").inputValue()) !== "50s") throw new Error("the rebase lost what was typed");
  await page.getByRole("button", { name: "Commit…" }).click();
  await dialog.getByLabel("Message").fill("frontend: 50s wake budget");
  await dialog.getByRole("button", { name: "Commit and activate" }).click();
  await page.waitForURL(`${admin}/flows/review`);
  await page.getByText("store, version 3").waitFor();

  step("versions of a store-managed flow: compare, activate, roll back");
  await page.goto(`${admin}/flows/blog`);
  const versions = page.getByRole("table", { name: "Versions" });
  await versions.getByRole("row", { name: /v1 active/ }).waitFor();
  await page.getByRole("button", { name: "Compare v2 with v1" }).click();
  const changed = page.getByRole("table", { name: "Changed settings" }).getByRole("row", { name: /\/upstream/ });
  await changed.getByRole("cell", { name: "green" }).waitFor();
  await page.screenshot({ path: join(artifacts, "versions.png"), fullPage: true });
  await page.getByRole("button", { name: "Activate v2" }).click();
  await versions.getByRole("row", { name: /v2 active/ }).waitFor();
  await page.getByText("store, version 2").waitFor();
  await page.getByRole("button", { name: "Activate v1" }).click();
  await versions.getByRole("row", { name: /v1 active/ }).waitFor();

  step("the flows list: bulk operations, export and import");
  await page.goto(`${admin}/flows`);
  await page.getByRole("checkbox", { name: "Select shop" }).check();
  await page.getByRole("checkbox", { name: "Select review", exact: true }).check();
  await page.getByRole("button", { name: "Pin selected", exact: true }).click();
  await page.getByRole("status").filter({ hasText: "pin: 2 of 2 done" }).waitFor();
  await page.getByRole("row", { name: /shop .*pinned/ }).waitFor();
  await page.getByRole("checkbox", { name: "Select shop" }).check();
  await page.getByRole("checkbox", { name: "Select review", exact: true }).check();
  await page.getByRole("button", { name: "Unpin selected" }).click();
  await page.getByRole("status").filter({ hasText: "unpin: 2 of 2 done" }).waitFor();
  const downloading = page.waitForEvent("download");
  await page.getByRole("button", { name: "Export TOML" }).click();
  const exported = await (await downloading).path().then((p) => readFile(p, "utf8"));
  if (!exported.includes('name = "review"') || !exported.includes(`upstream = "${web}"`)) throw new Error(`the export holds:\n${exported}`);
  await page.getByText("Import flows").click();
  await page.getByLabel("Flows to import").fill(exported.replaceAll('name = "review"', 'name = "review-copy"').replaceAll('"localhost"', '"copy.localhost"'));
  await page.getByRole("button", { name: "Check" }).click();
  await page.getByRole("table", { name: "Import plan" }).getByRole("row", { name: /review-copy created/ }).waitFor();
  if ((await page.getByRole("link", { name: "review-copy" }).count()) !== 0) throw new Error("a dry run created the flow");
  await page.getByRole("button", { name: "Import", exact: true }).click();
  await page.getByRole("table", { name: "Imported" }).getByRole("row", { name: /review-copy created/ }).waitFor();
  await page.getByRole("region", { name: "Not active yet" }).getByRole("link", { name: "review-copy" }).waitFor();

  step("the flows list, with the keyboard only");
  await page.goto(`${admin}/flows`);
  await page.getByRole("table").waitFor();
  await page.screenshot({ path: join(artifacts, "flows.png") });
  await page.getByLabel("Search flows").focus();
  await page.keyboard.type("sho");
  await page.getByRole("link", { name: "blog" }).waitFor({ state: "detached" });
  let reached = false;
  for (let i = 0; i < 10 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement?.textContent === "shop");
  }
  if (!reached) throw new Error("Tab never reached the link of flow shop");
  await page.keyboard.press("Enter");
  await page.waitForURL(`${admin}/flows/shop`);

  step("the dark theme");
  await page.getByRole("button", { name: "Switch to dark theme" }).click();
  const theme = await page.evaluate(() => document.documentElement.dataset.theme);
  if (theme !== "dark") throw new Error(`theme is ${theme}`);
  await page.getByRole("group", { name: "node web: asleep" }).waitFor();
  await page.screenshot({ path: join(artifacts, "flow-detail-dark.png"), fullPage: true });
  await page.getByRole("button", { name: "Switch to light theme" }).click();

  step("the overview: savings, flow states and recent cold starts");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Overview" }).click();
  await page.waitForURL(`${admin}/`);
  const recent = page.getByRole("table", { name: "Recent cold starts" });
  await recent.getByRole("row", { name: /^review .*request.*succeeded/ }).first().waitFor();
  await recent.getByRole("row", { name: /^shop .*request.*succeeded/ }).first().waitFor();
  await page.getByRole("list", { name: "Flows by state" }).waitFor();
  // [server.savings] in EUR: the money figure and the hours asleep behind it.
  const savedTile = page.getByRole("article", { name: "Saved in 30 days" });
  await savedTile.getByText(/€/).first().waitFor();
  await savedTile.getByText(/flow-hours asleep/).waitFor();
  await page.screenshot({ path: join(artifacts, "overview.png"), fullPage: true });

  step("workloads, routing lookup and the audit log");
  await page.getByRole("link", { name: "Workloads" }).click();
  await page.getByRole("table", { name: "Workloads" }).getByRole("row", { name: new RegExp(`process/${api}.*review`) }).waitFor();
  await page.screenshot({ path: join(artifacts, "workloads.png"), fullPage: true });
  await page.getByRole("link", { name: "Routing" }).click();
  await page.getByLabel("URL").fill("http://localhost/cart");
  await page.getByRole("button", { name: "Look up" }).click();
  await page.getByRole("region", { name: "Routing answer" }).getByRole("link", { name: "review" }).waitFor();
  await page.screenshot({ path: join(artifacts, "routing.png"), fullPage: true });
  await page.getByRole("link", { name: "Audit" }).click();
  await page.getByLabel("Action").fill("flow.commit");
  await page.getByRole("button", { name: "Filter" }).click();
  const records = page.getByRole("table", { name: "Audit records" });
  await records.getByRole("row", { name: /flow\.commit flow\/review.*api: 45s wake budget/ }).waitFor();
  if ((await records.getByRole("row", { name: /flow\.drain/ }).count()) !== 0) throw new Error("the action filter let other records through");
  await page.getByRole("button", { name: "Verify the chain" }).click();
  await page.getByRole("status").filter({ hasText: /The chain is intact: \d+ records checked/ }).waitFor();
  await page.screenshot({ path: join(artifacts, "audit.png"), fullPage: true });

  step("settings: users, invitations, tokens, sign-in, notifications");
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("heading", { name: "Status" }).waitFor();
  await page.getByRole("navigation", { name: "Settings sections" }).getByRole("link", { name: "Users" }).click();
  await page.getByRole("combobox", { name: `Role of ${env("VIEWER_EMAIL")}` }).waitFor();
  await page.screenshot({ path: join(artifacts, "settings-users.png"), fullPage: true });
  await page.getByRole("link", { name: "Invitations" }).click();
  await page.getByRole("table", { name: "Pending invitations" }).getByRole("row", { name: /newcomer@leannodes\.test/ }).waitFor();
  await page.getByRole("link", { name: "Tokens" }).click();
  await page.getByLabel("Token name").fill("e2e token");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = await page.getByLabel("New token").innerText();
  const whoami = await fetch(`${admin}/api/v1/auth/me`, { headers: { authorization: `Bearer ${secret}` } });
  if (whoami.status !== 200) throw new Error(`the token made in the dashboard got ${whoami.status}`);
  await page.getByRole("table", { name: "Tokens" }).getByRole("row", { name: /e2e token/ }).waitFor();
  await page.screenshot({ path: join(artifacts, "settings-tokens.png"), fullPage: true });
  await page.getByRole("button", { name: "Revoke e2e token" }).click();
  await page.getByRole("button", { name: "Revoke e2e token" }).waitFor({ state: "detached" });
  const revoked = await fetch(`${admin}/api/v1/auth/me`, { headers: { authorization: `Bearer ${secret}` } });
  if (revoked.status !== 401) throw new Error(`a revoked token got ${revoked.status}`);
  await page.getByRole("link", { name: "Sign-in and mail" }).click();
  await page.getByRole("heading", { name: "OpenID Connect" }).waitFor();
  // Notification routes show their host, never the URL (a secret); Send Test posts one message.
  await page.getByRole("navigation", { name: "Settings sections" }).getByRole("link", { name: "Notifications" }).click();
  const routeRow = page.getByRole("table", { name: "Notification routes" }).getByRole("row", { name: /ops-chat/ });
  await routeRow.getByText(/slack · 127\.0\.0\.1:\d+/).waitFor();
  if ((await page.getByText(/chat-s3cr3t/).count()) !== 0) throw new Error("the route's secret URL shows");
  await page.getByRole("button", { name: "Send test to ops-chat" }).click();
  await page.getByRole("status", { name: "Test result of ops-chat" }).filter({ hasText: /Test delivered \(HTTP 200\)/ }).waitFor();
  await routeRow.getByText(/test delivered \(HTTP 200\)/).waitFor();
  // A route made in the form (secrets in password fields), tested, then deleted.
  const form = page.getByRole("form", { name: "New route" });
  await form.getByLabel("Route name").fill("made-here");
  await form.getByLabel("Kind").selectOption("webhook");
  await form.getByLabel("Payload format").selectOption("datadog");
  await form.getByLabel("Webhook URL (write-only)").fill(env("CHAT_URL").replace("/chat-s3cr3t", "/made-s3cr3t"));
  await form.getByRole("checkbox", { name: "flow_drained" }).check();
  await form.getByRole("button", { name: "Create route" }).click();
  const madeRow = page.getByRole("table", { name: "Notification routes" }).getByRole("row", { name: /made-here/ });
  await madeRow.getByText(/webhook \(datadog\)/).waitFor();
  await madeRow.getByRole("cell", { name: "flow_drained" }).waitFor();
  if ((await page.getByText(/made-s3cr3t/).count()) !== 0) throw new Error("the new route's URL shows");
  await page.getByRole("button", { name: "Send test to made-here" }).click();
  await page.getByRole("status", { name: "Test result of made-here" }).filter({ hasText: /Test delivered/ }).waitFor();
  await page.screenshot({ path: join(artifacts, "settings-notifications.png"), fullPage: true });
  await page.getByRole("button", { name: "Delete made-here" }).click();
  await madeRow.waitFor({ state: "detached" });

  step("a viewer sees no operations");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login/);
  await signIn(page, env("VIEWER_EMAIL"), env("VIEWER_PASSWORD"));
  await page.getByText(env("VIEWER_EMAIL")).waitFor();
  await page.goto(`${admin}/flows/shop`);
  await page.getByRole("group", { name: "node web: asleep" }).waitFor();
  await page.getByRole("heading", { name: /^shop/ }).waitFor();
  if ((await page.getByRole("group", { name: "Operations" }).count()) !== 0) throw new Error("a viewer sees operations");
  if ((await page.getByRole("button", { name: "Drain" }).count()) !== 0) throw new Error("a viewer sees Drain");
  await page.goto(`${admin}/flows/review`);
  await page.getByRole("heading", { name: /^review/ }).waitFor();
  await page.getByRole("table", { name: "Versions" }).waitFor();
  // The grant: operations on this flow, and still nothing more.
  await page.getByRole("group", { name: "Operations" }).getByRole("button", { name: "Drain" }).waitFor();
  if ((await page.getByRole("region", { name: "Access" }).count()) !== 0) throw new Error("an operator sees the access grants");
  for (const control of ["Edit the draft", "New flow"]) {
    if ((await page.getByRole("link", { name: control }).count()) !== 0) throw new Error(`a viewer sees ${control}`);
  }
  if ((await page.getByRole("button", { name: /^(Activate|Edit from) v/ }).count()) !== 0) throw new Error("a viewer sees version actions");
  await page.goto(`${admin}/flows/review/edit`);
  await page.getByText(/^Read only:/).waitFor();
  if ((await page.getByRole("group", { name: "Add a node" }).count()) !== 0) throw new Error("a viewer sees the palette");

  step("an invitation link creates the account and signs in");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login/);
  const invite = new URL(env("INVITE_URL"));
  await page.goto(`${admin}${invite.pathname}${invite.hash}`);
  await page.getByRole("heading", { name: "Accept your invitation" }).waitFor();
  await page.getByLabel("Name").fill("New Comer");
  await page.getByLabel("New password").fill("a newcomer's long password");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`${admin}/`);
  await page.getByText("newcomer@leannodes.test").waitFor();
  await page.goto(`${admin}${invite.pathname}${invite.hash}`);
  await page.getByLabel("Name").fill("Again");
  await page.getByLabel("New password").fill("a newcomer's long password");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("alert").waitFor();

  if (offsite.length > 0) throw new Error(`requests left the machine: ${offsite.join(", ")}`);
  console.log("dashboard: ok");
} catch (e) {
  if (page) {
    await page.screenshot({ path: join(artifacts, "failure.png"), fullPage: true }).catch(() => {});
    console.log(`failed at ${page.url()}; the page says:\n${await page.locator("body").innerText().catch(() => "?")}`);
  }
  throw e;
} finally {
  await browser.close();
}
