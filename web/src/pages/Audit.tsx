import { useCallback, useState } from "react";

import { ApiError, audit, verifyAudit, type AuditItem, type Me, type Verification } from "../api";
import { useLoad, when } from "../useLoad";

type Filter = { actor: string; action: string; target: string };

/** The audit log: every mutation, newest first, filtered by actor, action or target, page by page, and
 * a check of its hash chain. */
export function AuditPage({ onError }: { me: Me; onError: (e: unknown) => boolean }) {
  const [filter, setFilter] = useState<Filter>({ actor: "", action: "", target: "" });
  const [applied, setApplied] = useState<Filter>(filter);
  const [older, setOlder] = useState<{ items: AuditItem[]; next: string | null } | null>(null);
  const [verification, setVerification] = useState<Verification | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const first = useCallback(() => audit(applied), [applied]);
  const { data, error } = useLoad(first, onError);

  const items = [...(data?.items ?? []), ...(older?.items ?? [])];
  const next = older ? older.next : (data?.next ?? null);
  const fail = (e: unknown) => !onError(e) && setProblem(e instanceof ApiError ? e.message : String(e));

  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          setOlder(null);
          setApplied(filter);
        }}
      >
        {(["actor", "action", "target"] as const).map((key) => (
          <label key={key}>
            {key[0].toUpperCase() + key.slice(1)}
            <input value={filter[key]} onChange={(e) => setFilter({ ...filter, [key]: e.target.value })} placeholder={{ actor: "user:ID", action: "flow.commit", target: "flow/shop" }[key]} />
          </label>
        ))}
        <button type="submit">Filter</button>
        <button
          type="button"
          onClick={() => {
            setVerification(null);
            verifyAudit().then(setVerification, fail);
          }}
        >
          Verify the chain
        </button>
      </form>
      {verification && (
        <p role="status" className={verification.ok ? "state-ready" : "error"}>
          {verification.ok
            ? `The chain is intact: ${verification.checked} records checked.`
            : `The chain is broken at record ${verification.first_broken?.sequence}: ${JSON.stringify(verification.first_broken)}`}
        </p>
      )}
      {(error || problem) && (
        <p role="alert" className="error">
          {error ?? problem}
        </p>
      )}
      <table aria-label="Audit records">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">When</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Target</th>
            <th scope="col">Detail</th>
          </tr>
        </thead>
        <tbody>
          {items.map((r) => (
            <tr key={r.sequence}>
              <td>{r.sequence}</td>
              <td>{when(r.at_ms)}</td>
              <td>
                {r.actor} <small className="muted">{r.source}</small>
              </td>
              <th scope="row">{r.action}</th>
              <td>{r.target}</td>
              <td>
                <code className="detail">{JSON.stringify(r.detail)}</code>
              </td>
            </tr>
          ))}
          {data && items.length === 0 && (
            <tr>
              <td colSpan={6}>No record matches.</td>
            </tr>
          )}
        </tbody>
      </table>
      {next && (
        <button type="button" onClick={() => audit({ ...applied, cursor: next }).then((page) => setOlder({ items: [...(older?.items ?? []), ...page.items], next: page.next }), fail)}>
          Older records
        </button>
      )}
    </section>
  );
}
