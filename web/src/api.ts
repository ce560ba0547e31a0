// The typed client of the management API (docs/openapi.json; a test checks that every path used here is
// in that document). Browsers sign in with a session cookie; unsafe requests carry the CSRF token the
// sign-in returned. Every error has the API's one shape, turned into an `ApiError`.

import type { FlowSpec } from "./editor/model";

/** A permission (DESIGN §10). */
export type Permission =
  | "flows.read"
  | "flows.operate"
  | "flows.edit"
  | "flows.activate"
  | "flows.admin"
  | "users.manage"
  | "settings.manage"
  | "audit.read"
  | "notifications.manage"
  | "tokens.manage";

/** A signed-in user. */
export interface User {
  id: string;
  email: string;
  name: string;
  roles: string[];
}

/** `GET /auth/me`. */
export interface Me {
  user: User;
  permissions: Permission[];
  csrf_token: string | null;
}

/** A node of a flow, as the inventory shows it. */
export interface NodeSummary {
  name: string;
  kind: string;
  workload: string;
  state: NodeState;
  detail: string | null;
  running: boolean;
  after: string[];
  warnings: string[];
}

/** The state of a node during a wake. */
export type NodeState = "asleep" | "pending" | "starting" | "ready" | "failed" | "stopping" | "kept";

/** The state of a flow. */
export type FlowState = "asleep" | "waking" | "awake" | "draining" | "failed";

/** A flow in the inventory. */
export interface FlowSummary {
  name: string;
  source: "file" | "resource" | "store";
  namespace: string | null;
  version: number | null;
  state: FlowState;
  pinned: boolean;
  disabled: boolean;
  hosts: string[];
  idle_ms: number;
  idle_after_ms: number;
  held: number;
  execution: string | null;
  failure: { node: string; reason: string; message: string } | null;
  nodes: NodeSummary[];
  permissions: Permission[];
}

/** A store-managed flow no version of which serves yet. */
export interface InactiveFlow {
  name: string;
  active_version: number | null;
  latest_version: number;
}

/** `GET /flows`. */
export interface FlowList {
  flows: FlowSummary[];
  inactive: InactiveFlow[];
}

/** `GET /flows/{name}`. */
export interface FlowDetail extends FlowSummary {
  bindings: { host: string; path: string }[];
  upstream: string;
  hold_timeout_ms: number;
  fast_hold_ms: number;
  /** Keep-warm windows: woken `ahead_ms` before each, held awake `for_ms`. */
  keep_warm: { cron: string; for_ms: number; tz: string; ahead_ms: number }[];
  /** Inside a keep-warm window: when it closes. */
  keep_warm_until_ms: number | null;
  /** Outside keep-warm windows: when the next wake starts. */
  next_keep_warm_ms: number | null;
}

/** What sleeping saved over a window (`GET /savings`). */
export interface Savings {
  window_ms: number;
  currency: string;
  node_hourly_cost: number;
  node_cpu: number;
  total: number;
  flows: { flow: string; asleep_ms: number; observed_ms: number; cpu: number; saved: number }[];
}

/** An operation on a flow. */
export type Operation = "warm" | "drain" | "pin" | "unpin" | "disable" | "enable";

/** One step of an execution: a node's timing. */
export interface ExecutionStep {
  node: string;
  workload: string;
  state: string;
  reason: string | null;
  requested_ms: number | null;
  started_ms: number | null;
  ready_ms: number | null;
  failed_ms: number | null;
}

/** A wake execution. */
export interface Execution {
  id: string;
  flow: string;
  trigger: string;
  outcome: "running" | "succeeded" | "failed" | "cancelled";
  error: string | null;
  started_ms: number;
  finished_ms: number | null;
  steps: ExecutionStep[];
}

/** A version of a store-managed flow. */
export interface Version {
  flow: string;
  number: number;
  message: string;
  note: string;
  author: string;
  created_ms: number;
  active: boolean;
}

/** One value that changed between two definitions. */
export interface FieldChange {
  path: string;
  from: unknown;
  to: unknown;
}

