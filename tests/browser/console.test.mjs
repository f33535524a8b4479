// The product page's UI story in a real headless Chromium (Debian's), against the real `atrest`
// binary with its embedded AWS. The customer's own AWS work (a KMS key, an IAM role from the
// trust policy the console shows) is done with `atrest aws`, as a customer would with `aws`.
// Screenshots of every page go to tests/browser/screenshots/ (or $ATREST_SCREENSHOTS).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");
const BIN = process.env.ATREST_BIN || join(process.env.CARGO_TARGET_DIR || join(repo, "target"), "debug", "atrest");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.ATREST_SCREENSHOTS || join(here, "screenshots");

let server, dataDir, url, creds, browser, page;

function readCreds(file) {
  return Object.fromEntries(readFileSync(file, "utf8").split("\n").filter((l) => l.includes("=")).map((l) => {
    const i = l.indexOf("=");
    return [l.slice(0, i), l.slice(i + 1)];
  }));
}

function startServer() {
  dataDir = mkdtempSync(join(tmpdir(), "atrest-browser-"));
  server = spawn(BIN, ["serve", "--data-dir", join(dataDir, "data"), "--listen", "127.0.0.1:0", "--aws-listen", "127.0.0.1:0",
    "--reconcile-interval", "200ms", "--key-check-interval", "1h", "--aws-endpoint-ready", "500ms"],
  { env: { ...process.env, ATREST_LOG: "warn" }, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("atrest did not print its URL")), 60000);
    let buf = "";
    server.stdout.on("data", (d) => {
      buf += d;
      const m = buf.match(/atrest listening on (\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    server.on("exit", (code) => reject(new Error(`atrest exited with ${code}`)));
  });
}

// The customer's side of AWS, through the `atrest aws` client against the embedded emulator.
function aws(...args) {
  const out = execFileSync(BIN, ["aws", ...args, "--data-dir", join(dataDir, "data"), "--endpoint-url", creds.ATREST_AWS_URL], { encoding: "utf8" });
  return JSON.parse(out);
}

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function alertText() {
  const alert = page.locator("#alerts .alert");
  await alert.first().waitFor();
  return alert.first().innerText();
}

async function expectSuccess(fragment) {
  const a = page.locator("#alerts .alert.success");
  await a.waitFor({ timeout: 20000 }).catch(async () => {
    throw new Error(`no success message; page says: ${await page.locator("#alerts").innerText()}`);
  });
  if (fragment) assert.match(await a.innerText(), fragment);
}

before(async () => {
  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  url = await startServer();
  creds = readCreds(join(dataDir, "data", "bootstrap-credentials"));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
  page = await context.newPage();
  page.setDefaultTimeout(20000);
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("the product page story, end to end in the console", { timeout: 120000 }, async () => {
  let groupId;
  let keyArn;

  // Sign in with the bootstrap key, by keyboard only.
  await page.goto(url);
  await page.locator("input[name=publicKey]").waitFor();
  await shot("01-sign-in");
  await page.locator("input[name=publicKey]").focus();
  await page.keyboard.type(creds.ATREST_PUBLIC_KEY);
  await page.keyboard.press("Tab");
  await page.keyboard.type("not-the-private-key");
  await page.keyboard.press("Enter");
  assert.match(await alertText(), /USER_UNAUTHORIZED/);
  await page.locator("input[name=privateKey]").fill(creds.ATREST_PRIVATE_KEY);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Projects", level: 1 }).waitFor();
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === "atrest_session");
  assert.ok(session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(cookies));
  assert.equal(await page.evaluate(() => document.cookie), "", "the session cookie is out of reach of scripts");

  // Projects: create one.
  await page.getByLabel("Project name").fill("browser-story");
  await page.getByRole("button", { name: "Create project" }).click();
  await page.getByRole("heading", { name: "Clusters", level: 1 }).waitFor();
  groupId = page.url().match(/projects\/([0-9a-f]{24})\//)[1];
  await page.goto(`${url}/#/projects`);
  await page.getByRole("link", { name: "browser-story" }).waitFor();
  await shot("02-projects");

  // Database & Network Access → Cloud Provider Access → Authorize a new IAM role.
  await page.goto(`${url}/#/projects/${groupId}/access`);
  await page.getByRole("button", { name: "Authorize a new IAM role" }).click();
  const trustText = await page.locator("pre[data-copy='trust policy']").innerText();
  const trust = JSON.parse(trustText);
  const externalId = await page.locator("[data-field=atlasAssumedRoleExternalId]").innerText();
  assert.equal(trust.Statement[0].Condition.StringEquals["sts:ExternalId"], externalId);
  assert.match(trust.Statement[0].Principal.AWS, /^arn:aws:iam::\d{12}:/);
  assert.match(await page.locator("pre[data-copy='AWS CLI commands']").innerText(), /aws iam create-role/);
  await shot("03-authorize-role");

  // The customer creates the key and the role from exactly the policy the page showed.
  keyArn = aws("create-key").KeyMetadata.Arn;
  const trustFile = join(dataDir, "trust.json");
  writeFileSync(trustFile, trustText);
  const accessFile = join(dataDir, "access.json");
  writeFileSync(accessFile, JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], Resource: [keyArn] }] }));
  const roleArn = aws("create-role", "--role-name", "atlas-kms-role", "--assume-role-policy-document", `file://${trustFile}`).Role.Arn;
  aws("put-role-policy", "--role-name", "atlas-kms-role", "--policy-name", "kms", "--policy-document", `file://${accessFile}`);

  await page.getByLabel(/IAM role ARN/).fill(roleArn);
  await page.getByRole("button", { name: "Validate and Finish" }).click();
  await expectSuccess(/is authorized/);
  await page.locator("tr", { hasText: roleArn }).getByText("Authorized").waitFor();
  await shot("04-role-authorized");

  // Advanced → Encryption at Rest using your Key Management.
  await page.goto(`${url}/#/projects/${groupId}/advanced`);
  await page.getByRole("switch", { name: "Encryption at Rest using your Key Management" }).check();
  await page.getByLabel("IAM role").selectOption({ label: new RegExp(roleArn.replace(/[/]/g, "\\/")) }).catch(async () => {
    const value = await page.locator("select[name=roleId] option").nth(1).getAttribute("value");
    await page.getByLabel("IAM role").selectOption(value);
  });
  await page.getByLabel("Customer master key ID").fill(keyArn);
  await page.getByLabel("Key region").selectOption("US_EAST_1");
  await page.getByRole("button", { name: "Save" }).click();
  await expectSuccess(/valid/);
  assert.equal(await page.locator("[data-field=valid]").innerText(), "valid: true");
  await shot("05-encryption-at-rest-valid");

  // Network Settings for your AWS KMS: Require Private Networking, then the Set up wizard.
  await page.getByRole("switch", { name: "Require Private Networking" }).click();
  await expectSuccess(/Private networking is required/);
  await page.getByRole("button", { name: "Set up" }).click();
  assert.equal(await page.locator("[data-field=cmk]").innerText(), keyArn);
  await page.getByRole("button", { name: "Copy customer master key ID" }).waitFor();
  await shot("06-setup-replicate-key");
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByLabel(/AWS regions/).selectOption(["US_EAST_1", "US_WEST_2"]);
  await shot("07-setup-select-regions");
  await page.getByRole("button", { name: "Continue" }).click();

  // Manage: both endpoints reach ACTIVE without a reload.
  await page.getByRole("heading", { name: "Private Endpoints for AWS KMS", level: 1 }).waitFor();
  await page.locator("tr[data-region=US_EAST_1][data-status=INITIATING], tr[data-region=US_EAST_1][data-status=ACTIVE]").waitFor();
  const reloads = [];
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) reloads.push(f.url()); });
  await page.locator("tr[data-region=US_EAST_1][data-status=ACTIVE]").waitFor({ timeout: 30000 });
  await page.locator("tr[data-region=US_WEST_2][data-status=ACTIVE]").waitFor({ timeout: 30000 });
  assert.deepEqual(reloads, [], "statuses refreshed in place");
  assert.match(await page.locator("tr[data-region=US_EAST_1] td").nth(1).innerText(), /^vpce-/);
  await shot("08-private-endpoints-active");

  // Delete one endpoint from the Manage page.
  await page.getByRole("button", { name: "Delete the endpoint in US_WEST_2" }).click();
  await page.locator("tr[data-region=US_WEST_2]").getByRole("button", { name: "Confirm delete" }).click();
  await expectSuccess(/Deleting the private endpoint in US_WEST_2/);
  await page.locator("tr[data-region=US_WEST_2]").waitFor({ state: "detached", timeout: 30000 });
  assert.equal(await page.locator("tr[data-region=US_EAST_1][data-status=ACTIVE]").count(), 1);
  await shot("09-private-endpoint-deleted");

  // A cluster with customer keys.
  await page.getByRole("link", { name: "Clusters" }).click();
  await page.getByRole("button", { name: "Create cluster" }).click();
  await page.getByLabel("Cluster name").fill("story-cluster");
  await page.getByLabel(/Cluster tier/).selectOption("M10");
  await page.getByLabel(/Regions/).selectOption(["US_EAST_1"]);
  await page.getByRole("switch", { name: "Manage your own encryption keys" }).check();
  assert.match(await page.locator("[data-field=privateNetworkingStatus]").innerText(), /Active/);
  await shot("10-create-cluster");
  await page.locator("form").getByRole("button", { name: "Create cluster" }).click();
  await expectSuccess(/Creating cluster story-cluster/);
  await page.locator("tr[data-cluster=story-cluster][data-state=IDLE]").waitFor({ timeout: 30000 });
  const row = page.locator("tr[data-cluster=story-cluster]");
  assert.match(await row.innerText(), /Your key \(AWS KMS\)/);
  assert.equal(await row.locator("[data-field=privateNetworking]").innerText(), "Active");
  await shot("11-cluster-with-customer-keys");

  // A tenant tier cannot use customer keys: the refusal is shown in words.
  await page.getByRole("button", { name: "Create cluster" }).first().click();
  await page.getByLabel("Cluster name").fill("tiny");
  await page.getByLabel(/Cluster tier/).selectOption("M0");
  await page.getByRole("switch", { name: "Manage your own encryption keys" }).check();
  await page.locator("form").getByRole("button", { name: "Create cluster" }).click();
  const tenant = await alertText();
  assert.match(tenant, /needs an M10 or larger cluster/);
  assert.match(tenant, /CANNOT_USE_ENCRYPTION_AT_REST_TENANT/);
  await page.getByRole("button", { name: "Cancel" }).click();

  // Out of order: turning off Require Private Networking while an endpoint exists, and
  // disabling Encryption at Rest while a cluster uses the key, are refused with their reasons.
  await page.goto(`${url}/#/projects/${groupId}/advanced`);
  // (A click, not uncheck(): the page puts the switch back when the server refuses.)
  await page.getByRole("switch", { name: "Require Private Networking" }).click();
  const pn = await alertText();
  assert.match(pn, /Delete every private endpoint first/);
  assert.match(pn, /CANNOT_DISABLE_ENCRYPTION_AT_REST_REQUIRE_PRIVATE_NETWORKING_WHILE_PRIVATE_ENDPOINTS_EXIST/);
  assert.equal(await page.getByRole("switch", { name: "Require Private Networking" }).isChecked(), true, "the toggle shows the real state");
  await page.getByRole("switch", { name: "Encryption at Rest using your Key Management" }).uncheck();
  await page.getByRole("button", { name: "Save" }).click();
  const refused = await alertText();
  assert.match(refused, /Private endpoints for AWS KMS still exist/);
  await shot("12-refused-out-of-order-disable");

  // Nothing changed on the server.
  const earNow = async () => page.evaluate(async (g) => (await fetch(`/api/atlas/v2/groups/${g}/encryptionAtRest`, { headers: { Accept: "application/vnd.atlas.2023-01-01+json" } })).json(), groupId);
  let ear = await earNow();
  assert.equal(ear.awsKms.enabled, true);
  assert.equal(ear.awsKms.requirePrivateNetworking, true);

  // In order: delete the last endpoint, then private networking can be turned off; Encryption
  // at Rest still cannot while the cluster uses the key.
  await page.goto(`${url}/#/projects/${groupId}/endpoints`);
  await page.getByRole("button", { name: "Delete the endpoint in US_EAST_1" }).click();
  await page.locator("tr[data-region=US_EAST_1]").getByRole("button", { name: "Confirm delete" }).click();
  await page.locator("tr[data-region=US_EAST_1]").waitFor({ state: "detached", timeout: 30000 });
  await page.goto(`${url}/#/projects/${groupId}/advanced`);
  await page.getByRole("switch", { name: "Require Private Networking" }).click();
  await expectSuccess(/no longer required/);
  assert.equal(await page.getByRole("switch", { name: "Require Private Networking" }).isChecked(), false);
  await page.getByRole("switch", { name: "Encryption at Rest using your Key Management" }).uncheck();
  await page.getByRole("button", { name: "Save" }).click();
  const inUse = await alertText();
  assert.match(inUse, /Clusters still use your keys/);
  assert.match(inUse, /CANNOT_DISABLE_ENCRYPTION_AT_REST \(HTTP 409\)/);
  await page.waitForFunction(() => document.querySelector("input[name=enabled]").checked);
  await shot("13-refused-disable-while-clusters-use-keys");
  ear = await earNow();
  assert.equal(ear.awsKms.enabled, true);
  assert.equal(ear.awsKms.valid, true);

  // Events.
  await page.goto(`${url}/#/projects/${groupId}/events`);
  await page.locator("td", { hasText: "CLUSTER_CREATED" }).first().waitFor().catch(() => {});
  assert.ok(await page.locator("tbody tr").count() > 3);
  await shot("14-events");
});

