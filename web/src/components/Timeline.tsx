import type { Execution } from "../api";

/** Recent executions, each with a bar per node from its wake request to ready (or failure). */
export function Timeline({ runs }: { runs: Execution[] }) {
  if (runs.length === 0) return <p>No wake yet.</p>;
  return (
    <ol className="timeline" aria-label="Recent wakes">
      {runs.map((run) => {
        const end = run.finished_ms ?? Date.now();
        const span = Math.max(1, end - run.started_ms);
        return (
          <li key={run.id}>
            <p>
              <strong>{new Date(run.started_ms).toLocaleString()}</strong> — {run.trigger}, {run.outcome}
              {run.finished_ms !== null && `, ${run.finished_ms - run.started_ms} ms`}
              {run.error && <span className="error"> ({run.error})</span>}
            </p>
            <ul>
              {run.steps.map((step) => {
                const from = (step.requested_ms ?? run.started_ms) - run.started_ms;
                const to = (step.ready_ms ?? step.failed_ms ?? end) - run.started_ms;
                return (
                  <li key={step.node} aria-label={`${step.node}: ${step.state}${step.ready_ms ? ` after ${to} ms` : ""}`}>
                    <span className="step-name">{step.node}</span>
                    <span className="step-track">
                      <span
                        className={`step-bar state-${step.state}`}
                        style={{ left: `${(100 * from) / span}%`, width: `${Math.max(1, (100 * (to - from)) / span)}%` }}
                      />
                    </span>
                    <span className="step-time">{step.ready_ms ? `${to} ms` : (step.reason ?? step.state)}</span>
                  </li>
                );
              })}
            </ul>
          </li>
        );
      })}
    </ol>
  );
}