/** `GET /flows/{name}/diff`. */
export interface FlowDiff {
  fields: FieldChange[];
  nodes: { added: string[]; removed: string[]; changed: { name: string; fields: FieldChange[] }[] };
  edges: { added: { from: string; to: string }[]; removed: { from: string; to: string }[] };
}

/** What would stop a definition's activation, with its JSON pointer (`/upstream`, `/node/1/after/0`). */
export interface Problem {
  path: string;
  message: string;
  help: string;
}

/** The editor lock as others see it. */
export interface DraftLock {
  holder: string;
  holder_email: string;
  expires_ms: number;
  yours: boolean;
}

/** `GET /flows/{name}/draft`: the draft, its lock, whether it is stale and what would stop its activation. */
export interface Draft {
  flow: string;
  spec: FlowSpec;
  /** Content version: sent as `If-Match` when saving. */
  version: number;
  base: number | null;
  branched_from: number | null;
  active_version: number | null;
  stale: boolean;
  saved_by: string;
  saved_ms: number;
  lock: DraftLock | null;
  problems: Problem[];
}

/** One version with its definition. */
export interface VersionDetail extends Version {
  spec: FlowSpec;
}

/** `GET /status`: this instance. */
export interface Status {
  version: string;
  config_path: string;
  started_ms: number;
  flows: number;
  in_flight: number;
  shutting_down: boolean;
  last_reload: { ok: boolean; at_ms: number; cause: string; errors: string[] };
  replica: { id: string; leader: boolean };
  store: string;
  driver: string;
  cluster: boolean;
  auth_mode: string;
}

/** A workload the flows use, or one the cluster has. */
export interface Workload {
  id: string;
  kind: string;
  used_by: string[];
  running: boolean | null;
  replicas: number | null;
  ready_replicas: number | null;
  warnings: string[];
}

/** A binding that matched a URL or came close. */
export interface BindingMatch {
  flow: string | null;
  host: string;
  path: string;
  reason: string;
}

/** `GET /routing`: who owns a URL. */
export interface Routing {
  host: string;
  path: string;
  matched: BindingMatch | null;
  closest: BindingMatch[];
  outcome: string;
}

