import { type FormEvent, useState } from "react";
import { Link as RouterLink, useLocation, useNavigate } from "react-router";

import { acceptInvitation, ApiError, type Me, resetPassword, setup } from "../api";

/** What a single-use link is for. */
export type Purpose = "invite" | "reset" | "setup";

const TITLES: Record<Purpose, string> = {
  invite: "Accept your invitation",
  reset: "Choose a new password",
  setup: "Create the first administrator",
};

/** The page a mailed or printed single-use link opens (`/invite#token=…`): the secret stays in the
 * fragment, which browsers never send to a server. */
export function LinkPage({ purpose, onSignedIn }: { purpose: Purpose; onSignedIn: (me: Me) => void }) {
  const token = new URLSearchParams(useLocation().hash.slice(1)).get("token") ?? "";
  const navigate = useNavigate();
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (purpose === "reset") {
        await resetPassword(token, password);
        setDone(true);
      } else {
        const who = purpose === "invite" ? await acceptInvitation(token, name, password) : await setup(token, email, name, password);
        onSignedIn(who);
        navigate("/");
      }
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }

  if (!token) {
    return (
      <p role="alert" className="error card login">
        This link is incomplete: open the whole link from the message you received.
      </p>
    );
  }
  if (done) {
    return (
      <p role="status" className="card login">
        Your password is set. <RouterLink to="/login">Sign in</RouterLink>
      </p>
    );
  }
  return (
    <form className="login card" onSubmit={submit} aria-labelledby="link-title">
      <h1 id="link-title">{TITLES[purpose]}</h1>
      {purpose === "setup" && (
        <label>
          E-mail
          <input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
      )}
      {purpose !== "reset" && (
        <label>
          Name
          <input autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} />
        </label>
      )}
      <label>
        New password
        <input type="password" autoComplete="new-password" required minLength={10} value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      <button type="submit" disabled={busy}>
        {busy ? "Saving…" : purpose === "reset" ? "Set password" : "Create account"}
      </button>
    </form>
  );
}