test("a page of another origin cannot change anything with the session", { timeout: 60000 }, async () => {
  // An attacker's page on another port of the same host (same site, so the SameSite cookie is
  // sent): a form post and a no-cors fetch, the two requests a page can make without CORS.
  const evil = createServer((req, res) => {
    res.setHeader("Content-Type", "text/html");
    res.end(`<!doctype html><form id=f method=POST action="${url}/api/atlas/v2/groups" enctype="text/plain">
      <input name='{"name":"evil-form","orgId":"${creds.ATREST_ORG_ID}","x":"' value='"}'></form>
      <script>fetch(${JSON.stringify(url)} + "/api/atlas/v2/groups", {method: "POST", mode: "no-cors", credentials: "include",
        headers: {"Content-Type": "text/plain"}, body: JSON.stringify({name: "evil-fetch", orgId: ${JSON.stringify(creds.ATREST_ORG_ID)}})})
        .finally(() => document.getElementById("f").submit());</script>`);
  });
  await new Promise((r) => evil.listen(0, "127.0.0.1", r));
  const evilUrl = `http://127.0.0.1:${evil.address().port}/`;
  const attacker = await page.context().newPage();
  const posted = attacker.waitForResponse((r) => r.url().startsWith(`${url}/api/atlas/v2/groups`) && r.request().method() === "POST" && r.request().resourceType() === "document", { timeout: 15000 });
  await attacker.goto(evilUrl);
  const resp = await posted;
  assert.equal(resp.status(), 403);
  // (The attacker's tab stays open until the browser closes: closing a tab in the middle of its
  // navigation can hang in headless Chromium.)
  evil.closeAllConnections();
  evil.close();

  const names = await page.evaluate(async () => (await (await fetch("/api/atlas/v2/groups", { headers: { Accept: "application/vnd.atlas.2023-01-01+json" } })).json()).results.map((p) => p.name));
  assert.ok(!names.some((n) => n.startsWith("evil")), `attacker created ${names}`);
  assert.ok(names.includes("browser-story"));
});

