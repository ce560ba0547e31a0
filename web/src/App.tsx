import { useCallback, useEffect, useState } from "react";
import { Navigate, NavLink, Route, Routes, useLocation, useNavigate } from "react-router";

import { ApiError, logout, me, type Me } from "./api";
import { FlowDetailPage } from "./pages/FlowDetail";
import { FlowsPage } from "./pages/Flows";
import { LinkPage } from "./pages/Link";
import { LoginPage } from "./pages/Login";
import { applyTheme, initialTheme, type Theme } from "./theme";

/** Pages anyone may open: sign-in and the single-use links. */
const PUBLIC = ["/login", "/invite", "/reset", "/setup"];

/** The dashboard: sign-in, then the pages; a 401 anywhere leads back to sign-in and returns afterwards. */
export function App() {
  const [who, setWho] = useState<Me | null | undefined>(undefined);
  const [theme, setTheme] = useState<Theme>(initialTheme);
  const location = useLocation();
  const navigate = useNavigate();

  useEffect(() => applyTheme(theme), [theme]);
  useEffect(() => {
    me().then(setWho, () => setWho(null));
  }, []);

  const signedOut = useCallback(
    (e: unknown) => {
      if (e instanceof ApiError && e.status === 401) {
        setWho(null);
        navigate(`/login?next=${encodeURIComponent(location.pathname)}`);
        return true;
      }
      return false;
    },
    [navigate, location.pathname],
  );

  if (who === undefined) return <p className="loading">Loading…</p>;
  if (who === null && !PUBLIC.includes(location.pathname)) {
    return <Navigate to={`/login?next=${encodeURIComponent(location.pathname)}`} replace />;
  }
  return (
    <div className="app">
      <header className="bar">
        <span className="brand">LeanNodes</span>
        {who && (
          <nav aria-label="Main">
            <NavLink to="/flows">Flows</NavLink>
          </nav>
        )}
        <span className="spacer" />
        <button type="button" onClick={() => setTheme(theme === "dark" ? "light" : "dark")} aria-label={`Switch to ${theme === "dark" ? "light" : "dark"} theme`}>
          {theme === "dark" ? "Light theme" : "Dark theme"}
        </button>
        {who && (
          <>
            <span className="who">{who.user.email}</span>
            <button
              type="button"
              onClick={() => {
                logout().finally(() => {
                  setWho(null);
                  navigate("/login");
                });
              }}
            >
              Sign out
            </button>
          </>
        )}
      </header>
      <main>
        <Routes>
          <Route path="/login" element={<LoginPage onSignedIn={setWho} />} />
          <Route path="/invite" element={<LinkPage purpose="invite" onSignedIn={setWho} />} />
          <Route path="/reset" element={<LinkPage purpose="reset" onSignedIn={setWho} />} />
          <Route path="/setup" element={<LinkPage purpose="setup" onSignedIn={setWho} />} />
          <Route path="/flows" element={who ? <FlowsPage me={who} onError={signedOut} /> : null} />
          <Route path="/flows/:name" element={who ? <FlowDetailPage me={who} onError={signedOut} /> : null} />
          <Route path="*" element={<Navigate to="/flows" replace />} />
        </Routes>
      </main>
    </div>
  );
}
