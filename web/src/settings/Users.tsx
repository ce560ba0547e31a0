import { useCallback, useState } from "react";

import { ApiError, resetLink, roles, updateUser, users, type Me, type UserView } from "../api";
import { useLoad, when } from "../useLoad";

/** Users: their roles (changed in place), disabling, and password-reset links. */
export function Users({ me, onError }: { me: Me; onError: (e: unknown) => boolean }) {
  const load = useCallback(() => Promise.all([users(), roles()]).then(([u, r]) => ({ users: u.users, roles: r.roles.map((x) => x.name) })), []);
  const { data, error, reload } = useLoad(load, onError);
  const [message, setMessage] = useState<string | null>(null);
  const [link, setLink] = useState<string | null>(null);

  const act = async (what: () => Promise<unknown>, done: string) => {
    try {
      await what();
      setMessage(done);
      await reload();
    } catch (e) {
      if (!onError(e)) setMessage(e instanceof ApiError ? e.message : String(e));
    }
  };
  const setRole = (u: UserView, role: string) => act(() => updateUser(u, { roles: [role] }), `${u.email} is now ${role}.`);

  if (!data) return error ? <p role="alert" className="error">{error}</p> : <p>Loading…</p>;
  return (
    <section aria-labelledby="users-title">
      <h2 id="users-title">Users</h2>
      {message && <p role="status">{message}</p>}
      {link && (
        <p role="status" className="notice">
          Reset link (shown once, valid one hour): <code>{link}</code>
        </p>
      )}
      <table aria-labelledby="users-title">
        <thead>
          <tr>
            <th scope="col">User</th>
            <th scope="col">Role</th>
            <th scope="col">Sign-in</th>
            <th scope="col">Created</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {data.users.map((u) => (
            <tr key={u.id}>
              <th scope="row">
                {u.email} {u.name && <small className="muted">{u.name}</small>} {u.disabled && <span className="tag">disabled</span>}
              </th>
              <td>
                <select aria-label={`Role of ${u.email}`} value={u.roles[0] ?? ""} disabled={u.id === me.user.id} onChange={(e) => setRole(u, e.target.value)}>
                  {u.roles.length === 0 && <option value="">none</option>}
                  {data.roles.map((r) => (
                    <option key={r} value={r}>
                      {r}
                    </option>
                  ))}
                </select>
                {u.sso_roles.length > 0 && <small className="muted"> + SSO: {u.sso_roles.join(", ")}</small>}
              </td>
              <td>{[u.has_password && "password", u.identity && "SSO"].filter(Boolean).join(", ") || "none yet"}</td>
              <td>{when(u.created_ms)}</td>
              <td>
                {u.id !== me.user.id && (
                  <button type="button" onClick={() => act(() => updateUser(u, { disabled: !u.disabled }), `${u.email} is ${u.disabled ? "enabled" : "disabled"}.`)}>
                    {u.disabled ? `Enable ${u.email}` : `Disable ${u.email}`}
                  </button>
                )}{" "}
                <button
                  type="button"
                  onClick={() =>
                    act(async () => {
                      const r = await resetLink(u.id);
                      setLink(r.url);
                    }, `A password-reset link for ${u.email} was created (mailed when mail is set up, else shown here once).`)
                  }
                >
                  Reset link for {u.email}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
