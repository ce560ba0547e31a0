import { status } from "../api";
import { useLoad, when } from "../useLoad";

/** This instance: version, configuration, last reload, replica and leadership, store and driver. */
export function InstanceStatus({ onError }: { onError: (e: unknown) => boolean }) {
  const { data, error } = useLoad(status, onError, 5000);
  if (!data) return error ? <p role="alert" className="error">{error}</p> : <p>Loading…</p>;
  return (
    <section aria-labelledby="status-title">
      <h2 id="status-title">Status</h2>
      <dl className="facts">
        <dt>Version</dt>
        <dd>{data.version}</dd>
        <dt>Started</dt>
        <dd>{when(data.started_ms)}</dd>
        <dt>Configuration</dt>
        <dd>
          <code>{data.config_path}</code>
        </dd>
        <dt>Last reload</dt>
        <dd className={data.last_reload.ok ? undefined : "error"}>
          {data.last_reload.ok ? "applied" : "failed"} ({data.last_reload.cause}) {when(data.last_reload.at_ms)}
          {data.last_reload.errors.length > 0 && (
            <ul>
              {data.last_reload.errors.map((e) => (
                <li key={e}>
                  <code>{e}</code>
                </li>
              ))}
            </ul>
          )}
        </dd>
        <dt>Flows</dt>
        <dd>{data.flows}</dd>
        <dt>Requests in flight</dt>
        <dd>{data.in_flight}</dd>
        <dt>Replica</dt>
        <dd>
          {data.replica.id} {data.replica.leader ? "(drain leader)" : "(follower)"}
        </dd>
        <dt>Store</dt>
        <dd>{data.store}</dd>
        <dt>Driver</dt>
        <dd>
          {data.driver}
          {data.driver === "kubernetes" && (data.cluster ? ", cluster connected" : ", cluster not connected")}
        </dd>
        <dt>Sign-in</dt>
        <dd>{data.auth_mode}</dd>
        {data.shutting_down && (
          <>
            <dt>Shutdown</dt>
            <dd className="error">in progress</dd>
          </>
        )}
      </dl>
    </section>
  );
}