/** One audit record. */
export interface AuditItem {
  sequence: number;
  at_ms: number;
  actor: string;
  source: string;
  action: string;
  target: string;
  detail: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

/** `GET /audit/verify`. */
export interface Verification {
  ok: boolean;
  checked: number;
  first_broken: { sequence: number; problem?: string; [key: string]: unknown } | null;
}

/** `GET /settings` (secrets are never shown, only whether they are set). */
export interface Settings {
  auth_mode: string;
  session_ttl_s: number;
  external_url: string;
  public_status: string;
  check_token_set: boolean;
  oidc: { name: string; issuer: string; client_id: string; client_secret_set: boolean; groups_claim: string; role_map: Record<string, string>; redirect_url: string }[];
  saml: { entity_id: string; metadata_url: string; acs_url: string; groups_attribute: string; role_map: Record<string, string> } | null;
  smtp: { host: string; port: number; from: string; password_set: boolean } | null;
}

/** A user as administrators see it. */
export interface UserView {
  id: string;
  email: string;
  name: string;
  roles: string[];
  sso_roles: string[];
  disabled: boolean;
  has_password: boolean;
  identity?: string | null;
  created_ms: number;
  version: number;
}

/** A pending invitation. */
export interface Invitation {
  id: string;
  email: string;
  roles: string[];
  created_by: string;
  created_ms: number;
  expires_ms: number;
}

/** A role and its permissions. */
export interface Role {
  name: string;
  description: string;
  permissions: Permission[];
  built_in: boolean;
}

/** A personal access token (without its secret). */
export interface Token {
  id: string;
  user: string;
  name: string;
  scopes: Permission[];
  created_ms: number;
  expires_ms: number | null;
  last_used_ms: number | null;
}

/** A single-use link; `url` only when it was not mailed (shown once). */
export interface LinkCreated {
  url: string | null;
  mailed: boolean;
}

/** A live event of `GET /events`. */
export type ExecutionEvent =
  | { type: "execution_started"; execution: string; flow: string; trigger: string; nodes: string[] }
  | { type: "node_started"; execution: string; flow: string; node: string }
  | { type: "node_ready"; execution: string; flow: string; node: string; elapsed_ms: number }
  | { type: "node_failed"; execution: string; flow: string; node: string; reason: string; message: string }
  | { type: "execution_finished"; execution: string; flow: string; outcome: string; elapsed_ms: number; error: string | null };

/** An error answer of the API (or the API unreachable: status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = {},
  ) {
    super(message);
  }
}

/** The paths this client calls, as in docs/openapi.json (checked by a test). */
export const PATHS = {
  login: "/api/v1/auth/login",
  logout: "/api/v1/auth/logout",
  me: "/api/v1/auth/me",
  flows: "/api/v1/flows",
  flow: "/api/v1/flows/{name}",
  operation: "/api/v1/flows/{name}/{operation}",
  executions: "/api/v1/flows/{name}/executions",
  explain: "/api/v1/flows/{name}/explain",
  events: "/api/v1/events",
  versions: "/api/v1/flows/{name}/versions",
  activate: "/api/v1/flows/{name}/versions/{number}/activate",
  diff: "/api/v1/flows/{name}/diff",
  accept: "/api/v1/invitations/{token}/accept",
  reset: "/api/v1/auth/reset/{token}",
  setup: "/api/v1/auth/setup",
  create: "/api/v1/flows",
  version: "/api/v1/flows/{name}/versions/{number}",
  draft: "/api/v1/flows/{name}/draft",
  lock: "/api/v1/flows/{name}/draft/lock",
  commit: "/api/v1/flows/{name}/draft/commit",
  branch: "/api/v1/flows/{name}/versions/{number}/branch",
  status: "/api/v1/status",
  workloads: "/api/v1/workloads",
  routing: "/api/v1/routing",
  audit: "/api/v1/audit",
  verify: "/api/v1/audit/verify",
  settings: "/api/v1/settings",
  users: "/api/v1/users",
  user: "/api/v1/users/{id}",
  userReset: "/api/v1/users/{id}/password-reset",
  invitations: "/api/v1/invitations",
  invitation: "/api/v1/invitations/{token}",
  roles: "/api/v1/roles",
  tokens: "/api/v1/tokens",
  token: "/api/v1/tokens/{id}",
  providers: "/api/v1/auth/providers",
  passwordReset: "/api/v1/auth/password-reset",
  access: "/api/v1/flows/{name}/access",
  import: "/api/v1/flows/import",
  export: "/api/v1/flows/export",
  savings: "/api/v1/savings",
  notifications: "/api/v1/notifications",
  notificationTest: "/api/v1/notifications/{name}/test",
  notificationRoute: "/api/v1/notifications/{name}",
} as const;

let csrf: string | null = null;

/** Sends a request; JSON in and out. */
async function call<T>(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json", ...extra };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrf) headers["x-csrf-token"] = csrf;
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, "unreachable", `LeanNodes cannot be reached (${e instanceof Error ? e.message : String(e)}); retrying helps once it is back`);
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const e = (json ?? {}) as { error?: string; message?: string; details?: unknown };
    throw new ApiError(response.status, e.error ?? "http_error", e.message ?? `${response.status} ${response.statusText}`, e.details ?? {});
  }
  // A document that is not JSON (a TOML export) is returned as its text.
  if (!(response.headers.get("content-type") ?? "").includes("json")) return text as T;
  return json as T;
}

const at = (path: string, values: Record<string, string>) =>
  path.replace(/\{(\w+)\}/g, (_, key: string) => encodeURIComponent(values[key] ?? ""));

/** Signs in with a password. */
export async function login(email: string, password: string): Promise<Me> {
  const signed = await call<{ user: User; csrf_token: string }>("POST", PATHS.login, { email, password });
  csrf = signed.csrf_token;
  return me();
}

