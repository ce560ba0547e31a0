import { type FormEvent, useEffect, useState } from "react";
import { useNavigate, useSearchParams } from "react-router";

import { ApiError, login, providers, requestReset, type Me, type Providers } from "../api";

/** Where to go after signing in: only a path of this dashboard, never `//host` or `/\host` (which a
 * browser reads as another site) nor the sign-in page itself. */
export function returnPath(next: string | null): string {
  return next && /^\/(?![/\\])/.test(next) && !next.startsWith("/login") ? next : "/";
}

/** Sign-in with e-mail and password or a single-sign-on provider; returns to the page asked for. A
 * forgotten password asks for a reset link by mail. */
export function LoginPage({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [ways, setWays] = useState<Providers | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const back = returnPath(params.get("next"));

  useEffect(() => {
    providers().then(setWays, () => setWays(null));
  }, []);

  async function forgot() {
    setError(null);
    if (!email) {
      setError("Write your e-mail address first, then ask for a reset link.");
      return;
    }
    try {
      await requestReset(email);
      setNotice(`If ${email} has an account, a reset link is on its way (valid one hour). Without mail set up, ask an administrator for one.`);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    }
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const who = await login(email, password);
      onSignedIn(who);
      navigate(back);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="login card" onSubmit={submit} aria-labelledby="login-title">
      <h1 id="login-title">Sign in to LeanNodes</h1>
      <label>
        E-mail
        <input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
      </label>
      <label>
        Password
        <input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {ways?.setup_required && <p role="status">No administrator exists yet: open the one-time setup link LeanNodes printed when it started.</p>}
      {notice && <p role="status">{notice}</p>}
      <button type="submit" className="primary" disabled={busy}>
        {busy ? "Signing in…" : "Sign in"}
      </button>
      <button type="button" onClick={forgot}>
        Forgot your password?
      </button>
      {ways && ways.sso.length > 0 && (
        <nav aria-label="Single sign-on" className="sso">
          {ways.sso.map((p) => (
            <a key={`${p.kind}:${p.name}`} className="button" href={`${p.start_url}${p.start_url.includes("?") ? "&" : "?"}return_to=${encodeURIComponent(back)}`}>
              Sign in with {p.label}
            </a>
          ))}
        </nav>
      )}
    </form>
  );
}
