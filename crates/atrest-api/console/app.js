// The atrest web console. It calls only the public Admin API (the same one the CLI uses),
// authenticated by the session cookie plus the X-CSRF-Token header on every state change.
// Server data is only ever put into the page as text, never as HTML.
"use strict";

const V2023 = "application/vnd.atlas.2023-01-01+json";
const V2024 = "application/vnd.atlas.2024-10-23+json";
const V_SERVICE_ACCOUNTS = "application/vnd.atlas.2024-08-05+json";
const ORG_ROLES = ["ORG_MEMBER", "ORG_READ_ONLY", "ORG_GROUP_CREATOR", "ORG_OWNER"];
const REFRESH_MS = 2000;

const AWS_REGIONS = [
  "US_EAST_1", "US_EAST_2", "US_WEST_1", "US_WEST_2", "CA_CENTRAL_1", "CA_WEST_1", "US_GOV_WEST_1", "US_GOV_EAST_1",
  "SA_EAST_1", "MX_CENTRAL_1", "EU_NORTH_1", "EU_WEST_1", "EU_WEST_2", "EU_WEST_3", "EU_CENTRAL_1", "EU_CENTRAL_2",
  "EU_SOUTH_1", "EU_SOUTH_2", "AP_EAST_1", "AP_EAST_2", "AP_NORTHEAST_1", "AP_NORTHEAST_2", "AP_NORTHEAST_3",
  "AP_SOUTHEAST_1", "AP_SOUTHEAST_2", "AP_SOUTHEAST_3", "AP_SOUTHEAST_4", "AP_SOUTHEAST_5", "AP_SOUTHEAST_6",
  "AP_SOUTHEAST_7", "AP_SOUTH_1", "AP_SOUTH_2", "ME_SOUTH_1", "ME_CENTRAL_1", "IL_CENTRAL_1", "AF_SOUTH_1",
  "CN_NORTH_1", "CN_NORTHWEST_1",
];
const INSTANCE_SIZES = ["M10", "M20", "M30", "M40", "M50", "M60", "M80", "M0", "M2", "M5"];

// What a person should understand from each refusal; the server's own detail follows it.
const EXPLAIN = {
  USER_UNAUTHORIZED: "Your session ended or the key is wrong. Sign in again.",
  ACCESS_FORBIDDEN: "Your API key does not have the role this needs (Project Owner for most changes).",
  CSRF_TOKEN_INVALID: "The request was refused as possibly cross-site. Reload the page.",
  SERVICE_ACCOUNT_SECRET_LIMIT_REACHED: "A service account has at most two secrets. Delete one first.",
  SERVICE_ACCOUNT_NOT_FOUND: "The service account no longer exists. Reload the page.",
  CANNOT_ASSUME_ROLE: "atrest could not assume the IAM role. Check the trust policy (principal and external ID); a new role can take a few seconds to propagate in AWS.",
  CLOUD_PROVIDER_ACCESS_ROLE_IN_USE: "Encryption at Rest uses this role. Switch Encryption at Rest to another role or disable it first.",
  CLOUD_PROVIDER_ACCESS_ROLE_NOT_AUTHORIZED: "Authorize the IAM role (Cloud Provider Access) before using it.",
  CANNOT_DISABLE_ENCRYPTION_AT_REST: "Clusters still use your keys. Turn off \"Manage your own encryption keys\" on every cluster first.",
  CANNOT_DISABLE_ENCRYPTION_AT_REST_REQUIRE_PRIVATE_NETWORKING_WHILE_PRIVATE_ENDPOINTS_EXIST: "Private endpoints for AWS KMS still exist. Delete every private endpoint first (Manage), then change the setting.",
  ENCRYPTION_AT_REST_NOT_ENABLED: "Enable Encryption at Rest with a valid key in the project's Advanced settings first.",
  ENCRYPTION_AT_REST_SETTINGS_INVALID: "The project's key is not valid right now.",
  ENCRYPTION_AT_REST_PRIVATE_NETWORKING_NOT_REQUIRED: "Turn on Require Private Networking before creating private endpoints.",
  ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_ALREADY_EXISTS: "There is already a private endpoint in that region.",
  ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_DELETE_BLOCKED_DURING_PROVISIONING: "Wait until the endpoint finishes provisioning, then delete it.",
  ENCRYPTION_AT_REST_PRIVATE_ENDPOINT_REGION_NOT_AVAILABLE: "There is no active private endpoint in the key's region.",
  ENCRYPTION_AT_REST_PRIVATE_NETWORKING_REQUIRES_MULTI_REGION_KEY: "A cluster spanning regions needs a multi-region key.",
  NO_PERMISSION_TO_ENCRYPT_DECRYPT: "The role may not use the key. Grant kms:Encrypt, kms:Decrypt and kms:DescribeKey to the role.",
  AWS_KMS_CUSTOMER_MASTER_KEY_NOT_FOUND: "AWS KMS does not know this key in that region.",
  AWS_KMS_CUSTOMER_MASTER_KEY_NOT_ENABLED: "The key is disabled in AWS KMS.",
  AWS_KMS_CUSTOMER_MASTER_KEY_PENDING_DELETION: "The key is scheduled for deletion in AWS KMS.",
  AWS_KMS_UNREACHABLE: "AWS KMS could not be reached. Try again in a moment.",
  CANNOT_USE_ENCRYPTION_AT_REST_TENANT: "Customer key management needs an M10 or larger cluster.",
  CLUSTER_NOT_IDLE: "The cluster is busy with another change. Wait until it is IDLE.",
  DUPLICATE_CLUSTER_NAME: "A cluster with that name already exists in this project.",
  GROUP_ALREADY_EXISTS: "A project with that name already exists.",
  CANNOT_CLOSE_GROUP_ACTIVE_ATLAS_CLUSTERS: "Delete the project's clusters first.",
  ENCRYPTION_AT_REST_KEY_INACCESSIBLE: "The cluster's key is not accessible, so its data is not either.",
};

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.errorCode) || "";
  }
}

