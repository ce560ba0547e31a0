import { useCallback, useId, useState } from "react";

import { ApiError, flowAccess, roles, setFlowAccess, type Grant } from "../api";
import { useLoad } from "../useLoad";

/** Who has which role on one flow (besides instance-wide roles): add, change and remove grants, saved
 * together with `If-Match` so two administrators cannot overwrite each other unknowingly. */
export function FlowAccess({ flow, onError }: { flow: string; onError: (e: unknown) => boolean }) {
  const load = useCallback(() => Promise.all([flowAccess(flow), roles()]).then(([a, r]) => ({ ...a, roles: r.roles.map((x) => x.name) })), [flow]);
  const { data, reload, error } = useLoad(load, onError);
  const [edited, setEdited] = useState<Grant[] | null>(null);
  const [subject, setSubject] = useState("");
  const [role, setRole] = useState("viewer");
  const [message, setMessage] = useState<string | null>(null);
  const id = useId();

  if (!data) return error ? <p role="alert" className="error">{error}</p> : null;
  const grants = edited ?? data.grants;
  async function save() {
    if (!data || !edited) return;
    try {
      await setFlowAccess(flow, edited, data.version);
      setEdited(null);
      setMessage("Access saved.");
      await reload();
    } catch (e) {
      if (!onError(e)) setMessage(e instanceof ApiError ? e.message : String(e));
    }
  }

  return (
    <section aria-labelledby="access-title">
      <h2 id="access-title">Access</h2>
      <table aria-labelledby="access-title">
        <thead>
          <tr>
            <th scope="col">Who</th>
            <th scope="col">Role on {flow}</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {grants.map((g, i) => (
            <tr key={g.subject}>
              <th scope="row">
                <code>{g.subject}</code>
              </th>
              <td>
                <select aria-label={`Role of ${g.subject}`} value={g.role} onChange={(e) => setEdited(grants.map((x, j) => (j === i ? { ...x, role: e.target.value } : x)))}>
                  {data.roles.map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
              </td>
              <td>
                <button type="button" onClick={() => setEdited(grants.filter((_, j) => j !== i))}>
                  Remove {g.subject}
                </button>
              </td>
            </tr>
          ))}
          {grants.length === 0 && (
            <tr>
              <td colSpan={3}>Only instance-wide roles apply.</td>
            </tr>
          )}
        </tbody>
      </table>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!/^(user|group):.+$/.test(subject.trim())) {
            setMessage("Write user:ID or group:NAME.");
            return;
          }
          setEdited([...grants.filter((g) => g.subject !== subject.trim()), { subject: subject.trim(), role }]);
          setSubject("");
        }}
      >
        <span className="field">
          <label htmlFor={`${id}-subject`}>Grant to</label>
          <input id={`${id}-subject`} value={subject} onChange={(e) => setSubject(e.target.value)} placeholder="user:ID or group:NAME" />
        </span>
        <span className="field">
          <label htmlFor={`${id}-role`}>Role</label>
          <select id={`${id}-role`} value={role} onChange={(e) => setRole(e.target.value)}>
            {data.roles.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </span>
        <button type="submit">Add grant</button>
        <button type="button" className="primary" disabled={!edited} onClick={save}>
          Save access
        </button>
      </form>
      {message && <p role="status">{message}</p>}
    </section>
  );
}
