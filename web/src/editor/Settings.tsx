import type { Problem } from "../api";
import { optionalNumber, optionalText, SelectField, TextField } from "./fields";
import {
  formatKeepWarm,
  joinCommand,
  KINDS,
  nameProblem,
  nodesOf,
  parseEnv,
  parseKeepWarm,
  parseList,
  probeKind,
  splitCommand,
  withKey,
  type FlowSpec,
  type NodeKind,
  type NodeSpec,
  type Probe,
} from "./model";

/** The first problem the server reported at `path` or under it. */
function problemAt(problems: Problem[], path: string): string | undefined {
  const p = problems.find((p) => p.path === path || p.path.startsWith(`${path}/`));
  return p && `${p.message}${p.help ? ` (${p.help})` : ""}`;
}

const list = {
  format: (v: string[] | undefined) => (v ?? []).join(", "),
  parse: (t: string) => ({ value: parseList(t) }),
};

/** The flow's own settings: bindings, upstream, timings. */
export function FlowSettings({ spec, problems, onChange }: { spec: FlowSpec; problems: Problem[]; onChange: (spec: FlowSpec) => void }) {
  const set = (key: string) => (value: unknown) => onChange(withKey(spec, key, value));
  return (
    <fieldset className="settings">
      <legend>Flow settings</legend>
      <TextField label="Hosts" hint="Comma-separated; a leading *. is a wildcard" value={spec.hosts} {...list} onChange={(v) => onChange({ ...spec, hosts: v })} problem={problemAt(problems, "/hosts")} />
      <TextField label="Paths" hint="Path prefixes; default /" value={spec.paths} {...list} onChange={set("paths")} problem={problemAt(problems, "/paths")} />
      <TextField
        label="Upstream"
        hint="A node of this flow, or host:port"
        value={spec.upstream}
        format={(v) => v}
        parse={(t) => ({ value: t.trim() })}
        list="upstream-nodes"
        onChange={(v) => onChange({ ...spec, upstream: v })}
        problem={problemAt(problems, "/upstream")}
      />
      <datalist id="upstream-nodes">
        {nodesOf(spec).map((n) => (
          <option key={n.name} value={n.name} />
        ))}
      </datalist>
      <TextField label="Idle after" hint="e.g. 15m (default)" value={spec.idle_after} {...optionalText} onChange={set("idle_after")} problem={problemAt(problems, "/idle_after")} />
      <TextField label="Hold timeout" hint="e.g. 2m (default)" value={spec.hold_timeout} {...optionalText} onChange={set("hold_timeout")} problem={problemAt(problems, "/hold_timeout")} />
      <TextField label="Browsers wait" hint="Then they get the warm-up page; default 20s" value={spec.fast_hold} {...optionalText} onChange={set("fast_hold")} problem={problemAt(problems, "/fast_hold")} />
      <TextField
        label="Kept warm"
        hint="One window a line: CRON for DURATION [in ZONE] [ahead DURATION], e.g. 0 8 * * 1-5 for 10h in Europe/Berlin"
        multiline
        value={spec.keep_warm}
        format={formatKeepWarm}
        parse={parseKeepWarm}
        onChange={set("keep_warm")}
        problem={problemAt(problems, "/keep_warm")}
      />
      <SelectField
        label="On a failed wake"
        value={spec.on_failure ?? "rollback"}
        options={[
          { value: "rollback", label: "Stop what it started (rollback)" },
          { value: "keep", label: "Keep it for debugging (keep)" },
        ]}
        onChange={(v) => onChange(withKey(spec, "on_failure", v === "rollback" ? undefined : v))}
      />
    </fieldset>
  );
}

const probeOptions = [
  { value: "none" as const, label: "Default" },
  { value: "tcp" as const, label: "TCP connect" },
  { value: "http" as const, label: "HTTP GET" },
  { value: "exec" as const, label: "Command" },
];