const session = { csrf: null, publicKey: null, orgId: null };
let refreshTimer = null;
let renderSeq = 0;

// ---- DOM helpers -------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let idSeq = 0;
function field(labelText, control, hint) {
  const id = control.id || `f${++idSeq}`;
  control.id = id;
  return h("div", {}, h("label", { for: id }, labelText, hint ? h("span", { class: "hint" }, " — ", hint) : null), control);
}

function badge(text, kind) {
  return h("span", { class: `badge ${kind}` }, text);
}

function statusBadge(status) {
  const kind = { ACTIVE: "ok", IDLE: "ok", FAILED: "bad", INITIATING: "wait", DELETING: "wait", CREATING: "wait",
    UPDATING: "wait", PENDING_RECREATION: "wait", REPAIRING: "wait" }[status] || "off";
  return badge(status, kind);
}

function copyButton(getText, what) {
  return h("button", {
    type: "button", class: "secondary small", "aria-label": `Copy ${what}`,
    onclick: async (ev) => {
      const text = getText();
      try {
        await navigator.clipboard.writeText(text);
      } catch (_) {
        // Clipboard access can be refused (for example without a user gesture); select the text instead.
        const range = document.createRange();
        const target = ev.target.closest(".copy-block")?.querySelector("pre, code");
        if (target) { range.selectNodeContents(target); getSelection().removeAllRanges(); getSelection().addRange(range); }
      }
      ev.target.textContent = "Copied";
      setTimeout(() => { ev.target.textContent = "Copy"; }, 1500);
    },
  }, "Copy");
}

// A destructive button acts on its second press; the first turns it into "Confirm delete".
function confirmedTwice(button) {
  if (button.dataset.confirm === "1") return true;
  button.dataset.confirm = "1";
  button.textContent = "Confirm delete";
  return false;
}

function copyBlock(title, text, what) {
  return h("div", { class: "copy-block" },
    h("div", { class: "copy-row" }, h("h3", {}, title), copyButton(() => text, what)),
    h("pre", { class: "copyable", "data-copy": what }, text));
}

function showError(err, context) {
  const alerts = document.getElementById("alerts");
  alerts.replaceChildren();
  const explain = EXPLAIN[err.code];
  alerts.append(h("div", { class: "alert error", "data-error-code": err.code || "" },
    h("button", { type: "button", class: "close", "aria-label": "Dismiss", onclick: () => alerts.replaceChildren() }, "×"),
    h("strong", {}, context ? `${context} failed. ` : "", explain || ""),
    h("div", {}, err.message),
    err.code ? h("div", { class: "code" }, `${err.code}${err.status ? ` (HTTP ${err.status})` : ""}`) : null));
}

function showSuccess(text) {
  const alerts = document.getElementById("alerts");
  alerts.replaceChildren(h("div", { class: "alert success" }, text));
  announce(text);
}

function clearAlerts() {
  document.getElementById("alerts").replaceChildren();
}

function announce(text) {
  document.getElementById("status").textContent = text;
}

// ---- API -----------------------------------------------------------------------------------

async function api(method, path, body, accept) {
  const headers = { "Accept": accept || V2023, "X-Requested-With": "atrest-console" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!resp.ok) {
    if (resp.status === 401 && !path.startsWith("/console/session")) {
      session.csrf = null;
      location.hash = "#/signin";
    }
    throw new ApiError(resp.status, json);
  }
  return json;
}

const v2 = (path) => `/api/atlas/v2${path}`;

// Runs a state change from a button: disables it while in flight, reports the outcome.
async function act(button, label, fn) {
  clearAlerts();
  if (button) button.disabled = true;
  try {
    const msg = await fn();
    if (msg) showSuccess(msg);
    return true;
  } catch (e) {
    showError(e, label);
    return false;
  } finally {
    if (button) button.disabled = false;
  }
}

// ---- Routing -------------------------------------------------------------------------------

