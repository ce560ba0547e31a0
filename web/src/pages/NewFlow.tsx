import { useState } from "react";
import { Link, useNavigate } from "react-router";

import { ApiError, createFlow } from "../api";
import { parseList } from "../editor/model";

/** Creates a store-managed flow (its name and hosts), then opens it in the visual editor. */
export function NewFlowPage({ onError }: { onError: (e: unknown) => boolean }) {
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [hosts, setHosts] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await createFlow(name.trim(), { hosts: parseList(hosts), upstream: "" });
      navigate(`/flows/${encodeURIComponent(name.trim())}/edit`);
    } catch (err) {
      if (!onError(err)) setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="new-title">
      <p>
        <Link to="/flows">Flows</Link> / new
      </p>
      <form className="card login" onSubmit={submit}>
        <h1 id="new-title">New flow</h1>
        <label>
          Name
          <input required value={name} onChange={(e) => setName(e.target.value)} pattern="[A-Za-z0-9][A-Za-z0-9_\-]*" title="Letters, digits, - and _" />
        </label>
        <label>
          Hosts
          <input required value={hosts} onChange={(e) => setHosts(e.target.value)} placeholder="review-42.example.com, *.shop.example.com" />
        </label>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Creating…" : "Create and edit"}
        </button>
      </form>
    </section>
  );
}
