// The visual editor's model: a flow definition (a `[[flow]]` table as JSON, the shape the API stores)
// and the edits the editor makes to it. Pure functions: each returns a new definition, so a failed save
// never loses what was typed and the editor can always re-send the whole definition.

/** A node kind (DESIGN §3). */
export type NodeKind = "process" | "deployment" | "statefulset" | "job" | "external";

/** Every kind, in the order the palette offers them. */
export const KINDS: NodeKind[] = ["process", "deployment", "statefulset", "job", "external"];

/** A readiness probe: exactly one of `tcp`, `http`, `exec`. */
export type Probe = { tcp: string } | { http: string } | { exec: string[] };

/** A `[[flow.node]]` table. Keys the editor does not know are kept as they are. */
export interface NodeSpec {
  name: string;
  kind: NodeKind;
  after?: string[];
  command?: string[];
  cwd?: string;
  env?: Record<string, string>;
  port?: number;
  ready?: Probe;
  ref?: string;
  replicas?: number;
  timeout?: string;
  [key: string]: unknown;
}

/** A `[[flow]]` table. Keys the editor does not know are kept as they are. */
export interface FlowSpec {
  hosts: string[];
  paths?: string[];
  upstream: string;
  idle_after?: string;
  hold_timeout?: string;
  fast_hold?: string;
  node_timeout?: string;
  on_failure?: "rollback" | "keep";
  keep_warm?: KeepWarm[];
  node?: NodeSpec[];
  [key: string]: unknown;
}

/** A keep-warm window: woken `ahead` of each time `cron` fires and held awake `for` that long. */
export interface KeepWarm {
  cron: string;
  for: string;
  tz?: string;
  ahead?: string;
}

/** Keep-warm windows as the editor writes them, one a line: `CRON for DURATION [in ZONE] [ahead DURATION]`. */
export function formatKeepWarm(windows: KeepWarm[] | undefined): string {
  return (windows ?? [])
    .map((w) => [w.cron, "for", w.for, ...(w.tz ? ["in", w.tz] : []), ...(w.ahead ? ["ahead", w.ahead] : [])].join(" "))
    .join("\n");
}

/** Reads the lines {@link formatKeepWarm} writes; the server checks the cron expression and the zone. */
export function parseKeepWarm(text: string): { value: KeepWarm[] } | { problem: string } {
  const windows: KeepWarm[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const at = line.indexOf(" for ");
    if (at < 0) return { problem: `line ${i + 1}: write CRON for DURATION, e.g. "0 8 * * 1-5 for 10h in Europe/Berlin"` };
    const window: KeepWarm = { cron: line.slice(0, at).trim(), for: "" };
    const words = line.slice(at + 5).trim().split(/\s+/);
    window.for = words.shift() ?? "";
    while (words.length) {
      const key = words.shift();
      const value = words.shift();
      if ((key !== "in" && key !== "ahead") || !value) return { problem: `line ${i + 1}: after the length, only "in ZONE" and "ahead DURATION"` };
      if (key === "in") window.tz = value;
      else window.ahead = value;
    }
    if (!window.cron || !window.for) return { problem: `line ${i + 1}: a cron expression and a length are both needed` };
    windows.push(window);
  }
  return { value: windows };
}

/** The nodes of a definition (none when it has no `node` key). */
export const nodesOf = (spec: FlowSpec): NodeSpec[] => spec.node ?? [];

/** Sets or removes (`undefined`, empty string or empty list) one key of an object, returning a copy. */
export function withKey<T extends object>(value: T, key: string, set: unknown): T {
  const copy = { ...value } as Record<string, unknown>;
  const empty = set === undefined || set === "" || (Array.isArray(set) && set.length === 0) || (typeof set === "object" && set !== null && !Array.isArray(set) && Object.keys(set).length === 0);
  if (empty) delete copy[key];
  else copy[key] = set;
  return copy as T;
}

/** A name for a new node of `kind` that no node of the flow has (`process-1`, `process-2`, …). */
export function freshName(spec: FlowSpec, kind: NodeKind): string {
  const taken = new Set(nodesOf(spec).map((n) => n.name));
  for (let i = 1; ; i++) {
    if (!taken.has(`${kind}-${i}`)) return `${kind}-${i}`;
  }
}

/** Adds a node of `kind`; returns the definition and the new node's name. The first node added to a
 * flow without an upstream becomes its upstream. */
export function addNode(spec: FlowSpec, kind: NodeKind): { spec: FlowSpec; name: string } {
  const name = freshName(spec, kind);
  const node: NodeSpec = { name, kind };
  const next = { ...spec, node: [...nodesOf(spec), node] };
  if (!spec.upstream) next.upstream = name;
  return { spec: next, name };
}