const routes = [
  [/^#\/signin$/, signInPage],
  [/^#\/projects$/, projectsPage],
  [/^#\/service-accounts$/, serviceAccountsPage],
  [/^#\/projects\/([0-9a-f]{24})\/clusters$/, clustersPage],
  [/^#\/projects\/([0-9a-f]{24})\/access$/, accessPage],
  [/^#\/projects\/([0-9a-f]{24})\/advanced$/, advancedPage],
  [/^#\/projects\/([0-9a-f]{24})\/endpoints$/, endpointsPage],
  [/^#\/projects\/([0-9a-f]{24})\/events$/, eventsPage],
];

async function route() {
  if (refreshTimer) { clearInterval(refreshTimer); refreshTimer = null; }
  clearAlerts();
  const hash = location.hash || "#/projects";
  if (!session.csrf && hash !== "#/signin") {
    try {
      const s = await api("GET", "/console/session");
      Object.assign(session, { csrf: s.csrfToken, publicKey: s.publicKey, orgId: s.orgId });
    } catch (_) {
      location.hash = "#/signin";
      return;
    }
  }
  renderWho();
  const seq = ++renderSeq;
  for (const [re, page] of routes) {
    const m = hash.match(re);
    if (m) {
      const view = document.getElementById("view");
      try {
        const content = await page(...m.slice(1));
        if (seq !== renderSeq) return; // the user navigated on meanwhile
        view.replaceChildren(content);
      } catch (e) {
        if (seq !== renderSeq) return;
        view.replaceChildren(h("h1", {}, "Something went wrong"));
        showError(e, "Loading the page");
      }
      const main = document.getElementById("main");
      main.focus({ preventScroll: true });
      return;
    }
  }
  location.hash = "#/projects";
}

function every(fn) {
  refreshTimer = setInterval(async () => {
    try { await fn(); } catch (_) { /* the next tick retries; errors of actions are shown by act() */ }
  }, REFRESH_MS);
}

function renderWho() {
  const who = document.getElementById("who");
  if (!session.csrf) { who.replaceChildren(); return; }
  who.replaceChildren(
    h("span", {}, "Signed in with API key ", h("code", {}, session.publicKey)),
    h("button", { type: "button", class: "secondary small", onclick: signOut }, "Sign out"));
}

async function signOut() {
  try { await api("DELETE", "/console/session"); } catch (_) { /* signed out either way */ }
  session.csrf = null;
  location.hash = "#/signin";
}

function sideNav(project, current) {
  const nav = document.getElementById("sidenav");
  if (!project) { nav.replaceChildren(); return; }
  const link = (page, text) => h("a", { href: `#/projects/${project.id}/${page}`, "aria-current": page === current ? "page" : null }, text);
  nav.replaceChildren(
    h("h2", {}, "Project"),
    h("div", { class: "project-name" }, project.name),
    link("clusters", "Clusters"),
    h("h2", {}, "Security"),
    link("access", "Database & Network Access"),
    link("advanced", "Advanced"),
    link("endpoints", "Private Endpoints for AWS KMS"),
    h("h2", {}, "Activity"),
    link("events", "Events"),
    h("a", { href: "#/projects" }, "← All projects"));
}

// ---- Pages ---------------------------------------------------------------------------------

async function signInPage() {
  sideNav(null);
  session.csrf = null;
  renderWho();
  const pub = h("input", { type: "text", name: "publicKey", autocomplete: "username", required: true, spellcheck: "false" });
  const priv = h("input", { type: "password", name: "privateKey", autocomplete: "current-password", required: true });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", {
    class: "stack", onsubmit: async (ev) => {
      ev.preventDefault();
      await act(button, "Sign in", async () => {
        const s = await api("POST", "/console/session", { publicKey: pub.value.trim(), privateKey: priv.value });
        Object.assign(session, { csrf: s.csrfToken, publicKey: s.publicKey, orgId: s.orgId });
        priv.value = "";
        location.hash = "#/projects";
      });
    },
  }, field("Public key", pub), field("Private key", priv), h("div", {}, button));
  return h("div", { class: "signin panel" },
    h("h1", {}, "Sign in"),
    h("p", { class: "subtitle" }, "Use an API key pair, for example the Organization Owner key that ",
      h("code", {}, "atrest serve"), " wrote to ", h("code", {}, "<data-dir>/bootstrap-credentials"), "."),
    form);
}

async function projectsPage() {
  sideNav(null);
  const list = await api("GET", v2("/groups?itemsPerPage=500"));
  const name = h("input", { type: "text", name: "projectName", required: true, maxlength: 64 });
  const button = h("button", { type: "submit" }, "Create project");
  const rows = list.results.map((p) => h("tr", {},
    h("td", {}, h("a", { href: `#/projects/${p.id}/clusters` }, p.name)),
    h("td", { class: "mono" }, p.id),
    h("td", {}, p.clusterCount ?? "—"),
    h("td", {}, new Date(p.created).toLocaleString())));
  return h("div", {},
    h("h1", {}, "Projects"),
    h("p", { class: "subtitle" }, `${list.totalCount} project${list.totalCount === 1 ? "" : "s"} in organization `, h("code", {}, session.orgId),
      " · ", h("a", { href: "#/service-accounts" }, "Service accounts")),
    h("div", { class: "panel" },
      rows.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Project ID"), h("th", {}, "Clusters"), h("th", {}, "Created"))), h("tbody", {}, rows))
        : h("p", { class: "muted" }, "No projects yet.")),
    h("div", { class: "panel" },
      h("h2", {}, "Create a project"),
      h("form", {
        class: "stack", onsubmit: async (ev) => {
          ev.preventDefault();
          await act(button, "Creating the project", async () => {
            const p = await api("POST", v2("/groups"), { name: name.value.trim(), orgId: session.orgId });
            location.hash = `#/projects/${p.id}/clusters`;
          });
        },
      }, field("Project name", name), h("div", {}, button))));
}

// Organization → Service accounts (OAuth client credentials for API clients).
async function serviceAccountsPage() {
  sideNav(null);
  const load = async () => (await api("GET", v2(`/orgs/${session.orgId}/serviceAccounts?itemsPerPage=500`), undefined, V_SERVICE_ACCOUNTS)).results;
  const shown = h("div", {});
  const body = h("tbody", {});
  // A secret is in the answer that created it and nowhere else: show it once, with a warning.
  const showSecret = (clientId, secret) => shown.replaceChildren(h("div", { class: "panel", "data-new-secret": clientId },
    h("h2", {}, "Copy the client secret now"),
    h("p", {}, "atrest keeps only its hash: it is shown here once. Exchange the client id and secret for a token at ",
      h("code", {}, "POST /api/oauth/token"), " (client credentials)."),
    copyBlock("Client ID", clientId, "client id"),
    copyBlock("Client secret", secret, "client secret")));
  const render = (list) => body.replaceChildren(...(list.length ? list.map((a) => {
    const secrets = (a.secrets || []).map((sec) => h("div", { class: "row", "data-secret-id": sec.id },
      h("code", {}, sec.maskedSecretValue || "•••"),
      h("span", { class: "muted" }, ` expires ${new Date(sec.expiresAt).toLocaleString()}`),
      h("button", { type: "button", class: "danger small", "aria-label": `Delete secret ${sec.maskedSecretValue} of ${a.name}`, onclick: async (ev) => {
        if (!confirmedTwice(ev.target)) return;
        await act(ev.target, "Deleting the secret", async () => {
          await api("DELETE", v2(`/orgs/${session.orgId}/serviceAccounts/${a.clientId}/secrets/${sec.id}`), undefined, V_SERVICE_ACCOUNTS);
          render(await load());
          return `Secret deleted; tokens made with it no longer work.`;
        });
      } }, "Delete")));
    return h("tr", { "data-client-id": a.clientId },
      h("td", {}, a.name, a.description ? h("div", { class: "muted" }, a.description) : null),
      h("td", { class: "mono" }, a.clientId),
      h("td", {}, (a.roles || []).join(", ")),
      h("td", {}, secrets.length ? secrets : h("span", { class: "muted" }, "No secret")),
      h("td", {}, h("div", { class: "row" },
        h("button", { type: "button", class: "secondary small", "aria-label": `New secret for ${a.name}`, disabled: secrets.length >= 2 ? true : null, onclick: async (ev) => {
          await act(ev.target, "Creating a secret", async () => {
            const sec = await api("POST", v2(`/orgs/${session.orgId}/serviceAccounts/${a.clientId}/secrets`), { secretExpiresAfterHours: 720 }, V_SERVICE_ACCOUNTS);
            showSecret(a.clientId, sec.secret);
            render(await load());
            return "Secret created (valid 30 days).";
          });
        } }, "New secret"),
        h("button", { type: "button", class: "danger small", "aria-label": `Delete service account ${a.name}`, onclick: async (ev) => {
          if (!confirmedTwice(ev.target)) return;
          await act(ev.target, `Deleting service account ${a.name}`, async () => {
            await api("DELETE", v2(`/orgs/${session.orgId}/serviceAccounts/${a.clientId}`), undefined, V_SERVICE_ACCOUNTS);
            shown.replaceChildren();
            render(await load());
            return `Service account ${a.name} deleted; its tokens no longer work.`;
          });
        } }, "Delete"))));
  }) : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No service accounts yet."))]));
  render(await load());

  const name = h("input", { type: "text", name: "serviceAccountName", required: true, maxlength: 64 });
  const description = h("input", { type: "text", name: "serviceAccountDescription", required: true, maxlength: 250 });
  const role = h("select", { name: "serviceAccountRole" }, ORG_ROLES.map((r) => h("option", { value: r }, r)));
  const hours = h("input", { type: "number", name: "secretExpiresAfterHours", min: 8, max: 8766, value: 720, required: true });
  const button = h("button", { type: "submit" }, "Create service account");
  return h("div", {},
    h("h1", {}, "Service accounts"),
    h("p", { class: "subtitle" }, "OAuth 2.0 clients of organization ", h("code", {}, session.orgId),
      ": a client id and secret get a bearer token valid one hour. ", h("a", { href: "#/projects" }, "← Projects")),
    shown,
    h("div", { class: "panel" },
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Client ID"), h("th", {}, "Roles"), h("th", {}, "Secrets"), h("th", {}, ""))), body)),
    h("div", { class: "panel" },
      h("h2", {}, "Create a service account"),
      h("form", {
        class: "stack", onsubmit: async (ev) => {
          ev.preventDefault();
          await act(button, "Creating the service account", async () => {
            const a = await api("POST", v2(`/orgs/${session.orgId}/serviceAccounts`), {
              name: name.value.trim(), description: description.value.trim(), roles: [role.value],
              secretExpiresAfterHours: Number(hours.value),
            }, V_SERVICE_ACCOUNTS);
            showSecret(a.clientId, a.secrets[0].secret);
            name.value = ""; description.value = "";
            render(await load());
            return `Service account ${a.name} created.`;
          });
        },
      }, field("Name", name), field("Description", description), field("Organization role", role),
      field("Secret expires after (hours)", hours, "8 to 8766"), h("div", {}, button))));
}

const loadProject = (id) => api("GET", v2(`/groups/${id}`));
const loadEar = (id) => api("GET", v2(`/groups/${id}/encryptionAtRest`));
const loadRoles = async (id) => (await api("GET", v2(`/groups/${id}/cloudProviderAccess`))).awsIamRoles || [];
const loadEndpoints = async (id) => (await api("GET", v2(`/groups/${id}/encryptionAtRest/AWS/privateEndpoints?itemsPerPage=500`))).results;

// Database & Network Access → Cloud Provider Access.
async function accessPage(groupId) {
  const [project, roles] = await Promise.all([loadProject(groupId), loadRoles(groupId)]);
  sideNav(project, "access");
  const wizard = h("div", {});
  const table = h("tbody", {});
  const render = (list) => table.replaceChildren(...list.map((r) => h("tr", { "data-role-id": r.roleId },
    h("td", { class: "mono" }, r.roleId),
    h("td", { class: "mono" }, r.iamAssumedRoleArn || "—"),
    h("td", {}, r.authorizedDate ? badge("Authorized", "ok") : badge("Pending authorization", "wait")),
    h("td", {}, (r.featureUsages || []).length ? "Encryption at Rest" : "—"),
    h("td", {}, r.authorizedDate ? null : h("button", { type: "button", class: "secondary small", onclick: () => openWizard(r) }, "Finish")))));
  render(roles);

  const openWizard = (role) => {
    const trust = JSON.stringify({
      Version: "2012-10-17",
      Statement: [{
        Effect: "Allow",
        Principal: { AWS: role.atlasAWSAccountArn },
        Action: "sts:AssumeRole",
        Condition: { StringEquals: { "sts:ExternalId": role.atlasAssumedRoleExternalId } },
      }],
    }, null, 2);
    const cli = [
      "cat > role-trust-policy.json <<'EOF'", trust, "EOF",
      "aws iam create-role --role-name atlas-kms-role \\",
      "  --assume-role-policy-document file://role-trust-policy.json",
      "aws iam put-role-policy --role-name atlas-kms-role --policy-name atlas-kms \\",
      "  --policy-document '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"kms:Encrypt\",\"kms:Decrypt\",\"kms:DescribeKey\"],\"Resource\":\"<your key ARN>\"}]}'",
    ].join("\n");
    const arn = h("input", { type: "text", name: "iamAssumedRoleArn", placeholder: "arn:aws:iam::123456789012:role/atlas-kms-role", required: true, spellcheck: "false" });
    const finish = h("button", { type: "submit" }, "Validate and Finish");
    wizard.replaceChildren(h("div", { class: "panel", "data-wizard": "authorize-role" },
      h("h2", {}, "Authorize an AWS IAM role"),
      h("ol", { class: "steps" }, h("li", {}, "1. Create the role in AWS"), h("li", { "aria-current": "step" }, "2. Enter the role ARN")),
      h("dl", { class: "kv" },
        h("dt", {}, "atrest AWS account ARN"), h("dd", { class: "mono", "data-field": "atlasAWSAccountArn" }, role.atlasAWSAccountArn),
        h("dt", {}, "External ID"), h("dd", { class: "mono", "data-field": "atlasAssumedRoleExternalId" }, role.atlasAssumedRoleExternalId)),
      copyBlock("Trust policy", trust, "trust policy"),
      copyBlock("AWS CLI commands", cli, "AWS CLI commands"),
      h("form", {
        class: "stack", onsubmit: async (ev) => {
          ev.preventDefault();
          const done = await act(finish, "Validating the role", async () => {
            await api("PATCH", v2(`/groups/${groupId}/cloudProviderAccess/${role.roleId}`), { providerName: "AWS", iamAssumedRoleArn: arn.value.trim() });
            return `Role ${arn.value.trim()} is authorized.`;
          });
          if (done) { wizard.replaceChildren(); render(await loadRoles(groupId)); }
        },
      }, field("IAM role ARN", arn, "paste the ARN of the role you created"), h("div", {}, finish))));
    arn.focus();
  };

  const authorize = h("button", {
    type: "button", onclick: async (ev) => {
      await act(ev.target, "Creating the role authorization", async () => {
        const role = await api("POST", v2(`/groups/${groupId}/cloudProviderAccess`), { providerName: "AWS" });
        render(await loadRoles(groupId));
        openWizard(role);
      });
    },
  }, "Authorize a new IAM role");

  return h("div", {},
    h("h1", {}, "Database & Network Access"),
    h("p", { class: "subtitle" }, "Cloud Provider Access: IAM roles that atrest assumes to use your AWS KMS key."),
    h("div", { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", {}, "Cloud Provider Access"), h("div", { class: "actions" }, authorize)),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Role ID"), h("th", {}, "IAM role ARN"), h("th", {}, "Status"), h("th", {}, "Used by"), h("th", {}, ""))), table)),
    wizard);
}

// Advanced → Encryption at Rest using your Key Management, and Network Settings for your AWS KMS.
async function advancedPage(groupId) {
  const [project, ear, roles] = await Promise.all([loadProject(groupId), loadEar(groupId), loadRoles(groupId)]);
  sideNav(project, "advanced");
  const kms = ear.awsKms || {};
  const authorized = roles.filter((r) => r.authorizedDate);

  const enabled = h("input", { type: "checkbox", name: "enabled", checked: kms.enabled ? true : null, role: "switch" });
  const provider = h("select", { name: "provider" }, h("option", { value: "AWS" }, "AWS KMS"));
  const role = h("select", { name: "roleId" }, h("option", { value: "" }, authorized.length ? "Choose a role" : "No authorized role yet"),
    authorized.map((r) => h("option", { value: r.roleId, selected: r.roleId === kms.roleId ? true : null }, `${r.iamAssumedRoleArn} (${r.roleId})`)));
  const keyId = h("input", { type: "text", name: "customerMasterKeyID", value: kms.customerMasterKeyID || "", spellcheck: "false", placeholder: "key ARN, key id or alias" });
  const region = h("select", { name: "region" }, h("option", { value: "" }, "Choose the key's region"),
    AWS_REGIONS.map((r) => h("option", { value: r, selected: r === kms.region ? true : null }, r)));
  const save = h("button", { type: "submit" }, "Save");
  const result = h("div", { "data-field": "validity" });
  const showValidity = (k) => result.replaceChildren(
    h("dl", { class: "kv" },
      h("dt", {}, "Status"), h("dd", {}, k.enabled ? badge("Enabled", "ok") : badge("Disabled", "off")),
      h("dt", {}, "Key valid"), h("dd", { "data-field": "valid" }, k.enabled ? (k.valid ? badge("valid: true", "ok") : badge("valid: false", "bad")) : "—"),
      h("dt", {}, "Key ARN"), h("dd", { class: "mono" }, k.customerMasterKeyID || "—")));
  showValidity(kms);

  const earForm = h("form", {
    class: "stack", onsubmit: async (ev) => {
      ev.preventDefault();
      const saved = await act(save, "Saving Encryption at Rest", async () => {
        const body = { awsKms: { enabled: enabled.checked } };
        if (enabled.checked) Object.assign(body.awsKms, { customerMasterKeyID: keyId.value.trim(), region: region.value, roleId: role.value || undefined });
        const r = await api("PATCH", v2(`/groups/${groupId}/encryptionAtRest`), body);
        showValidity(r.awsKms);
        renderNetwork(r.awsKms);
        return enabled.checked ? (r.awsKms.valid ? "Saved. atrest encrypted and decrypted with your key: the key is valid." : "Saved, but the key is not valid.") : "Encryption at Rest is disabled.";
      });
      // A refused change changed nothing: show the switch as the server has it.
      if (!saved) enabled.checked = !!(await loadEar(groupId)).awsKms?.enabled;
    },
  },
  h("label", { class: "switch" }, enabled, "Encryption at Rest using your Key Management"),
  field("Cloud provider", provider), field("IAM role", role, "from Cloud Provider Access"),
  field("Customer master key ID", keyId), field("Key region", region), h("div", {}, save));

  const network = h("div", {});
  const renderNetwork = (k) => {
    const toggle = h("input", { type: "checkbox", role: "switch", name: "requirePrivateNetworking", checked: k.requirePrivateNetworking ? true : null, disabled: k.enabled ? null : true });
    toggle.addEventListener("change", async () => {
      const want = toggle.checked;
      const done = await act(toggle, "Changing Require Private Networking", async () => {
        const r = await api("PATCH", v2(`/groups/${groupId}/encryptionAtRest`), { awsKms: { requirePrivateNetworking: want } });
        renderNetwork(r.awsKms);
        return want ? "Private networking is required: atrest reaches AWS KMS only through private endpoints." : "Private networking is no longer required.";
      });
      if (!done) toggle.checked = !want;
    });
    const setUp = h("button", { type: "button", disabled: k.requirePrivateNetworking ? null : true, onclick: () => openSetUp(k) }, "Set up");
    const manage = h("a", { class: "button secondary", href: `#/projects/${groupId}/endpoints` }, "Manage");
    network.replaceChildren(
      h("label", { class: "switch" }, toggle, "Require Private Networking"),
      h("p", { class: "muted" }, k.enabled ? "atrest then calls AWS KMS only through a private endpoint in the key's region." : "Enable Encryption at Rest first."),
      h("div", { class: "row" }, setUp, manage));
  };
  renderNetwork(kms);

  const wizard = h("div", {});
  const openSetUp = (k) => {
    let step = 1;
    const draw = () => {
      const steps = h("ol", { class: "steps" },
        h("li", { "aria-current": step === 1 ? "step" : null }, "1. Replicate your key"),
        h("li", { "aria-current": step === 2 ? "step" : null }, "2. Select regions"));
      if (step === 1) {
        const cont = h("button", { type: "button", onclick: () => { step = 2; draw(); } }, "Continue");
        wizard.replaceChildren(h("div", { class: "panel", "data-wizard": "private-endpoints" },
          h("h2", {}, "Set up private endpoints for AWS KMS"), steps,
          h("p", {}, "Copy to save your customer master key ID. For a multi-region key, replicate it (",
            h("code", {}, "aws kms replicate-key"), ") into every region where you create a private endpoint."),
          h("div", { class: "copy-block copy-row" }, h("code", { "data-field": "cmk" }, k.customerMasterKeyID || "—"), copyButton(() => k.customerMasterKeyID || "", "customer master key ID")),
          h("div", { class: "row", style: null }, cont)));
        cont.focus();
      } else {
        const regions = h("select", { multiple: true, name: "regions", size: 8 }, AWS_REGIONS.map((r) => h("option", { value: r }, r)));
        const create = h("button", { type: "submit" }, "Continue");
        wizard.replaceChildren(h("div", { class: "panel", "data-wizard": "private-endpoints" },
          h("h2", {}, "Set up private endpoints for AWS KMS"), steps,
          h("form", {
            class: "stack", onsubmit: async (ev) => {
              ev.preventDefault();
              const chosen = [...regions.selectedOptions].map((o) => o.value);
              if (!chosen.length) { showError(new ApiError(0, { detail: "Select at least one region." }), "Creating private endpoints"); return; }
              const done = await act(create, "Creating private endpoints", async () => {
                for (const r of chosen) {
                  await api("POST", v2(`/groups/${groupId}/encryptionAtRest/AWS/privateEndpoints`), { regionName: r });
                }
              });
              if (done) location.hash = `#/projects/${groupId}/endpoints`;
            },
          }, field("AWS regions", regions, "hold Ctrl or Shift to select several"), h("div", {}, create))));
        regions.focus();
      }
    };
    draw();
  };

  return h("div", {},
    h("h1", {}, "Advanced"),
    h("p", { class: "subtitle" }, "Project settings for encryption at rest."),
    h("section", { class: "panel", "aria-labelledby": "ear-h" }, h("h2", { id: "ear-h" }, "Encryption at Rest using your Key Management"), earForm, result),
    h("section", { class: "panel", "aria-labelledby": "net-h" }, h("h2", { id: "net-h" }, "Network Settings for your AWS KMS"), network),
    wizard);
}

// Manage → Private Endpoints for AWS KMS.
async function endpointsPage(groupId) {
  const [project, endpoints] = await Promise.all([loadProject(groupId), loadEndpoints(groupId)]);
  sideNav(project, "endpoints");
  const body = h("tbody", {});
  const confirming = new Set();
  const render = (list) => {
    body.replaceChildren(...(list.length ? list.map((e) => {
      const del = confirming.has(e.id)
        ? h("button", { type: "button", class: "danger small", onclick: async (ev) => {
          await act(ev.target, `Deleting the endpoint in ${e.regionName}`, async () => {
            await api("DELETE", v2(`/groups/${groupId}/encryptionAtRest/AWS/privateEndpoints/${e.id}`));
            confirming.delete(e.id);
            render(await loadEndpoints(groupId));
            return `Deleting the private endpoint in ${e.regionName}.`;
          });
        } }, "Confirm delete")
        : h("button", { type: "button", class: "danger small", disabled: e.status === "DELETING" ? true : null, "aria-label": `Delete the endpoint in ${e.regionName}`, onclick: () => { confirming.add(e.id); render(list); } }, "Delete");
      return h("tr", { "data-region": e.regionName, "data-status": e.status },
        h("td", {}, e.regionName),
        h("td", { class: "mono" }, e.privateEndpointConnectionName || "—"),
        h("td", {}, statusBadge(e.status)),
        h("td", {}, e.errorMessage || ""),
        h("td", {}, del));
    }) : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No private endpoints. Create them with Set up on the Advanced page."))]));
  };
  render(endpoints);
  every(async () => render(await loadEndpoints(groupId)));
  return h("div", {},
    h("h1", {}, "Private Endpoints for AWS KMS"),
    h("p", { class: "subtitle" }, "Regions, endpoint names, status and actions. Statuses refresh by themselves."),
    h("div", { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", {}, "Endpoints"), h("div", { class: "actions" }, h("a", { class: "button secondary", href: `#/projects/${groupId}/advanced` }, "Set up more"))),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Region"), h("th", {}, "Endpoint name"), h("th", {}, "Status"), h("th", {}, "Error"), h("th", {}, "Actions"))), body)));
}

function clusterRegions(c) {
  return (c.replicationSpecs || []).flatMap((s) => (s.regionConfigs || []).map((r) => r.regionName));
}

function clusterSize(c) {
  const rc = (c.replicationSpecs || [])[0]?.regionConfigs?.[0];
  return rc?.electableSpecs?.instanceSize || "—";
}

async function clustersPage(groupId) {
  const [project, ear] = await Promise.all([loadProject(groupId), loadEar(groupId)]);
  sideNav(project, "clusters");
  const body = h("tbody", {});
  const editor = h("div", {});
  let requirePn = !!(ear.awsKms && ear.awsKms.requirePrivateNetworking);

  const progressOf = async (c) => {
    if (c.stateName === "IDLE") return null;
    try {
      const s = await api("GET", `/api/atrest/v1/groups/${groupId}/clusters/${encodeURIComponent(c.name)}/encryption`, undefined, "application/json");
      return s.switchProgress;
    } catch (_) { return null; }
  };

  const render = async () => {
    const list = (await api("GET", v2(`/groups/${groupId}/clusters?itemsPerPage=500`), undefined, V2024)).results;
    const rows = await Promise.all(list.map(async (c) => {
      const cmk = c.encryptionAtRestProvider === "AWS";
      const p = await progressOf(c);
      const progress = p && p.bytesTotal ? h("div", {}, h("progress", { max: p.bytesTotal, value: p.bytesDone, "aria-label": `Re-encryption of ${c.name}` }),
        h("span", { class: "muted" }, ` ${p.databasesDone}/${p.databasesTotal} databases`)) : null;
      return h("tr", { "data-cluster": c.name, "data-state": c.stateName },
        h("td", {}, c.name),
        h("td", {}, clusterSize(c)),
        h("td", {}, clusterRegions(c).join(", ")),
        h("td", {}, statusBadge(c.stateName), progress),
        h("td", {}, cmk ? badge("Your key (AWS KMS)", "ok") : badge("atrest-managed", "off")),
        h("td", { "data-field": "privateNetworking" }, cmk && requirePn ? badge("Active", "ok") : badge("Inactive", "off")),
        h("td", {}, h("div", { class: "row" },
          h("button", { type: "button", class: "secondary small", onclick: () => openEditor(c) }, "Edit"),
          h("button", { type: "button", class: "danger small", "aria-label": `Delete cluster ${c.name}`, onclick: async (ev) => {
            if (!confirmedTwice(ev.target)) return;
            await act(ev.target, `Deleting cluster ${c.name}`, async () => {
              await api("DELETE", v2(`/groups/${groupId}/clusters/${encodeURIComponent(c.name)}`), undefined, V2023);
              await render();
              return `Deleting cluster ${c.name}.`;
            });
          } }, "Delete"))));
    }));
    body.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No clusters yet."))]));
  };

  const openEditor = (existing) => {
    const name = h("input", { type: "text", name: "clusterName", required: true, value: existing ? existing.name : "", disabled: existing ? true : null, spellcheck: "false" });
    const size = h("select", { name: "instanceSize" }, INSTANCE_SIZES.map((s) => h("option", { value: s, selected: (existing ? clusterSize(existing) : "M10") === s ? true : null }, s)));
    const chosen = existing ? clusterRegions(existing) : [ear.awsKms?.region || "US_EAST_1"];
    const regions = h("select", { name: "regions", multiple: true, size: 6, disabled: existing ? true : null }, AWS_REGIONS.map((r) => h("option", { value: r, selected: chosen.includes(r) ? true : null }, r)));
    const cmk = h("input", { type: "checkbox", role: "switch", name: "manageOwnKeys", checked: existing ? (existing.encryptionAtRestProvider === "AWS" ? true : null) : null });
    const submit = h("button", { type: "submit" }, existing ? "Apply changes" : "Create cluster");
    const pnStatus = h("p", { class: "muted", "data-field": "privateNetworkingStatus" }, "Require Private Networking: ", requirePn ? badge("Active", "ok") : badge("Inactive", "off"),
      requirePn ? " — with your own keys, atrest reaches AWS KMS only through private endpoints." : "");
    editor.replaceChildren(h("div", { class: "panel", "data-editor": existing ? "edit" : "create" },
      h("h2", {}, existing ? `Edit ${existing.name}` : "Create a cluster"),
      h("form", {
        class: "stack", onsubmit: async (ev) => {
          ev.preventDefault();
          const provider = cmk.checked ? "AWS" : "NONE";
          const done = await act(submit, existing ? `Updating ${existing.name}` : "Creating the cluster", async () => {
            if (existing) {
              const change = { encryptionAtRestProvider: provider };
              if (size.value !== clusterSize(existing)) {
                change.replicationSpecs = existing.replicationSpecs.map((s) => ({
                  regionConfigs: s.regionConfigs.map((r) => ({ providerName: r.providerName, regionName: r.regionName, priority: r.priority,
                    electableSpecs: { instanceSize: size.value, nodeCount: r.electableSpecs?.nodeCount || 3 } })),
                }));
              }
              await api("PATCH", v2(`/groups/${groupId}/clusters/${encodeURIComponent(existing.name)}`), change, V2024);
              return `Updating ${existing.name}; progress shows in the list.`;
            }
            const picked = [...regions.selectedOptions].map((o) => o.value);
            const regionConfigs = picked.map((r, i) => ({ providerName: "AWS", regionName: r, priority: 7 - i, electableSpecs: { instanceSize: size.value, nodeCount: 3 } }));
            await api("POST", v2(`/groups/${groupId}/clusters`), { name: name.value.trim(), clusterType: "REPLICASET", encryptionAtRestProvider: provider, replicationSpecs: [{ regionConfigs }] }, V2024);
            return `Creating cluster ${name.value.trim()}.`;
          });
          if (done) { editor.replaceChildren(); await render(); }
        },
      },
      field("Cluster name", name), field("Cluster tier", size, "customer key management needs M10 or larger"),
      field("Regions", regions, "the first is the highest priority"),
      h("label", { class: "switch" }, cmk, "Manage your own encryption keys"), pnStatus,
      h("div", { class: "row" }, submit, h("button", { type: "button", class: "secondary", onclick: () => editor.replaceChildren() }, "Cancel")))));
    (existing ? size : name).focus();
  };

  await render();
  every(async () => {
    const fresh = await loadEar(groupId);
    requirePn = !!(fresh.awsKms && fresh.awsKms.requirePrivateNetworking);
    await render();
  });
  return h("div", {},
    h("h1", {}, "Clusters"),
    h("p", { class: "subtitle" }, "Each cluster's data is encrypted under keys wrapped by your AWS KMS key when it manages its own encryption keys."),
    h("div", { class: "panel" },
      h("div", { class: "panel-head" }, h("h2", {}, "Clusters"), h("div", { class: "actions" }, h("button", { type: "button", onclick: () => openEditor(null) }, "Create cluster"))),
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Tier"), h("th", {}, "Regions"), h("th", {}, "State"), h("th", {}, "Encryption key"), h("th", {}, "Require Private Networking"), h("th", {}, "Actions"))), body)),
    editor);
}

async function eventsPage(groupId) {
  const project = await loadProject(groupId);
  sideNav(project, "events");
  const body = h("tbody", {});
  const render = async () => {
    const list = (await api("GET", v2(`/groups/${groupId}/events?itemsPerPage=100`))).results;
    body.replaceChildren(...list.map((e) => {
      const rest = Object.fromEntries(Object.entries(e).filter(([k]) => !["id", "eventTypeName", "created", "groupId", "isGlobalAdmin", "links"].includes(k)));
      return h("tr", {}, h("td", {}, new Date(e.created).toLocaleString()), h("td", { class: "mono" }, e.eventTypeName), h("td", { class: "mono" }, JSON.stringify(rest)));
    }));
  };
  await render();
  every(render);
  return h("div", {},
    h("h1", {}, "Events"),
    h("p", { class: "subtitle" }, "The newest 100 events of the project; the list refreshes by itself."),
    h("div", { class: "panel" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Event"), h("th", {}, "Details"))), body)));
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
