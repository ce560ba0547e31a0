import { useState } from "react";
import { Link } from "react-router";

import { ApiError, routing, type Me, type Routing } from "../api";

/** Routing lookup: which flow owns a URL, why, and what happens to a request for it. */
export function RoutingPage({ onError }: { me: Me; onError: (e: unknown) => boolean }) {
  const [url, setUrl] = useState("");
  const [answer, setAnswer] = useState<Routing | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function look(e: React.FormEvent) {
    e.preventDefault();
    try {
      setAnswer(await routing(url.trim()));
      setError(null);
    } catch (err) {
      if (!onError(err)) setError(err instanceof ApiError ? err.message : String(err));
    }
  }

  return (
    <section aria-labelledby="routing-title">
      <h1 id="routing-title">Routing lookup</h1>
      <form onSubmit={look} className="inline-form">
        <label>
          URL
          <input required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://shop.example.com/cart" size={48} />
        </label>
        <button type="submit" className="primary">
          Look up
        </button>
      </form>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {answer && (
        <section aria-label="Routing answer" className="card">
          <p>
            <strong>
              {answer.host}
              {answer.path}
            </strong>
          </p>
          {answer.matched ? (
            <p>
              Owned by flow{" "}
              {answer.matched.flow ? <Link to={`/flows/${encodeURIComponent(answer.matched.flow)}`}>{answer.matched.flow}</Link> : "(one you may not read)"} through{" "}
              <code>
                {answer.matched.host}
                {answer.matched.path}
              </code>
              : {answer.matched.reason}
            </p>
          ) : (
            <p>No flow owns it.</p>
          )}
          <p>
            What happens: <strong>{answer.outcome}</strong>
          </p>
          {answer.closest.length > 0 && (
            <>
              <h2>Close, but not matching</h2>
              <ul>
                {answer.closest.map((c) => (
                  <li key={`${c.host}${c.path}`}>
                    <code>
                      {c.host}
                      {c.path}
                    </code>{" "}
                    {c.flow && `(${c.flow})`}: {c.reason}
                  </li>
                ))}
              </ul>
            </>
          )}
        </section>
      )}
    </section>
  );
}