/** Replaces the node `name` with what `change` makes of it. */
export function updateNode(spec: FlowSpec, name: string, change: (node: NodeSpec) => NodeSpec): FlowSpec {
  return { ...spec, node: nodesOf(spec).map((n) => (n.name === name ? change(n) : n)) };
}

/** Removes a node and every edge to it; an upstream naming it is cleared. */
export function removeNode(spec: FlowSpec, name: string): FlowSpec {
  const node = nodesOf(spec)
    .filter((n) => n.name !== name)
    .map((n) => (n.after?.includes(name) ? withKey(n, "after", n.after.filter((a) => a !== name)) : n));
  return { ...spec, node, upstream: spec.upstream === name ? "" : spec.upstream };
}

/** Why a node name cannot be used, or `null` when it can. */
export function nameProblem(spec: FlowSpec, current: string, name: string): string | null {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) return "use letters, digits, - and _ (starting with a letter or digit)";
  if (name !== current && nodesOf(spec).some((n) => n.name === name)) return `another node is named ${name}`;
  return null;
}

/** Renames a node, following the edges to it and the upstream. */
export function renameNode(spec: FlowSpec, from: string, to: string): FlowSpec {
  const node = nodesOf(spec).map((n) => {
    const renamed = n.name === from ? { ...n, name: to } : n;
    return renamed.after?.includes(from) ? { ...renamed, after: renamed.after.map((a) => (a === from ? to : a)) } : renamed;
  });
  return { ...spec, node, upstream: spec.upstream === from ? to : spec.upstream };
}

/** Whether `to` already depends on `from`, directly or through other nodes. */
function dependsOn(spec: FlowSpec, to: string, from: string): boolean {
  const byName = new Map(nodesOf(spec).map((n) => [n.name, n]));
  const seen = new Set<string>();
  const stack = [to];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (name === from) return true;
    if (seen.has(name)) continue;
    seen.add(name);
    stack.push(...(byName.get(name)?.after ?? []));
  }
  return false;
}

/** Makes `to` wait for `from` (an edge from → to). Refused with a reason when it would make a cycle. */
export function connect(spec: FlowSpec, from: string, to: string): { spec: FlowSpec } | { problem: string } {
  if (from === to) return { problem: `${from} cannot wait for itself` };
  const target = nodesOf(spec).find((n) => n.name === to);
  if (!target || !nodesOf(spec).some((n) => n.name === from)) return { problem: `no node named ${target ? from : to}` };
  if (target.after?.includes(from)) return { spec };
  if (dependsOn(spec, from, to)) return { problem: `${to} cannot wait for ${from}: ${from} already waits for ${to}, which would make a cycle` };
  return { spec: updateNode(spec, to, (n) => ({ ...n, after: [...(n.after ?? []), from] })) };
}

/** Removes the edge from → to. */
export function disconnect(spec: FlowSpec, from: string, to: string): FlowSpec {
  return updateNode(spec, to, (n) => withKey(n, "after", (n.after ?? []).filter((a) => a !== from)));
}

/** Splits a command line into arguments: spaces separate, single and double quotes group, a backslash
 * escapes the next character (outside single quotes). */
export function splitCommand(line: string): string[] {
  const args: string[] = [];
  let current = "";
  let started = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < line.length) current += line[++i];
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      started = true;
    } else if (c === "\\" && i + 1 < line.length) {
      current += line[++i];
      started = true;
    } else if (/\s/.test(c)) {
      if (started) args.push(current);
      current = "";
      started = false;
    } else {
      current += c;
      started = true;
    }
  }
  if (started) args.push(current);
  return args;
}

/** Joins arguments into a command line that `splitCommand` reads back as the same arguments. */
export function joinCommand(args: string[]): string {
  return args.map((a) => (a !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'"'"'`)}'`)).join(" ");
}

/** A comma- or newline-separated list, trimmed, without empty items. */
export const parseList = (text: string): string[] =>
  text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s !== "");

/** `KEY=VALUE` lines into a table; lines without `=` are reported. */
export function parseEnv(text: string): { env: Record<string, string> } | { problem: string } {
  const env: Record<string, string> = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) return { problem: `line ${i + 1}: write KEY=VALUE` };
    env[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return { env };
}

/** The kind of a probe, or `none`. */
export function probeKind(probe: Probe | undefined): "none" | "tcp" | "http" | "exec" {
  if (!probe) return "none";
  if ("tcp" in probe) return "tcp";
  if ("http" in probe) return "http";
  return "exec";
}