/** One node's settings: name, kind, what runs it, readiness, what it waits for. */
export function NodeSettings({
  spec,
  index,
  problems,
  onRename,
  onChange,
  onToggleEdge,
  onRemove,
  onUpstream,
}: {
  spec: FlowSpec;
  index: number;
  problems: Problem[];
  onRename: (to: string) => void;
  onChange: (node: NodeSpec) => void;
  onToggleEdge: (from: string, on: boolean) => void;
  onRemove: () => void;
  onUpstream: () => void;
}) {
  const node = nodesOf(spec)[index];
  const at = `/node/${index}`;
  const set = (key: string) => (value: unknown) => onChange(withKey(node, key, value));
  const kind = probeKind(node.ready);
  const probeValue = node.ready ? ("tcp" in node.ready ? node.ready.tcp : "http" in node.ready ? node.ready.http : joinCommand(node.ready.exec)) : "";
  const setProbe = (k: typeof kind, text: string) => {
    const probe: Probe | undefined = k === "none" ? undefined : k === "tcp" ? { tcp: text } : k === "http" ? { http: text } : { exec: splitCommand(text) };
    onChange(withKey(node, "ready", probe));
  };
  const others = nodesOf(spec).filter((n) => n.name !== node.name);
  const whole = problems.find((p) => p.path === at);
  return (
    <fieldset className="settings">
      <legend>Node {node.name}</legend>
      {whole && <p className="error">{whole.message}</p>}
      <TextField
        label="Name"
        value={node.name}
        format={(v) => v}
        parse={(t) => {
          const problem = nameProblem(spec, node.name, t.trim());
          return problem ? { problem } : { value: t.trim() };
        }}
        onChange={onRename}
        problem={problemAt(problems, `${at}/name`)}
      />
      <SelectField label="Kind" value={node.kind} options={KINDS.map((k) => ({ value: k, label: k }))} onChange={(k: NodeKind) => onChange({ ...node, kind: k })} />
      {node.kind === "process" ? (
        <>
          <TextField
            label="Command"
            hint="The program and its arguments; quote an argument with spaces"
            value={node.command ?? []}
            format={joinCommand}
            parse={(t) => ({ value: splitCommand(t) })}
            onChange={set("command")}
            problem={problemAt(problems, `${at}/command`)}
          />
          <TextField label="Working folder" value={node.cwd} {...optionalText} onChange={set("cwd")} problem={problemAt(problems, `${at}/cwd`)} />
          <TextField
            label="Environment"
            hint="KEY=VALUE, one per line"
            multiline
            value={node.env ?? {}}
            format={(env) =>
              Object.entries(env)
                .map(([k, v]) => `${k}=${v}`)
                .join("\n")
            }
            parse={(t) => {
              const r = parseEnv(t);
              return "problem" in r ? r : { value: r.env };
            }}
            onChange={set("env")}
            problem={problemAt(problems, `${at}/env`)}
          />
        </>
      ) : node.kind !== "external" ? (
        <>
          <TextField label="Workload" hint="namespace/name" value={node.ref} {...optionalText} onChange={set("ref")} problem={problemAt(problems, `${at}/ref`)} />
          {node.kind !== "job" && <TextField label="Replicas" value={node.replicas} {...optionalNumber} onChange={set("replicas")} problem={problemAt(problems, `${at}/replicas`)} />}
        </>
      ) : null}
      <TextField label="Port" value={node.port} {...optionalNumber} onChange={set("port")} problem={problemAt(problems, `${at}/port`)} />
      <SelectField label="Readiness probe" value={kind} options={probeOptions} onChange={(k) => setProbe(k, k === kind ? probeValue : "")} />
      {kind !== "none" && (
        <TextField
          key={kind}
          label={kind === "tcp" ? "Probe address" : kind === "http" ? "Probe URL" : "Probe command"}
          value={probeValue}
          format={(v) => v}
          parse={(t) => ({ value: t })}
          onChange={(t) => setProbe(kind, t)}
          problem={problemAt(problems, `${at}/ready`)}
        />
      )}
      <TextField label="Wake budget" hint="e.g. 2m; default: the flow's" value={node.timeout} {...optionalText} onChange={set("timeout")} problem={problemAt(problems, `${at}/timeout`)} />
      {others.length > 0 && (
        <fieldset className="waits">
          <legend>Waits for</legend>
          {others.map((o) => (
            <label key={o.name}>
              <input type="checkbox" checked={node.after?.includes(o.name) ?? false} onChange={(e) => onToggleEdge(o.name, e.target.checked)} /> {o.name}
            </label>
          ))}
          {problemAt(problems, `${at}/after`) && <small className="error">{problemAt(problems, `${at}/after`)}</small>}
        </fieldset>
      )}
      <div className="actions">
        <button type="button" onClick={onUpstream} disabled={spec.upstream === node.name}>
          {spec.upstream === node.name ? "This is the upstream" : "Send requests here (upstream)"}
        </button>
        <button type="button" className="danger" onClick={onRemove}>
          Remove node {node.name}
        </button>
      </div>
    </fieldset>
  );
}
