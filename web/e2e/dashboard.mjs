// End-to-end test of the dashboard in Debian's Chromium (playwright-core; never a downloaded browser),
// against a real `leannodes serve` that tests/dashboard.rs starts with a flow of demo-backend process
// nodes. Elements are found by role and label. Screenshots go to $ARTIFACTS.
//
// Environment: ADMIN_URL, PROXY_URL, ADMIN_EMAIL, ADMIN_PASSWORD, VIEWER_EMAIL, VIEWER_PASSWORD, INVITE_URL,
// ARTIFACTS.

import { mkdirSync } from "node:fs";
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

  step("an operation: drain");
  await page.getByRole("group", { name: "Operations" }).getByRole("button", { name: "Drain" }).click();
  await page.getByRole("group", { name: "node web: asleep" }).waitFor();

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

  step("an invitation link creates the account and signs in");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login/);
  const invite = new URL(env("INVITE_URL"));
  await page.goto(`${admin}${invite.pathname}${invite.hash}`);
  await page.getByRole("heading", { name: "Accept your invitation" }).waitFor();
  await page.getByLabel("Name").fill("New Comer");
  await page.getByLabel("New password").fill("a newcomer's long password");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`${admin}/flows`);
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
