import { useCallback } from "react";

import { workloads, type Me, type Workload } from "../api";
import { useLoad } from "../useLoad";

/** The scalers that also act on a workload, from its warnings: HPA and KEDA get a badge each. */
export function scalers(w: Workload): string[] {
  return [/HorizontalPodAutoscaler/.test(w.warnings.join(" ")) && "HPA", /KEDA/.test(w.warnings.join(" ")) && "KEDA"].filter((s): s is string => !!s);
}

/** Workload discovery: what the flows use (running or not, replicas) and what the cluster has that no
 * flow uses yet, with HPA/KEDA badges where another scaler also acts. */
export function WorkloadsPage({ onError }: { me: Me; onError: (e: unknown) => boolean }) {
  const load = useCallback(() => workloads(), []);
  const { data, error } = useLoad(load, onError, 5000);
  return (
    <section aria-labelledby="workloads-title">
      <h1 id="workloads-title">Workloads</h1>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {data?.cluster_error && (
        <p role="status" className="error">
          The cluster could not be listed: {data.cluster_error}
        </p>
      )}
      {data && (
        <table aria-labelledby="workloads-title">
          <thead>
            <tr>
              <th scope="col">Workload</th>
              <th scope="col">Kind</th>
              <th scope="col">Used by</th>
              <th scope="col">Readiness</th>
              <th scope="col">Notes</th>
            </tr>
          </thead>
          <tbody>
            {data.workloads.map((w) => (
              <tr key={w.id}>
                <th scope="row">
                  <code>{w.id}</code>
                </th>
                <td>{w.kind}</td>
                <td>{w.used_by.length > 0 ? w.used_by.join(", ") : <span className="muted">no flow (yet)</span>}</td>
                <td>
                  {w.running === null ? "—" : <span className={`badge state-${w.running ? "ready" : "asleep"}`}>{w.running ? "running" : "stopped"}</span>}
                  {w.replicas !== null && (
                    <small>
                      {" "}
                      {w.ready_replicas ?? 0}/{w.replicas} ready
                    </small>
                  )}
                </td>
                <td>
                  {scalers(w).map((s) => (
                    <span key={s} className="badge state-failed" title={w.warnings.join("\n")}>
                      {s}
                    </span>
                  ))}
                  {w.warnings.map((text) => (
                    <small key={text} className="warning">
                      {text}
                    </small>
                  ))}
                </td>
              </tr>
            ))}
            {data.workloads.length === 0 && (
              <tr>
                <td colSpan={5}>No workload.</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </section>
  );
}