/** Accepts an invitation: creates the account and signs in. */
export async function acceptInvitation(token: string, name: string, password: string): Promise<Me> {
  await call("POST", at(PATHS.accept, { token }), { name, password });
  return me();
}

/** Sets a new password with a reset link. */
export async function resetPassword(token: string, password: string): Promise<void> {
  await call("POST", at(PATHS.reset, { token }), { password });
}

/** Creates the first administrator with the setup link printed at start, and signs in. */
export async function setup(token: string, email: string, name: string, password: string): Promise<Me> {
  await call("POST", PATHS.setup, { token, email, name, password });
  return me();
}

/** Signs out. */
export async function logout(): Promise<void> {
  await call<void>("POST", PATHS.logout);
  csrf = null;
}

/** Who is signed in (`ApiError` 401 when nobody). */
export async function me(): Promise<Me> {
  const who = await call<Me>("GET", PATHS.me);
  csrf = who.csrf_token ?? csrf;
  return who;
}

/** The flows the caller may read. */
export function listFlows(): Promise<FlowList> {
  return call<FlowList>("GET", PATHS.flows);
}

/** One flow in detail. */
export function getFlow(name: string): Promise<FlowDetail> {
  return call<FlowDetail>("GET", at(PATHS.flow, { name }));
}

/** Runs an operation on a flow. */
export function operate(name: string, operation: Operation): Promise<{ state: FlowState; pinned: boolean; disabled: boolean }> {
  return call("POST", at(PATHS.operation, { name, operation }));
}

/** A flow's executions, newest first. */
export function executions(name: string): Promise<{ items: Execution[]; next: string | null }> {
  return call("GET", at(PATHS.executions, { name }));
}

/** How one notification delivery went. */
export interface Delivery {
  event: string;
  flow: string | null;
  at_ms: number;
  ok: boolean;
  status: number | null;
  error: string | null;
  attempts: number;
  took_ms: number;
}

/** A notification route: where it posts (host only: the URL is a secret), its filters and counters. */
export interface NotificationRoute {
  name: string;
  /** `file` (read-only here) or `api`. */
  source: "file" | "api";
  kind: string;
  format: string;
  host: string;
  headers: string[];
  events: string[];
  flows: string[];
  delivered: number;
  failed: number;
  dropped: number;
  queued: number;
  last: Delivery | null;
}

/** The notification routes and the events they may filter on. */
export function notificationRoutes(): Promise<{ routes: NotificationRoute[]; events: string[] }> {
  return call("GET", PATHS.notifications);
}

/** A route to create through the API; secrets (url, header values, routing key) are write-only. */
export interface RouteInput {
  name?: string;
  kind: "slack" | "teams" | "webhook";
  format?: string;
  url?: string;
  headers?: Record<string, string>;
  routing_key?: string;
  events?: string[];
  flows?: string[];
}

/** Creates a route. */
export function createRoute(route: RouteInput): Promise<NotificationRoute> {
  return call("POST", PATHS.notifications, route);
}

/** Deletes a route made through the API. */
export function deleteRoute(name: string): Promise<void> {
  return call("DELETE", at(PATHS.notificationRoute, { name }));
}

/** Send Test: one `test` notice to the route now. */
export function sendTest(name: string): Promise<Delivery> {
  return call("POST", at(PATHS.notificationTest, { name }));
}

/** What sleeping saved each flow the caller may read over `window` (e.g. "30d"). */
export function savings(window = "30d"): Promise<Savings> {
  return call("GET", `${PATHS.savings}?window=${encodeURIComponent(window)}`);
}

/** Why a flow is in its state. */
export interface Explanation {
  flow: string;
  state: FlowState;
  reasons: { kind: string; message: string }[];
  idle_ms: number;
  idle_after_ms: number;
  drains_in_ms: number | null;
  open: { websocket: number; sse: number; grpc: number; request: number };
  keep_warm_until_ms: number | null;
  next_keep_warm_ms: number | null;
}