test("service accounts: the secret is shown once, works, and ends with the account", { timeout: 60000 }, async () => {
  const token = (id, secret) => fetch(`${url}/api/oauth/token`, {
    method: "POST",
    headers: { Authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`, "Content-Type": "application/x-www-form-urlencoded" },
    body: "grant_type=client_credentials",
  });
  await page.goto(`${url}/#/projects`);
  await page.getByRole("link", { name: "Service accounts" }).click();
  await page.getByRole("heading", { name: "Service accounts", level: 1 }).waitFor();
  await page.getByLabel("Name", { exact: true }).fill("ci-deployer");
  await page.getByLabel("Description").fill("deploys from CI");
  await page.getByLabel("Organization role").selectOption("ORG_OWNER");
  await page.getByRole("button", { name: "Create service account" }).click();
  await expectSuccess(/ci-deployer created/);
  const clientId = await page.locator('[data-new-secret] pre[data-copy="client id"]').innerText();
  const secret = await page.locator('[data-new-secret] pre[data-copy="client secret"]').innerText();
  assert.match(clientId, /^mdb_sa_id_[0-9a-f]{24}$/);
  assert.match(secret, /^mdb_sa_sk_/);
  await page.locator(`tr[data-client-id="${clientId}"]`).getByText("ORG_OWNER").waitFor();
  await shot("15-service-account-created");
  const ok = await token(clientId, secret);
  assert.equal(ok.status, 200);
  const bearer = (await ok.json()).access_token;
  const groups = await fetch(`${url}/api/atlas/v2/groups`, { headers: { Authorization: `Bearer ${bearer}`, Accept: "application/vnd.atlas.2023-01-01+json" } });
  assert.equal(groups.status, 200);

  // Shown once: after a reload the page holds only the masked form.
  await page.reload();
  await page.locator(`tr[data-client-id="${clientId}"]`).waitFor();
  assert.ok(!(await page.content()).includes(secret), "the secret is shown again");
  // A second secret, then no third.
  await page.getByRole("button", { name: "New secret for ci-deployer" }).click();
  await expectSuccess(/Secret created/);
  await page.locator(`tr[data-client-id="${clientId}"] [data-secret-id]`).nth(1).waitFor();
  assert.equal(await page.getByRole("button", { name: "New secret for ci-deployer" }).isDisabled(), true);

  await page.getByRole("button", { name: "Delete service account ci-deployer" }).click();
  await page.getByRole("button", { name: "Delete service account ci-deployer" }).click();
  await expectSuccess(/ci-deployer deleted/);
  assert.equal(await page.locator(`tr[data-client-id="${clientId}"]`).count(), 0);
  assert.equal((await token(clientId, secret)).status, 401);
  const after = await fetch(`${url}/api/atlas/v2/groups`, { headers: { Authorization: `Bearer ${bearer}`, Accept: "application/vnd.atlas.2023-01-01+json" } });
  assert.equal(after.status, 401);
});

test("signing out ends the session", { timeout: 60000 }, async () => {
  await page.goto(`${url}/#/projects`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in", level: 1 }).waitFor();
  const status = await page.evaluate(async () => (await fetch("/api/atlas/v2/groups", { headers: { Accept: "application/vnd.atlas.2023-01-01+json", "X-Requested-With": "atrest-console" } })).status);
  assert.equal(status, 401);
  await shot("16-signed-out");
});
