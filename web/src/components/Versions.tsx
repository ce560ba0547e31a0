import { useEffect, useState } from "react";

import { useNavigate } from "react-router";

import { activate, ApiError, branchVersion, diff, getVersion, versions, type FlowDiff, type Version, type VersionDetail } from "../api";
import { DiffDag } from "./DiffDag";
import { DiffView } from "./DiffView";

/** The versions of a store-managed flow: activate one (roll forward or back), compare one with the active. */
export function Versions({ flow, canActivate, canEdit, onChanged }: { flow: string; canActivate: boolean; canEdit: boolean; onChanged: () => void }) {
  const navigate = useNavigate();
  const [list, setList] = useState<Version[]>([]);
  const [compared, setCompared] = useState<{ number: number; diff: FlowDiff; from: VersionDetail; to: VersionDetail } | null>(null);
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
      const [changes, from, to] = await Promise.all([diff(flow, active, number), getVersion(flow, active), getVersion(flow, number)]);
      setCompared({ number, diff: changes, from, to });
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

  async function branch(number: number) {
    if (!window.confirm(`Replace the draft of ${flow} with a copy of version ${number}?`)) return;
    try {
      await branchVersion(flow, number);
      navigate(`/flows/${encodeURIComponent(flow)}/edit`);
    } catch (e) {
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
                )}{" "}
                {canEdit && (
                  <button type="button" onClick={() => branch(v.number)}>
                    Edit from v{v.number}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {compared && active !== undefined && (
        <>
          <DiffDag from={compared.from.spec} to={compared.to.spec} diff={compared.diff} fromLabel={`v${active} (active)`} toLabel={`v${compared.number}`} />
          <DiffView diff={compared.diff} from={`v${active}`} to={`v${compared.number}`} />
        </>
      )}
    </section>
  );
}
