import { useState } from "react";

import { ApiError, deleteRoute, notificationRoutes, sendTest, type Delivery, type NotificationRoute } from "../api";
import { useLoad, when } from "../useLoad";
import { NewRoute } from "./NewRoute";

/** One delivery in words. */
function outcome(d: Delivery): string {
  const tries = d.attempts === 1 ? "" : ` after ${d.attempts} attempts`;
  return d.ok ? `${d.event} delivered (HTTP ${d.status})${tries}` : `${d.event} failed${tries}: ${d.error ?? "no answer"}`;
}

/** A route's destination: kind and payload shape. */
const shape = (r: NotificationRoute) => (r.kind === "webhook" ? `webhook (${r.format})` : r.kind);

/** Notification routes from `[[notification]]` and from the API: where each posts (host only), what it
 * receives, its delivery counters and last result, Send Test; create and delete the API's routes. */
export function Notifications({ onError }: { onError: (e: unknown) => boolean }) {
  const { data, error, reload } = useLoad(notificationRoutes, onError, 10000);
  const [results, setResults] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState<string | null>(null);

  async function test(name: string) {
    setBusy(name);
    try {
      const d = await sendTest(name);
      setResults((r) => ({ ...r, [name]: d.ok ? `Test delivered (HTTP ${d.status}) in ${d.took_ms} ms` : `Test failed: ${d.error ?? "no answer"}` }));
      await reload();
    } catch (e) {
      if (!onError(e)) setResults((r) => ({ ...r, [name]: e instanceof ApiError ? e.message : String(e) }));
    } finally {
      setBusy(null);
    }
  }

  return (
    <section aria-labelledby="notifications-title">
      <h2 id="notifications-title">Notifications</h2>
      <p className="muted">
        Routes come from <code>[[notification]]</code> in the configuration file (change those there) or are made here. Their URLs, headers
        and keys are secrets and are never shown.
      </p>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {data && data.routes.length === 0 && <p>No notification route is configured.</p>}
      {data && data.routes.length > 0 && (
        <table aria-label="Notification routes">
          <thead>
            <tr>
              <th scope="col">Route</th>
              <th scope="col">Sends to</th>
              <th scope="col">Events</th>
              <th scope="col">Flows</th>
              <th scope="col">Delivered</th>
              <th scope="col">Last</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {data.routes.map((r) => (
              <tr key={r.name}>
                <th scope="row">
                  {r.name}
                  {r.source === "file" && <small className="muted"> (file)</small>}
                </th>
                <td>
                  {shape(r)} · {r.host}
                  {r.headers.length > 0 && <small className="muted"> (headers: {r.headers.join(", ")})</small>}
                </td>
                <td>{r.events.length ? r.events.join(", ") : "all"}</td>
                <td>{r.flows.length ? r.flows.join(", ") : "all"}</td>
                <td>
                  {r.delivered}
                  {r.failed > 0 && <span className="error"> · {r.failed} failed</span>}
                  {r.dropped > 0 && <span className="error"> · {r.dropped} dropped</span>}
                  {r.queued > 0 && <span className="muted"> · {r.queued} waiting</span>}
                </td>
                <td className={r.last && !r.last.ok ? "error" : undefined}>{r.last ? `${outcome(r.last)}, ${when(r.last.at_ms)}` : "—"}</td>
                <td>
                  <button type="button" disabled={busy === r.name} onClick={() => test(r.name)}>
                    Send test to {r.name}
                  </button>
                  {r.source === "api" && (
                    <button type="button" onClick={() => deleteRoute(r.name).then(reload, (e) => !onError(e) && setResults((x) => ({ ...x, [r.name]: String(e) })))}>
                      Delete {r.name}
                    </button>
                  )}
                  {results[r.name] && (
                    <p role="status" aria-label={`Test result of ${r.name}`}>
                      {results[r.name]}
                    </p>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {data && <NewRoute events={data.events} onCreated={reload} onError={onError} />}
    </section>
  );
}
