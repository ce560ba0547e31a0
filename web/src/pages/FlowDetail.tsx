import { useEffect, useState } from "react";
import { Link, useParams } from "react-router";

import { ApiError, executions, explain, getFlow, operate, subscribe, type Execution, type Explanation, type FlowDetail, type Me, type Operation } from "../api";
import { Dag, type DagNodeView } from "../components/Dag";
import { FlowAccess } from "../components/FlowAccess";
import { FlowAudit } from "../components/FlowAudit";
import { StateBadge } from "../components/StateBadge";
import { Timeline } from "../components/Timeline";
import { Versions } from "../components/Versions";
import { when } from "../useLoad";

/** Live node states from the event stream, over the states the flow last reported. */
type Live = Record<string, { state: string; note?: string }>;

/** One flow: bindings and settings, operations, the live DAG and its recent executions. */
export function FlowDetailPage({ me, onError }: { me: Me; onError: (e: unknown) => boolean }) {
  const { name = "" } = useParams();
  const [flow, setFlow] = useState<FlowDetail | null>(null);
  const [runs, setRuns] = useState<Execution[]>([]);
  const [why, setWhy] = useState<Explanation | null>(null);
  const [live, setLive] = useState<Live>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<Operation | null>(null);
  const [connected, setConnected] = useState(false);

  useEffect(() => {
    let alive = true;
    const report = (e: unknown) => {
      if (alive && !onError(e)) setError(e instanceof ApiError ? e.message : String(e));
    };
    const load = () => {
      getFlow(name).then((f) => {
        if (!alive) return;
        setFlow(f);
        setError(null);
      }, report);
      executions(name).then((r) => alive && setRuns(r.items.slice(0, 5)), report);
      explain(name).then((e) => alive && setWhy(e), report);
    };
    load();
    const stop = subscribe((event) => {
      if (event.flow !== name) return;
      switch (event.type) {
        case "execution_started":
          setLive(Object.fromEntries(event.nodes.map((n) => [n, { state: "pending" }])));
          break;
        case "node_started":
          setLive((l) => ({ ...l, [event.node]: { state: "starting" } }));
          break;
        case "node_ready":
          setLive((l) => ({ ...l, [event.node]: { state: "ready", note: `ready in ${event.elapsed_ms} ms` } }));
          break;
        case "node_failed":
          setLive((l) => ({ ...l, [event.node]: { state: "failed", note: `${event.reason}: ${event.message}` } }));
          break;
        case "execution_finished":
          load();
          break;
      }
    }, setConnected);
    const timer = window.setInterval(load, 5000);
    return () => {
      alive = false;
      stop();
      window.clearInterval(timer);
    };
  }, [name, onError]);

  async function run(operation: Operation) {
    setBusy(operation);
    try {
      await operate(name, operation);
      if (operation === "drain") setLive({});
      setFlow(await getFlow(name));
    } catch (e) {
      if (!onError(e)) setError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(null);
    }
  }

  if (error && !flow) {
    return (
      <section>
        <p role="alert" className="error">
          {error}
        </p>
        <Link to="/flows">Back to the flows</Link>
      </section>
    );
  }
  if (!flow) return <p>Loading {name}…</p>;
  const canOperate = flow.permissions.includes("flows.operate");
  const nodes: DagNodeView[] = flow.nodes.map((n) => ({
    name: n.name,
    kind: n.kind,
    after: n.after,
    state: live[n.name]?.state ?? n.state,
    note: live[n.name]?.note ?? (n.state === "failed" ? (n.detail ?? undefined) : undefined),
  }));
  const operations: Operation[] = ["warm", "drain", flow.pinned ? "unpin" : "pin", flow.disabled ? "enable" : "disable"];

  return (
    <section aria-labelledby="flow-title">
      <p>
        <Link to="/flows">Flows</Link> / {flow.name}
      </p>
      <h1 id="flow-title">
        {flow.name} <StateBadge state={flow.state} />
      </h1>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {flow.failure && (
        <p role="status" className="error">
          Last wake failed at node {flow.failure.node}: {flow.failure.reason} — {flow.failure.message}
        </p>
      )}
      {why && (
        <section aria-labelledby="why-title" className="why">
          <h2 id="why-title">Why it is {why.state}</h2>
          <ul aria-labelledby="why-title">
            {why.reasons.map((r) => (
              <li key={r.kind + r.message}>{r.message}</li>
            ))}
            {why.drains_in_ms !== null && <li>Drains in {Math.round(why.drains_in_ms / 1000)} s if nothing else arrives.</li>}
          </ul>
        </section>
      )}
      <dl className="facts">
        <dt>Source</dt>
        <dd>{flow.source === "store" ? `store, version ${flow.version}` : flow.source}</dd>
        <dt>Bindings</dt>
        <dd>{flow.bindings.map((b) => `${b.host}${b.path}`).join(", ")}</dd>
        <dt>Upstream</dt>
        <dd>{flow.upstream}</dd>
        <dt>Idle after</dt>
        <dd>{Math.round(flow.idle_after_ms / 1000)} s</dd>
        <dt>Hold</dt>
        <dd>
          {Math.round(flow.hold_timeout_ms / 1000)} s (browsers {Math.round(flow.fast_hold_ms / 1000)} s)
        </dd>
        {flow.keep_warm.length > 0 && (
          <>
            <dt>Kept warm</dt>
            <dd>
              {flow.keep_warm.map((w) => `${w.cron} (${w.tz}) for ${Math.round(w.for_ms / 60000)} min`).join("; ")}
              {flow.keep_warm_until_ms !== null && ` — in a window until ${when(flow.keep_warm_until_ms)}`}
              {flow.next_keep_warm_ms !== null && ` — next wake ${when(flow.next_keep_warm_ms)}`}
            </dd>
          </>
        )}
      </dl>
      {flow.source === "store" && flow.permissions.includes("flows.edit") && (
        <p>
          <Link to={`/flows/${encodeURIComponent(flow.name)}/edit`}>Edit the draft</Link>
        </p>
      )}
      {canOperate && (
        <div className="actions" role="group" aria-label="Operations">
          {operations.map((op) => (
            <button key={op} type="button" disabled={busy !== null} onClick={() => run(op)}>
              {busy === op ? `${op}…` : op[0].toUpperCase() + op.slice(1)}
            </button>
          ))}
        </div>
      )}
      <h2>
        Graph{" "}
        <small role="status" className={connected ? "live on" : "live"}>
          {connected ? "live updates on" : "live updates paused (reconnecting)"}
        </small>
      </h2>
      <Dag nodes={nodes} upstream={flow.upstream} />
      <h2>Recent wakes</h2>
      <Timeline runs={runs} />
      {flow.source === "store" && (
        <Versions flow={flow.name} canActivate={flow.permissions.includes("flows.activate")}
          canEdit={flow.permissions.includes("flows.edit")}
          onChanged={() => getFlow(name).then(setFlow, () => {})} />
      )}
      {flow.permissions.includes("flows.admin") && <FlowAccess flow={flow.name} onError={onError} />}
      {me.permissions.includes("audit.read") && <FlowAudit flow={flow.name} onError={onError} />}
    </section>
  );
}