/** Why a flow is in its state: pins, open connections, recent activity, a failed wake, shared workloads. */
export function explain(name: string): Promise<Explanation> {
  return call("GET", at(PATHS.explain, { name }));
}

/** The versions of a store-managed flow, oldest first. */
export function versions(name: string): Promise<{ items: Version[]; next: string | null }> {
  return call("GET", at(PATHS.versions, { name }));
}

/** Activates a version (roll forward or back). */
export function activate(name: string, number: number): Promise<{ active_version: number; previous_version: number | null }> {
  return call("POST", at(PATHS.activate, { name, number: String(number) }));
}

/** What changes from one version (or `draft`) to another. */
export function diff(name: string, from: number | "draft", to: number | "draft"): Promise<FlowDiff> {
  return call("GET", `${at(PATHS.diff, { name })}?from=${from}&to=${to}`);
}

/** One version with its definition. */
export function getVersion(name: string, number: number): Promise<VersionDetail> {
  return call("GET", at(PATHS.version, { name, number: String(number) }));
}

/** Creates a store-managed flow whose first draft is `spec`. */
export function createFlow(name: string, spec: FlowSpec): Promise<unknown> {
  return call("POST", PATHS.create, { name, spec });
}

/** The draft of a flow. */
export function getDraft(name: string): Promise<Draft> {
  return call("GET", at(PATHS.draft, { name }));
}

/** Takes or renews the editor lock (starting a draft from the active version when there is none). */
export function lockDraft(name: string): Promise<Draft> {
  return call("POST", at(PATHS.lock, { name }));
}

/** Releases the editor lock. */
export function unlockDraft(name: string): Promise<void> {
  return call("DELETE", at(PATHS.lock, { name }));
}

/** Saves the whole draft over content version `version` (`409 version_conflict` when someone saved
 * since); `base` rebases it onto the active version. */
export function saveDraft(name: string, spec: FlowSpec, version: number, base?: number): Promise<Draft> {
  return call("PUT", at(PATHS.draft, { name }), base === undefined ? { spec } : { spec, base }, { "if-match": String(version) });
}

/** Discards the draft. */
export function discardDraft(name: string): Promise<void> {
  return call("DELETE", at(PATHS.draft, { name }));
}

/** Commits the draft as the next version, optionally activating it. */
export function commitDraft(name: string, message: string, note: string, activate: boolean): Promise<{ number: number; active: boolean }> {
  return call("POST", at(PATHS.commit, { name }), { message, note: note || null, activate });
}

/** Replaces the draft with a copy of a version. */
export function branchVersion(name: string, number: number): Promise<Draft> {
  return call("POST", at(PATHS.branch, { name, number: String(number) }));
}

/** How one can sign in here (for the sign-in page). */
export interface Providers {
  mode: string;
  sso: { kind: "oidc" | "saml"; name: string; label: string; start_url: string }[];
  setup_required: boolean;
}

/** How one can sign in here. */
export const providers = () => call<Providers>("GET", PATHS.providers);

/** Asks for a password-reset link by mail (the answer is the same whether or not the account exists). */
export const requestReset = (email: string) => call<unknown>("POST", PATHS.passwordReset, { email });

/** A role granted on a flow to `user:ID` or `group:NAME`. */
export interface Grant {
  subject: string;
  role: string;
}

/** Who has which role on a flow (besides instance-wide roles); `version` for `If-Match`. */
export const flowAccess = (name: string) => call<{ flow: string; grants: Grant[]; version: number }>("GET", at(PATHS.access, { name }));

/** Replaces a flow's grants. */
export const setFlowAccess = (name: string, grants: Grant[], version: number) =>
  call<{ flow: string; grants: Grant[]; version: number }>("PUT", at(PATHS.access, { name }), grants, { "if-match": String(version) });

/** The format of an import or export. */
export type Format = "toml" | "json";

/** One flow of an import: what happens (or would happen) to it. */
export interface ImportedFlow {
  name: string;
  action: "create" | "new_version" | "unchanged";
  version: number | null;
  activated: boolean;
  change: FlowDiff;
}

