import { useCallback } from "react";

import { audit } from "../api";
import { useLoad, when } from "../useLoad";

/** The last changes made to one flow, from the audit log. */
export function FlowAudit({ flow, onError }: { flow: string; onError: (e: unknown) => boolean }) {
  const load = useCallback(() => audit({ target: `flow/${flow}` }), [flow]);
  const { data } = useLoad(load, onError, 10000);
  if (!data) return null;
  return (
    <section aria-labelledby="flow-audit-title">
      <h2 id="flow-audit-title">Recent changes</h2>
      {data.items.length === 0 ? (
        <p>No change recorded.</p>
      ) : (
        <ul aria-labelledby="flow-audit-title" className="changes">
          {data.items.slice(0, 10).map((r) => (
            <li key={r.sequence}>
              {when(r.at_ms)} — <strong>{r.action}</strong> by {r.actor}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
