import { useState } from "react";

import { ApiError, createToken, revokeToken, tokens } from "../api";
import { useLoad, when } from "../useLoad";

/** The caller's personal access tokens: create one (its secret is shown once), see when each was last
 * used, revoke. */
export function Tokens({ onError }: { onError: (e: unknown) => boolean }) {
  const { data, error, reload } = useLoad(tokens, onError);
  const [name, setName] = useState("");
  const [expires, setExpires] = useState("30d");
  const [secret, setSecret] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const fail = (e: unknown) => !onError(e) && setMessage(e instanceof ApiError ? e.message : String(e));

  async function create(e: React.FormEvent) {
    e.preventDefault();
    try {
      const created = await createToken(name.trim(), expires.trim());
      setSecret(created.token);
      setMessage(null);
      setName("");
      await reload();
    } catch (err) {
      fail(err);
    }
  }

  return (
    <section aria-labelledby="tokens-title">
      <h2 id="tokens-title">Your tokens</h2>
      <form className="inline-form" onSubmit={create}>
        <label>
          Token name
          <input required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} placeholder="CI deploys" />
        </label>
        <label>
          Expires in
          <input value={expires} onChange={(e) => setExpires(e.target.value)} placeholder="30d" size={8} />
        </label>
        <button type="submit" className="primary">
          Create token
        </button>
      </form>
      {secret && (
        <p role="status" className="notice">
          Copy it now, it is not shown again: <code aria-label="New token">{secret}</code>
        </p>
      )}
      {(error || message) && (
        <p role="alert" className="error">
          {error ?? message}
        </p>
      )}
      {data && (
        <table aria-label="Tokens">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Created</th>
              <th scope="col">Expires</th>
              <th scope="col">Last used</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {data.tokens.map((t) => (
              <tr key={t.id}>
                <th scope="row">{t.name}</th>
                <td>{when(t.created_ms)}</td>
                <td>{when(t.expires_ms)}</td>
                <td>{when(t.last_used_ms)}</td>
                <td>
                  <button type="button" onClick={() => revokeToken(t.id).then(reload, fail)}>
                    Revoke {t.name}
                  </button>
                </td>
              </tr>
            ))}
            {data.tokens.length === 0 && (
              <tr>
                <td colSpan={5}>No token.</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </section>
  );
}
