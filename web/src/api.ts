// The typed client of the management API (docs/openapi.json; a test checks that every path used here is
// in that document). Browsers sign in with a session cookie; unsafe requests carry the CSRF token the
// sign-in returned. Every error has the API's one shape, turned into an `ApiError`.

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
  events: "/api/v1/events",
  versions: "/api/v1/flows/{name}/versions",
  activate: "/api/v1/flows/{name}/versions/{number}/activate",
  diff: "/api/v1/flows/{name}/diff",
  accept: "/api/v1/invitations/{token}/accept",
  reset: "/api/v1/auth/reset/{token}",
  setup: "/api/v1/auth/setup",
} as const;

let csrf: string | null = null;

/** Sends a request; JSON in and out. */
async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
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
