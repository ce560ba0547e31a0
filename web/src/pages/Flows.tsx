import { useEffect, useMemo, useState } from "react";
import { Link } from "react-router";

import { ApiError, listFlows, type FlowList, type Me } from "../api";
import { StateBadge } from "../components/StateBadge";

/** The flow inventory: search, state, source, hosts and nodes; links to each flow. */
export function FlowsPage({ onError }: { me: Me; onError: (e: unknown) => boolean }) {
  const [list, setList] = useState<FlowList | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [query, setQuery] = useState("");

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
  }, [onError]);

  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    const flows = list?.flows ?? [];
    return q ? flows.filter((f) => f.name.toLowerCase().includes(q) || f.hosts.some((h) => h.includes(q))) : flows;
  }, [list, query]);

  return (
    <section aria-labelledby="flows-title">
      <h1 id="flows-title">Flows</h1>
      <label className="search">
        Search flows
        <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="name or host" />
      </label>
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
                <td colSpan={5}>No flow matches.</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {list && list.inactive.length > 0 && (
        <section aria-labelledby="inactive-title">
          <h2 id="inactive-title">Not active yet</h2>
          <ul>
            {list.inactive.map((f) => (
              <li key={f.name}>
                {f.name} — {f.latest_version} version(s), none active
              </li>
            ))}
          </ul>
        </section>
      )}
    </section>
  );
}
