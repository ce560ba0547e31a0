import { useEffect, useState } from "react";

import { activate, ApiError, diff, versions, type FlowDiff, type Version } from "../api";
import { DiffView } from "./DiffView";

/** The versions of a store-managed flow: activate one (roll forward or back), compare one with the active. */
export function Versions({ flow, canActivate, onChanged }: { flow: string; canActivate: boolean; onChanged: () => void }) {
  const [list, setList] = useState<Version[]>([]);
  const [compared, setCompared] = useState<{ number: number; diff: FlowDiff } | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = () =>
    versions(flow).then(
      (v) => setList(v.items),
      (e) => setError(e instanceof ApiError ? e.message : String(e)),
    );
  useEffect(() => {
    versions(flow).then(
      (v) => setList(v.items),
      (e) => setError(e instanceof ApiError ? e.message : String(e)),
    );
  }, [flow]);

  const active = list.find((v) => v.active)?.number;
  async function compare(number: number) {
    if (active === undefined) return;
    try {
      setCompared({ number, diff: await diff(flow, active, number) });
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  }
  async function roll(number: number) {
    try {
      await activate(flow, number);
      setError(null);
      await load();
      onChanged();
    } catch (e) {
      // An invalid version lists every problem in the message.
      setError(e instanceof ApiError ? e.message : String(e));
    }
  }

  return (
    <section aria-labelledby="versions-title">
      <h2 id="versions-title">Versions</h2>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <table aria-label="Versions">
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Message</th>
            <th scope="col">When</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {[...list].reverse().map((v) => (
            <tr key={v.number}>
              <th scope="row">
                v{v.number} {v.active && <span className="tag">active</span>}
              </th>
              <td>{v.message}</td>
              <td>{new Date(v.created_ms).toLocaleString()}</td>
              <td>
                {!v.active && active !== undefined && (
                  <button type="button" onClick={() => compare(v.number)}>
                    Compare v{v.number} with v{active}
                  </button>
                )}{" "}
                {!v.active && canActivate && (
                  <button type="button" onClick={() => roll(v.number)}>
                    Activate v{v.number}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {compared && active !== undefined && <DiffView diff={compared.diff} from={`v${active}`} to={`v${compared.number}`} />}
    </section>
  );
}