/** Imports flows (`dryRun`: only reports the plan). Checked whole first: nothing is written unless every
 * flow can be. */
export const importFlows = (format: Format, content: string, dryRun: boolean, activate: boolean, message: string) =>
  call<{ dry_run: boolean; flows: ImportedFlow[] }>("POST", PATHS.import, { format, content, dry_run: dryRun, activate, message: message || null });

/** The store-managed flows the caller may read, as a TOML or JSON document. */
export const exportFlows = (format: Format) => call<string | object>("GET", `${PATHS.export}?format=${format}`);

/** This instance's status. */
export const status = () => call<Status>("GET", PATHS.status);

/** Workloads the flows use and the ones the cluster has. */
export const workloads = () => call<{ workloads: Workload[]; cluster_error?: string | null }>("GET", PATHS.workloads);

/** Which flow owns a URL and why. */
export const routing = (url: string) => call<Routing>("GET", `${PATHS.routing}?url=${encodeURIComponent(url)}`);

/** A page of the audit log, newest first; `cursor` is the previous page's `next`. */
export function audit(filter: { actor?: string; action?: string; target?: string; cursor?: string }): Promise<{ items: AuditItem[]; next: string | null }> {
  const query = new URLSearchParams(Object.entries(filter).filter((e): e is [string, string] => !!e[1]));
  return call("GET", `${PATHS.audit}?${query}`);
}

/** Verifies the audit log's hash chain. */
export const verifyAudit = () => call<Verification>("GET", PATHS.verify);

/** Authentication, SSO, mail and public-status settings. */
export const settings = () => call<Settings>("GET", PATHS.settings);

/** Every user. */
export const users = () => call<{ users: UserView[] }>("GET", PATHS.users);

/** Changes a user's roles or disabled flag (`version`: the one read). */
export const updateUser = (user: UserView, change: { roles?: string[]; disabled?: boolean }) =>
  call<UserView>("PATCH", at(PATHS.user, { id: user.id }), change, { "if-match": String(user.version) });

/** Creates a password-reset link for a user. */
export const resetLink = (id: string) => call<LinkCreated>("POST", at(PATHS.userReset, { id }));

/** Pending invitations. */
export const invitations = () => call<{ invitations: Invitation[] }>("GET", PATHS.invitations);

/** Invites someone with a role. */
export const invite = (email: string, role: string) => call<Invitation & LinkCreated>("POST", PATHS.invitations, { email, role });

/** Revokes an invitation. */
export const revokeInvitation = (id: string) => call<void>("DELETE", at(PATHS.invitation, { token: id }));

/** Every role. */
export const roles = () => call<{ roles: Role[] }>("GET", PATHS.roles);

/** The caller's tokens. */
export const tokens = () => call<{ tokens: Token[] }>("GET", PATHS.tokens);

/** Creates a token for the caller; its secret is in this answer only. */
export const createToken = (name: string, expiresIn: string) => call<Token & { token: string }>("POST", PATHS.tokens, { name, expires_in: expiresIn || null });

/** Revokes a token. */
export const revokeToken = (id: string) => call<void>("DELETE", at(PATHS.token, { id }));

/** Subscribes to live execution events (`onLive` says whether the stream is connected); returns the
 * function that stops it. The browser reconnects by itself after an interruption. */
export function subscribe(onEvent: (e: ExecutionEvent) => void, onLive: (connected: boolean) => void = () => {}): () => void {
  const source = new EventSource(PATHS.events, { withCredentials: true });
  source.addEventListener("open", () => onLive(true));
  source.addEventListener("error", () => onLive(source.readyState === EventSource.OPEN));
  const kinds: ExecutionEvent["type"][] = ["execution_started", "node_started", "node_ready", "node_failed", "execution_finished"];
  for (const kind of kinds) {
    source.addEventListener(kind, (message) => {
      try {
        onEvent(JSON.parse((message as MessageEvent<string>).data) as ExecutionEvent);
      } catch {
        // A malformed event is skipped; the next state change refreshes the view anyway.
      }
    });
  }
  return () => source.close();
}
