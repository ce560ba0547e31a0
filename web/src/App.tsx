import { lazy, Suspense, useCallback, useEffect, useState } from "react";
import { Navigate, NavLink, Route, Routes, useLocation, useNavigate } from "react-router";

import { ApiError, logout, me, type Me } from "./api";
import { FlowsPage } from "./pages/Flows";
import { HomePage } from "./pages/Home";
import { LinkPage } from "./pages/Link";
import { LoginPage } from "./pages/Login";
import { NewFlowPage } from "./pages/NewFlow";
import { RoutingPage } from "./pages/Routing";
import { applyTheme, initialTheme, type Theme } from "./theme";

// The pages with the graph library, and the ones operators open less often, load when first opened.
const FlowDetailPage = lazy(() => import("./pages/FlowDetail").then((m) => ({ default: m.FlowDetailPage })));
const EditorPage = lazy(() => import("./pages/Editor").then((m) => ({ default: m.EditorPage })));
const WorkloadsPage = lazy(() => import("./pages/Workloads").then((m) => ({ default: m.WorkloadsPage })));
const AuditPage = lazy(() => import("./pages/Audit").then((m) => ({ default: m.AuditPage })));
const SettingsPage = lazy(() => import("./pages/Settings").then((m) => ({ default: m.SettingsPage })));

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
            <NavLink to="/" end>
              Overview
            </NavLink>
            <NavLink to="/flows">Flows</NavLink>
            {who.permissions.includes("flows.read") && <NavLink to="/workloads">Workloads</NavLink>}
            <NavLink to="/routing">Routing</NavLink>
            {who.permissions.includes("audit.read") && <NavLink to="/audit">Audit</NavLink>}
            <NavLink to="/settings">Settings</NavLink>
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
        <Suspense fallback={<p>Loading…</p>}>
        <Routes>
          <Route path="/login" element={<LoginPage onSignedIn={setWho} />} />
          <Route path="/invite" element={<LinkPage purpose="invite" onSignedIn={setWho} />} />
          <Route path="/reset" element={<LinkPage purpose="reset" onSignedIn={setWho} />} />
          <Route path="/setup" element={<LinkPage purpose="setup" onSignedIn={setWho} />} />
          <Route path="/flows" element={who ? <FlowsPage me={who} onError={signedOut} /> : null} />
          <Route path="/flows/new" element={who ? <NewFlowPage onError={signedOut} /> : null} />
          <Route path="/flows/:name/edit" element={who ? <EditorPage me={who} onError={signedOut} /> : null} />
          <Route path="/flows/:name" element={who ? <FlowDetailPage me={who} onError={signedOut} /> : null} />
          <Route path="/" element={who ? <HomePage me={who} onError={signedOut} /> : null} />
          <Route path="/workloads" element={who ? <WorkloadsPage me={who} onError={signedOut} /> : null} />
          <Route path="/routing" element={who ? <RoutingPage me={who} onError={signedOut} /> : null} />
          <Route path="/audit" element={who ? <AuditPage me={who} onError={signedOut} /> : null} />
          <Route path="/settings/:section?" element={who ? <SettingsPage me={who} onError={signedOut} /> : null} />
          <Route path="*" element={<Navigate to="/" replace />} />
        </Routes>
        </Suspense>
      </main>
    </div>
  );
}
