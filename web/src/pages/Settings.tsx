import { NavLink, useParams } from "react-router";

import type { Me, Permission } from "../api";
import { Access } from "../settings/Access";
import { InstanceStatus } from "../settings/InstanceStatus";
import { Invitations } from "../settings/Invitations";
import { Notifications } from "../settings/Notifications";
import { Roles } from "../settings/Roles";
import { Tokens } from "../settings/Tokens";
import { Users } from "../settings/Users";

/** The settings sections and the permission each needs (`null`: anyone signed in). */
const SECTIONS: { path: string; label: string; needs: Permission | null }[] = [
  { path: "status", label: "Status", needs: null },
  { path: "users", label: "Users", needs: "users.manage" },
  { path: "invitations", label: "Invitations", needs: "users.manage" },
  { path: "roles", label: "Roles", needs: null },
  { path: "tokens", label: "Tokens", needs: null },
  { path: "sign-in", label: "Sign-in and mail", needs: "settings.manage" },
  { path: "notifications", label: "Notifications", needs: "notifications.manage" },
];

/** Settings: instance status, users, invitations, roles, the caller's tokens, sign-in (OIDC/SAML) and
 * mail, notification routes. Sections the caller may not use are not shown (the API refuses them anyway). */
export function SettingsPage({ me, onError }: { me: Me; onError: (e: unknown) => boolean }) {
  const { section = "status" } = useParams();
  const shown = SECTIONS.filter((s) => s.needs === null || me.permissions.includes(s.needs));
  const current = shown.find((s) => s.path === section) ?? shown[0];
  return (
    <section aria-labelledby="settings-title">
      <h1 id="settings-title">Settings</h1>
      <nav aria-label="Settings sections" className="subnav">
        {shown.map((s) => (
          <NavLink key={s.path} to={`/settings/${s.path}`} aria-current={s.path === current.path ? "page" : undefined}>
            {s.label}
          </NavLink>
        ))}
      </nav>
      {current.path === "status" && <InstanceStatus onError={onError} />}
      {current.path === "users" && <Users me={me} onError={onError} />}
      {current.path === "invitations" && <Invitations onError={onError} />}
      {current.path === "roles" && <Roles onError={onError} />}
      {current.path === "tokens" && <Tokens onError={onError} />}
      {current.path === "sign-in" && <Access onError={onError} />}
      {current.path === "notifications" && <Notifications onError={onError} />}
    </section>
  );
}
