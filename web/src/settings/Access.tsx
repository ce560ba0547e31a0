import { settings } from "../api";
import { useLoad } from "../useLoad";

const map = (m: Record<string, string>) =>
  Object.entries(m)
    .map(([group, role]) => `${group} → ${role}`)
    .join(", ") || "none (users get no role until granted one)";

/** How people sign in (password, OIDC providers, SAML) and mail, as the configuration file sets them;
 * secrets are never shown, only whether they are set. */
export function Access({ onError }: { onError: (e: unknown) => boolean }) {
  const { data, error } = useLoad(settings, onError);
  if (!data) return error ? <p role="alert" className="error">{error}</p> : <p>Loading…</p>;
  return (
    <section aria-labelledby="access-title">
      <h2 id="access-title">Sign-in and mail</h2>
      <p className="muted">These come from the configuration file ([server.auth], [server.smtp]); change them there and reload.</p>
      <dl className="facts">
        <dt>Mode</dt>
        <dd>{data.auth_mode}</dd>
        <dt>Sign-in lasts</dt>
        <dd>{Math.round(data.session_ttl_s / 3600)} h</dd>
        <dt>External URL</dt>
        <dd>
          <code>{data.external_url}</code>
        </dd>
        <dt>Public status</dt>
        <dd>{data.public_status}</dd>
        <dt>Callout check token</dt>
        <dd>{data.check_token_set ? "set" : "not set"}</dd>
      </dl>
      <h3>OpenID Connect</h3>
      {data.oidc.length === 0 && <p>No provider.</p>}
      {data.oidc.map((p) => (
        <dl key={p.name} className="facts" aria-label={`OIDC provider ${p.name}`}>
          <dt>Name</dt>
          <dd>{p.name}</dd>
          <dt>Issuer</dt>
          <dd>
            <code>{p.issuer}</code>
          </dd>
          <dt>Client</dt>
          <dd>
            {p.client_id} (secret {p.client_secret_set ? "set" : "missing"})
          </dd>
          <dt>Redirect URL</dt>
          <dd>
            <code>{p.redirect_url}</code>
          </dd>
          <dt>Groups → roles</dt>
          <dd>
            {p.groups_claim}: {map(p.role_map)}
          </dd>
        </dl>
      ))}
      <h3>SAML</h3>
      {data.saml ? (
        <dl className="facts" aria-label="SAML">
          <dt>Entity id</dt>
          <dd>
            <code>{data.saml.entity_id}</code>
          </dd>
          <dt>Metadata</dt>
          <dd>
            <code>{data.saml.metadata_url}</code>
          </dd>
          <dt>ACS</dt>
          <dd>
            <code>{data.saml.acs_url}</code>
          </dd>
          <dt>Groups → roles</dt>
          <dd>
            {data.saml.groups_attribute}: {map(data.saml.role_map)}
          </dd>
        </dl>
      ) : (
        <p>Not configured.</p>
      )}
      <h3>Mail</h3>
      {data.smtp ? (
        <p>
          {data.smtp.host}:{data.smtp.port} from {data.smtp.from} (password {data.smtp.password_set ? "set" : "not set"})
        </p>
      ) : (
        <p>Not configured: invitation and reset links are shown to the administrator who creates them.</p>
      )}
    </section>
  );
}
