import { useCallback, useState } from "react";

import { ApiError, invitations, invite, revokeInvitation, roles } from "../api";
import { useLoad, when } from "../useLoad";

/** Invitations: invite someone with a role (the link is mailed, or shown once), see and revoke pending ones. */
export function Invitations({ onError }: { onError: (e: unknown) => boolean }) {
  const load = useCallback(() => Promise.all([invitations(), roles()]).then(([i, r]) => ({ pending: i.invitations, roles: r.roles.map((x) => x.name) })), []);
  const { data, error, reload } = useLoad(load, onError);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState("viewer");
  const [message, setMessage] = useState<string | null>(null);

  const fail = (e: unknown) => !onError(e) && setMessage(e instanceof ApiError ? e.message : String(e));
  async function send(e: React.FormEvent) {
    e.preventDefault();
    try {
      const created = await invite(email.trim(), role);
      setMessage(created.mailed ? `The invitation was mailed to ${created.email}.` : `Send ${created.email} this link (shown once): ${created.url}`);
      setEmail("");
      await reload();
    } catch (err) {
      fail(err);
    }
  }

  if (!data) return error ? <p role="alert" className="error">{error}</p> : <p>Loading…</p>;
  return (
    <section aria-labelledby="invitations-title">
      <h2 id="invitations-title">Invitations</h2>
      <form className="inline-form" onSubmit={send}>
        <label>
          E-mail to invite
          <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(e.target.value)}>
            {data.roles.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <button type="submit" className="primary">
          Invite
        </button>
      </form>
      {message && (
        <p role="status" className="notice">
          {message}
        </p>
      )}
      <table aria-label="Pending invitations">
        <thead>
          <tr>
            <th scope="col">Invited</th>
            <th scope="col">Role</th>
            <th scope="col">Expires</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {data.pending.map((i) => (
            <tr key={i.id}>
              <th scope="row">{i.email}</th>
              <td>{i.roles.join(", ")}</td>
              <td>{when(i.expires_ms)}</td>
              <td>
                <button type="button" onClick={() => revokeInvitation(i.id).then(reload, fail)}>
                  Revoke the invitation of {i.email}
                </button>
              </td>
            </tr>
          ))}
          {data.pending.length === 0 && (
            <tr>
              <td colSpan={4}>No pending invitation.</td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}
