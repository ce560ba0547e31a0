import { useEffect, useMemo, useState } from "react";
import { Link } from "react-router";

import { ApiError, exportFlows, listFlows, operate, type FlowList, type FlowState, type Format, type Me, type Operation } from "../api";
import { ImportPanel } from "../components/ImportPanel";
import { StateBadge } from "../components/StateBadge";

const BULK: Operation[] = ["warm", "drain", "pin", "unpin"];

/** Saves a document as a file in the browser's downloads. */
function download(name: string, content: string, type: string) {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  URL.revokeObjectURL(url);
}

/** The flow inventory: search and filter, state, source, hosts and nodes, links to each flow; operations
 * on several flows at once; export and import of store-managed flows. */
export function FlowsPage({ me, onError }: { me: Me; onError: (e: unknown) => boolean }) {
  const [list, setList] = useState<FlowList | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [query, setQuery] = useState("");
  const [state, setState] = useState<FlowState | "">("");
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [result, setResult] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let live = true;
    const load = () =>
      listFlows().then(
        (l) => {
          if (!live) return;
          setList(l);
          setError(null);
        },
        (e) => {
          if (live && !onError(e)) setError(e instanceof ApiError ? e.message : String(e));
        },
      );
    load();
    const timer = window.setInterval(load, 3000);
    return () => {
      live = false;
      window.clearInterval(timer);
    };
  }, [onError, tick]);

  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    return (list?.flows ?? []).filter((f) => (!q || f.name.toLowerCase().includes(q) || f.hosts.some((h) => h.includes(q))) && (!state || f.state === state));
  }, [list, query, state]);
  const operable = shown.filter((f) => f.permissions.includes("flows.operate"));
  const chosen = operable.filter((f) => picked.has(f.name));

  async function bulk(operation: Operation) {
    const outcomes = await Promise.allSettled(chosen.map((f) => operate(f.name, operation)));
    const refused = outcomes.flatMap((o, i) => (o.status === "rejected" ? [`${chosen[i].name}: ${o.reason instanceof Error ? o.reason.message : String(o.reason)}`] : []));
    setResult(`${operation}: ${outcomes.length - refused.length} of ${outcomes.length} done${refused.length ? `; refused: ${refused.join("; ")}` : ""}`);
    setPicked(new Set());
    setTick((t) => t + 1);
  }
  async function exportAll(format: Format) {
    try {
      const document = await exportFlows(format);
      download(`leannodes-flows.${format}`, typeof document === "string" ? document : JSON.stringify(document, null, 2), format === "json" ? "application/json" : "application/toml");
    } catch (e) {
      if (!onError(e)) setError(e instanceof ApiError ? e.message : String(e));
    }
  }

  return (
    <section aria-labelledby="flows-title">
      <h1 id="flows-title">Flows</h1>
      {me.permissions.includes("flows.edit") && (
        <p>
          <Link to="/flows/new">New flow</Link>
        </p>
      )}
      <div className="inline-form">
        <label className="search">
          Search flows
          <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="name or host" />
        </label>
        <label>
          State
          <select value={state} onChange={(e) => setState(e.target.value as FlowState | "")}>
            <option value="">any</option>
            {(["asleep", "waking", "awake", "draining", "failed"] as const).map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <span className="spacer" />
        <button type="button" onClick={() => exportAll("toml")}>
          Export TOML
        </button>
        <button type="button" onClick={() => exportAll("json")}>
          Export JSON
        </button>
      </div>
      {operable.length > 0 && (
        <div className="actions" role="group" aria-label="Selected flows">
          <span className="muted">{chosen.length} selected</span>
          {BULK.map((op) => (
            <button key={op} type="button" disabled={chosen.length === 0} onClick={() => bulk(op)}>
              {op[0].toUpperCase() + op.slice(1)} selected
            </button>
          ))}
        </div>
      )}
      {result && <p role="status">{result}</p>}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {list === null && !error && <p>Loading flows…</p>}
      {list && (
        <table>
          <caption className="visually-hidden">Flows you may read</caption>
          <thead>
            <tr>
              <th scope="col">
                <span className="visually-hidden">Select</span>
              </th>
              <th scope="col">Flow</th>
              <th scope="col">State</th>
              <th scope="col">Source</th>
              <th scope="col">Hosts</th>
              <th scope="col">Nodes</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((flow) => (
              <tr key={flow.name}>
                <td>
                  {flow.permissions.includes("flows.operate") && (
                    <input
                      type="checkbox"
                      aria-label={`Select ${flow.name}`}
                      checked={picked.has(flow.name)}
                      onChange={(e) => {
                        const next = new Set(picked);
                        if (e.target.checked) next.add(flow.name);
                        else next.delete(flow.name);
                        setPicked(next);
                      }}
                    />
                  )}
                </td>
                <th scope="row">
                  <Link to={`/flows/${encodeURIComponent(flow.name)}`}>{flow.name}</Link>
                </th>
                <td>
                  <StateBadge state={flow.state} />
                  {flow.pinned && <span className="tag">pinned</span>}
                  {flow.disabled && <span className="tag">disabled</span>}
                </td>
                <td>{flow.source === "store" ? `store v${flow.version ?? "?"}` : flow.source}</td>
                <td>{flow.hosts.join(", ")}</td>
                <td>{flow.nodes.length}</td>
              </tr>
            ))}
            {shown.length === 0 && (
              <tr>
                <td colSpan={6}>No flow matches.</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {me.permissions.includes("flows.edit") && <ImportPanel canActivate={me.permissions.includes("flows.activate")} onImported={() => setTick((t) => t + 1)} onError={onError} />}
      {list && list.inactive.length > 0 && (
        <section aria-labelledby="inactive-title">
          <h2 id="inactive-title">Not active yet</h2>
          <ul>
            {list.inactive.map((f) => (
              <li key={f.name}>
                {me.permissions.includes("flows.edit") ? <Link to={`/flows/${encodeURIComponent(f.name)}/edit`}>{f.name}</Link> : f.name} —{" "}
                {f.latest_version} version(s), none active
              </li>
            ))}
          </ul>
        </section>
      )}
    </section>
  );
}
