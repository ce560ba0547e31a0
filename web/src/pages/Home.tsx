import { useCallback } from "react";
import { Link } from "react-router";

import { executions, listFlows, savings, status, type Execution, type FlowState, type Me, type Savings } from "../api";
import { StateBadge } from "../components/StateBadge";
import { duration, useLoad, when } from "../useLoad";

/** How many flows' executions the overview reads for its list of recent cold starts. */
const RECENT_FLOWS = 20;

const STATES: FlowState[] = ["asleep", "waking", "awake", "draining", "failed"];

/** The overview: how much sleeps now (what scale-to-zero saves), flow states, recent cold starts and
 * this instance's health. */
export function HomePage({ onError }: { me: Me; onError: (e: unknown) => boolean }) {
  const overview = useCallback(async () => {
    const [list, instance, saved] = await Promise.all([listFlows(), status(), savings("30d")]);
    const recent = (
      await Promise.all(
        list.flows.slice(0, RECENT_FLOWS).map((f) =>
          executions(f.name).then(
            (r) => r.items.slice(0, 5),
            () => [] as Execution[],
          ),
        ),
      )
    )
      .flat()
      .sort((a, b) => b.started_ms - a.started_ms)
      .slice(0, 8);
    return { list, instance, recent, saved };
  }, []);
  const { data, error } = useLoad(overview, onError, 10000);

  if (!data) return error ? <p role="alert" className="error">{error}</p> : <p>Loading the overview…</p>;
  const { list, instance, recent, saved } = data;
  const flows = list.flows;
  const count = (s: FlowState) => flows.filter((f) => f.state === s).length;
  const nodes = flows.flatMap((f) => f.nodes);
  const sleeping = nodes.filter((n) => !n.running).length;

  return (
    <section aria-labelledby="home-title">
      <h1 id="home-title">Overview</h1>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <div className="tiles">
        <article className="tile" aria-labelledby="saving-title">
          <h2 id="saving-title">Asleep now</h2>
          <p className="big">
            {sleeping} of {nodes.length} workloads
          </p>
          <p className="muted">
            {count("asleep")} of {flows.length} flows use nothing until their next request.
          </p>
        </article>
        <SavedTile saved={saved} />
        <article className="tile" aria-labelledby="states-title">
          <h2 id="states-title">Flow states</h2>
          <ul className="states" aria-label="Flows by state">
            {STATES.map((s) => (
              <li key={s}>
                <StateBadge state={s} /> {count(s)}
              </li>
            ))}
            <li>
              <span className="tag">pinned</span> {flows.filter((f) => f.pinned).length}
            </li>
            <li>
              <span className="tag">disabled</span> {flows.filter((f) => f.disabled).length}
            </li>
            <li>
              <span className="tag">not active yet</span> {list.inactive.length}
            </li>
          </ul>
        </article>
        <article className="tile" aria-labelledby="instance-title">
          <h2 id="instance-title">This instance</h2>
          <p>
            LeanNodes {instance.version} · {instance.driver} driver · {instance.store} store
          </p>
          <p className={instance.last_reload.ok ? "muted" : "error"}>
            Last reload {instance.last_reload.ok ? "applied" : "failed"} {when(instance.last_reload.at_ms)}
          </p>
          <p className="muted">
            Replica {instance.replica.id}
            {instance.replica.leader ? " (leader)" : ""}
          </p>
        </article>
      </div>
      <h2 id="recent-title">Recent cold starts</h2>
      {recent.length === 0 ? (
        <p>No wake yet.</p>
      ) : (
        <table aria-labelledby="recent-title">
          <thead>
            <tr>
              <th scope="col">Flow</th>
              <th scope="col">When</th>
              <th scope="col">Trigger</th>
              <th scope="col">Outcome</th>
              <th scope="col">Took</th>
            </tr>
          </thead>
          <tbody>
            {recent.map((r) => (
              <tr key={r.id}>
                <th scope="row">
                  <Link to={`/flows/${encodeURIComponent(r.flow)}`}>{r.flow}</Link>
                </th>
                <td>{when(r.started_ms)}</td>
                <td>{r.trigger}</td>
                <td>
                  <span className={`badge state-${r.outcome}`}>{r.outcome}</span>
                  {r.error && <small className="error"> {r.error}</small>}
                </td>
                <td>{r.finished_ms ? duration(r.finished_ms - r.started_ms) : "running"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** What sleeping saved over the last 30 days, and the flow that saved most. */
function SavedTile({ saved }: { saved: Savings }) {
  const asleepHours = saved.flows.reduce((sum, f) => sum + f.asleep_ms, 0) / 3_600_000;
  const top = saved.flows[0];
  const money = (n: number) => {
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency: saved.currency }).format(n);
    } catch {
      // Not an ISO 4217 code (any text is allowed in the configuration).
      return `${n.toFixed(2)} ${saved.currency}`;
    }
  };
  return (
    <article className="tile" aria-labelledby="saved-title">
      <h2 id="saved-title">Saved in 30 days</h2>
      <p className="big">{saved.node_hourly_cost > 0 ? money(saved.total) : `${asleepHours.toFixed(0)} h asleep`}</p>
      <p className="muted">
        {asleepHours.toFixed(0)} flow-hours asleep
        {top && top.saved > 0 ? `; most by ${top.flow} (${money(top.saved)})` : ""}.
        {saved.node_hourly_cost > 0 ? "" : " Set [server.savings] node_hourly_cost to see money."}
      </p>
    </article>
  );
}
