// A real OpenID Provider for bffgate's tests: the certified npm package
// `oidc-provider` (pinned to 9.13.3), configured for one confidential client
// and run on loopback only.
//
// Configuration: ONE JSON document in the environment variable OP_CONFIG (all
// fields optional):
//
//   port                    0 = pick a free port
//   clientId                "bffgate"
//   clientSecret            "bffgate-secret"
//   redirectUris            []  (empty: a placeholder that no test can use)
//   postLogoutRedirectUris  []
//   backchannelLogoutUri    ""  (none); when set, ID tokens carry `sid`
//   accessTokenTTL          60     seconds
//   idTokenTTL              3600   seconds
//   refreshTokenTTL         86400  seconds
//   exitOnStdinClose        false  exit when stdin closes (the Go harness
//                                  sets it, so the OP never outlives a test
//                                  binary that died without closing it)
//   clientAuthMethod        "client_secret_basic"; or "private_key_jwt"
//                           (with clientJwks) or "tls_client_auth" (with tls)
//   clientJwks              null   the client's public JWKS, for
//                                  private_key_jwt
//   tls                     null   {cert, key, ca}: PEM file names; serve
//                                  HTTPS, ask for client certificates
//                                  verified against ca, and turn on mTLS
//                                  (RFC 8705: tls_client_auth, certificate-
//                                  bound access tokens)
//   tlsClientSanDns         ""     the client certificate's DNS name, for
//                                  tls_client_auth
//   dpopBound               false  the client must get DPoP-bound tokens
//   dpopNonce               false  DPoP proofs must carry the OP's nonce
//   resources               []     resource indicators (RFC 8707) the OP
//                                  issues access tokens for
//   noDpop                  false  turn DPoP off (bearer tokens only)
//   requestObjects          false  the client must send signed request
//                                  objects (JAR, RFC 9101), ES256
//
// A second client, "introspector" / "introspector-secret" (client_secret_basic),
// may introspect any token, for tests whose main client has no secret.
//
// When it accepts connections it prints exactly one line to stdout:
//
//   READY http://127.0.0.1:<port>
//
// and the issuer is that URL (no trailing slash). Everything else goes to
// stderr; no token is ever logged. SIGTERM/SIGINT close it cleanly.
//
// Besides the OpenID Provider routes it serves:
//   /interaction/<uid>[/login|/consent|/abort]  a minimal login and consent UI
//       (inputs `login` and `password`, submit buttons) that checks passwords,
//   GET /__stats  test-only counters of token-endpoint grants and back-channel
//       logout POSTs.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

import Provider, { errors, interactionPolicy } from 'oidc-provider';
// oidc-provider's own in-memory adapter, reused with an unbounded store (see
// UnboundedStore below). This is an internal path; the package is pinned to
// an exact version, so it cannot move under us.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

// stdout carries the READY line and nothing else: oidc-provider prints its
// NOTICEs with console.info, so every console method except error is sent to
// stderr.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);
console.debug = (...args) => console.error(...args);

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const MAX_EXCHANGED_TTL = 300; // seconds; exchanged tokens are short-lived
const NO_REDIRECT_URI = 'http://127.0.0.1/no-redirect-uri-configured';
// Authentication context classes (acr): a password, or a password and the
// account's one-time code (the login form's `otp`).
const ACR_PASSWORD = 'urn:bffgate:acr:pwd';
const ACR_MFA = 'urn:bffgate:acr:mfa';
const MAX_AUTH_AGE = 24 * 60 * 60;

function fail(message) {
  console.error(`test-op: ${message}`);
  process.exit(1);
}

// ---------------------------------------------------------------------------
// Configuration

function loadConfig() {
  let raw = {};
  if (process.env.OP_CONFIG) {
    try {
      raw = JSON.parse(process.env.OP_CONFIG);
    } catch (err) {
      fail(`OP_CONFIG is not valid JSON: ${err.message}`);
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      fail('OP_CONFIG must be a JSON object');
    }
  }

  const str = (name, def) => {
    const v = raw[name] ?? def;
    if (typeof v !== 'string') fail(`OP_CONFIG.${name} must be a string`);
    return v;
  };
  const strList = (name) => {
    const v = raw[name] ?? [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || !s)) {
      fail(`OP_CONFIG.${name} must be an array of non-empty strings`);
    }
    return v;
  };
  const seconds = (name, def) => {
    const v = raw[name] ?? def;
    if (!Number.isInteger(v) || v <= 0) fail(`OP_CONFIG.${name} must be a positive integer (seconds)`);
    return v;
  };

  const port = raw.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    fail('OP_CONFIG.port must be an integer between 0 and 65535');
  }

  return {
    port,
    clientId: str('clientId', 'bffgate'),
    clientSecret: str('clientSecret', 'bffgate-secret'),
    redirectUris: strList('redirectUris'),
    postLogoutRedirectUris: strList('postLogoutRedirectUris'),
    backchannelLogoutUri: str('backchannelLogoutUri', ''),
    accessTokenTTL: seconds('accessTokenTTL', 60),
    idTokenTTL: seconds('idTokenTTL', 3600),
    refreshTokenTTL: seconds('refreshTokenTTL', 86400),
    exitOnStdinClose: raw.exitOnStdinClose === true,
    clientAuthMethod: str('clientAuthMethod', 'client_secret_basic'),
    clientJwks: raw.clientJwks ?? null,
    tls: raw.tls ?? null,
    tlsClientSanDns: str('tlsClientSanDns', ''),
    dpopBound: raw.dpopBound === true,
    dpopNonce: raw.dpopNonce === true,
    resources: strList('resources'),
    noDpop: raw.noDpop === true,
    requestObjects: raw.requestObjects === true,
  };
}

const cfg = loadConfig();

// ---------------------------------------------------------------------------
// Accounts: two fixed demo users.

const ACCOUNTS = new Map([
  ['alice', {
    password: 'alice-password',
    otp: '111111',
    claims: {
      groups: ['admin', 'staff'],
      sub: 'alice',
      name: 'Alice Example',
      given_name: 'Alice',
      family_name: 'Example',
      preferred_username: 'alice',
      email: 'alice@example.com',
      email_verified: true,
    },
  }],
  ['bob', {
    password: 'bob-password',
    otp: '222222',
    claims: {
      groups: ['staff'],
      sub: 'bob',
      name: 'Bob Example',
      given_name: 'Bob',
      family_name: 'Example',
      preferred_username: 'bob',
      email: 'bob@example.com',
      email_verified: true,
    },
  }],
]);

function sha256(s) {
  return crypto.createHash('sha256').update(String(s)).digest();
}

// checkPassword returns the account ID for a correct login/password pair.
function checkPassword(login, password) {
  const account = ACCOUNTS.get(login);
  // Compare digests in constant time (habit; this is a test OP).
  const ok = crypto.timingSafeEqual(sha256(account?.password ?? crypto.randomUUID()), sha256(password));
  return account && ok ? login : undefined;
}

// ---------------------------------------------------------------------------
// Storage: oidc-provider's default memory adapter sits on an LRU of 1000
// entries, which silently drops sessions, grants and tokens under load tests.
// This store never evicts; entries only go when they expire.

class UnboundedStore {
  #entries = new Map();

  constructor() {
    // Sweep expired entries now and then; unref so it never keeps us alive.
    setInterval(() => this.#sweep(), 60_000).unref();
  }

  #sweep() {
    const now = Date.now();
    for (const [key, entry] of this.#entries) {
      if (entry.expiry !== undefined && entry.expiry <= now) this.#entries.delete(key);
    }
  }

  get(key) {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiry !== undefined && entry.expiry <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key, value, { maxAge } = {}) {
    const expiry = typeof maxAge === 'number' && Number.isFinite(maxAge) ? Date.now() + maxAge : undefined;
    this.#entries.set(key, { value, expiry });
    return this;
  }

  delete(key) {
    return this.#entries.delete(key);
  }
}

const store = new UnboundedStore();

// ---------------------------------------------------------------------------
// HTML

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

// page renders a whole HTML document. No external resources: pages must load
// instantly and offline.
function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body{font-family:sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem}
label,input,button{display:block;width:100%;box-sizing:border-box;margin:.4rem 0}
input,button{padding:.5rem;font-size:1rem}.error{color:#b00020}
</style>
</head>
<body>
<h1>${esc(title)}</h1>
${body}
</body>
</html>
`;
}

function sendHtml(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

function sendJson(res, status, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(JSON.stringify(body));
}

function loginPage(uid, { login = '', error = '' } = {}) {
  return page('Sign in', `${error ? `<p class="error" role="alert">${esc(error)}</p>\n` : ''}\
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label for="login">Username</label>
<input id="login" type="text" name="login" value="${esc(login)}" required${login ? '' : ' autofocus'}>
<label for="password">Password</label>
<input id="password" type="password" name="password" required${login ? ' autofocus' : ''}>
<label for="otp">One-time code (optional: a two-factor login)</label>
<input id="otp" type="text" name="otp" inputmode="numeric" autocomplete="one-time-code">
<button type="submit">Sign in</button>
</form>`);
}

function consentPage(uid, clientId, details) {
  const scopes = (details.missingOIDCScope ?? []).filter((s) => s !== 'openid');
  return page('Authorize', `<p>${esc(clientId)} asks to access your account${scopes.length ? `: ${esc(scopes.join(', '))}` : ''}.</p>
<form method="post" action="/interaction/${esc(uid)}/consent">
<button type="submit" name="consent" value="yes" autofocus>Allow</button>
</form>
<form method="post" action="/interaction/${esc(uid)}/abort">
<button type="submit" name="abort" value="yes">Deny</button>
</form>`);
}

// ---------------------------------------------------------------------------
// Test-only counters served at GET /__stats.

const stats = {
  grants: {
    authorization_code: 0,
    refresh_token: 0,
    [TOKEN_EXCHANGE]: 0,
  },
  grantErrors: {},
  backchannel: 0,
};

function grantTypeOf(ctx) {
  return ctx?.oidc?.params?.grant_type ?? 'unknown';
}

// ---------------------------------------------------------------------------
// The provider

// Back-channel logout is POSTed with oidc-provider's fetch helper, which
// attaches an undici dispatcher that destroys sockets to special-use
// addresses (SSRF guard) -- including 127.0.0.1, where every test RP lives.
// For loopback targets, drop that dispatcher; everything else keeps it.
function loopbackFetch(url, options) {
  const { hostname } = new URL(url);
  if (hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]') {
    delete options.dispatcher;
  }
  return globalThis.fetch(url, options);
}

function clientMetadata() {
  const client = {
    client_id: cfg.clientId,
    client_secret: cfg.clientSecret,
    client_name: 'bffgate (test)',
    application_type: 'web',
    // oidc-provider refuses a code-flow client without redirect URIs; a test
    // that never logs in (discovery, introspection) need not invent one.
    redirect_uris: cfg.redirectUris.length ? cfg.redirectUris : [NO_REDIRECT_URI],
    post_logout_redirect_uris: cfg.postLogoutRedirectUris,
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE],
    // Confidential client. oidc-provider accepts client_secret_post too for a
    // client registered with client_secret_basic (both are "shared secret").
    token_endpoint_auth_method: cfg.clientAuthMethod,
  };
  if (cfg.clientAuthMethod !== 'client_secret_basic' && cfg.clientAuthMethod !== 'client_secret_post') {
    delete client.client_secret;
  }
  if (cfg.clientJwks) client.jwks = cfg.clientJwks;
  if (cfg.tlsClientSanDns) client.tls_client_auth_san_dns = cfg.tlsClientSanDns;
  if (cfg.tls) client.tls_client_certificate_bound_access_tokens = true;
  if (cfg.dpopBound) client.dpop_bound_access_tokens = true;
  if (cfg.requestObjects) {
    client.require_signed_request_object = true;
    client.request_object_signing_alg = 'ES256';
  }
  if (cfg.backchannelLogoutUri) {
    client.backchannel_logout_uri = cfg.backchannelLogoutUri;
    // Makes the OP put `sid` into ID tokens and logout tokens, so the RP can
    // end exactly the session that was logged out.
    client.backchannel_logout_session_required = true;
  }
  return client;
}

// loginPolicy is oidc-provider's default interaction policy plus one login
// check: an authorization request whose acr_values do not include the OP
// session's acr prompts for a login (step-up).
function loginPolicy() {
  const policy = interactionPolicy.base();
  policy.get('login').checks.add(new interactionPolicy.Check(
    'acr_values',
    'a login with one of the requested acr_values is required',
    (ctx) => {
      const { oidc } = ctx;
      const wanted = oidc.params.acr_values?.split(' ') ?? [];
      if (!wanted.length || ctx.oidc.result?.login || wanted.includes(oidc.session.acr)) {
        return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      }
      return interactionPolicy.Check.REQUEST_PROMPT;
    },
  ));
  return policy;
}

function newProvider(issuer) {
  // A fresh signing key per run (instead of oidc-provider's published dev key),
  // made as a JWK by the key generation itself. Exporting the KeyObject
  // afterwards (privateKey.export({ format: 'jwk' })) deadlocks Node.js 20
  // now and then: a garbage collection during the export destroys the
  // finished key generation job, whose destructor waits for the lock the
  // export holds on the same key (seen under gdb: ExportJWK → GC →
  // ~KeyGenJob → pthread_mutex_lock), and the OP never prints READY.
  const { privateKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { format: 'jwk' },
    privateKeyEncoding: { format: 'jwk' },
  });
  const jwk = {
    ...privateKey, kid: crypto.randomUUID(), alg: 'RS256', use: 'sig',
  };

  const configuration = {
    clients: [clientMetadata(), {
      client_id: 'introspector',
      client_secret: 'introspector-secret',
      redirect_uris: [NO_REDIRECT_URI],
      response_types: [],
      grant_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [jwk] },
    // Signs the OP's cookies (_session, _interaction, ...).
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    adapter: (model) => new MemoryAdapter(model, store),

    // The one client is confidential: a shared secret, its private key
    // (private_key_jwt), or with tls, its certificate.
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', ...(cfg.tls ? ['tls_client_auth'] : [])],
    // The code flow only.
    responseTypes: ['code'],
    // bffgate must send redirect_uri to the token endpoint, as with most OPs.
    allowOmittingSingleRegisteredRedirectUri: false,
    // PKCE on every authorization request (oidc-provider 9 knows only S256).
    pkce: { required: () => true },

    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username', 'groups'],
      email: ['email', 'email_verified'],
    },
    // Otherwise the code flow's ID token carries only sub (the rest would be
    // for userinfo); bffgate reads the user's claims from the ID token.
    conformIdTokenClaims: false,

    async findAccount(ctx, sub) {
      const account = ACCOUNTS.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        // oidc-provider filters these by the granted scopes and claims.
        async claims() {
          return { ...account.claims };
        },
      };
    },

    // oidc-provider drops offline_access from a request without
    // prompt=consent, and then issues no refresh token. bffgate's sessions
    // live on refresh tokens, so issue one whenever the client may refresh.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    // The default does not rotate for confidential clients; always rotate so
    // tests see rotation and reuse detection.
    rotateRefreshToken: () => true,
    // expiresWithSession keeps its default: without offline_access (which
    // oidc-provider keeps only with prompt=consent) tokens are bound to the
    // OP session, so ending it (RP-initiated logout) revokes the grant and
    // kills every access and refresh token of it, as most OPs do.

    ttl: {
      AccessToken: cfg.accessTokenTTL,
      AuthorizationCode: 60,
      IdToken: cfg.idTokenTTL,
      RefreshToken: cfg.refreshTokenTTL,
      Interaction: 10 * 60,
      // Session-bound tokens die with the session, and a grant's tokens die
      // with the grant: both must outlive the refresh tokens.
      Session: Math.max(cfg.refreshTokenTTL, 24 * 60 * 60) + 60,
      Grant: Math.max(cfg.refreshTokenTTL, 24 * 60 * 60) + 60,
    },

    // Our own minimal login/consent UI (see interaction() below) instead of
    // devInteractions, whose login form accepts any password.
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}`, policy: loginPolicy() },
    // acr_values are voluntary in OpenID Connect; this OP asks for a new
    // login when the current one's acr is none of them (see loginPolicy),
    // as step-up providers do.
    acrValues: [ACR_PASSWORD, ACR_MFA],

    // Browsers never call the token/introspection endpoints of a BFF's OP.
    clientBasedCORS: () => false,

    // Only for our own loopback back-channel logout targets; see above.
    fetch: loopbackFetch,

    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        // The confirmation page. oidc-provider hands us the <form> with its
        // hidden xsrf input; put the buttons inside it, so both a headless
        // browser and a plain HTTP client can submit it. logout=yes ends the
        // whole OP session (all clients: back-channel logout to each).
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = page('Sign out', `<p>Do you want to sign out from ${esc(ctx.host)}?</p>
${form.replace('</form>', `<button type="submit" name="logout" value="yes" autofocus>Yes, sign me out</button>
<button type="submit">No, stay signed in</button>
</form>`)}`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Signed out', '<p>You are signed out.</p>');
        },
      },
      backchannelLogout: { enabled: true },
      introspection: {
        enabled: true,
        // Our one confidential client may introspect any token.
        allowedPolicy: async () => true,
      },
      revocation: {
        enabled: true,
        allowedPolicy: async () => true,
      },
      userinfo: { enabled: true },
      dPoP: {
        enabled: !cfg.noDpop,
        nonceSecret: cfg.dpopNonce ? crypto.randomBytes(32) : undefined,
        requireNonce: () => cfg.dpopNonce,
      },
      requestObjects: { enabled: cfg.requestObjects },
      mTLS: {
        enabled: !!cfg.tls,
        certificateBoundAccessTokens: !!cfg.tls,
        tlsClientAuth: !!cfg.tls,
        // Node's TLS socket holds the certificate, verified against tls.ca
        // (requestCert without rejectUnauthorized: clients without one,
        // the browser, still connect).
        getCertificate: (ctx) => ctx.req.socket.getPeerX509Certificate?.(),
        certificateAuthorized: (ctx) => ctx.req.socket.authorized === true,
        certificateSubjectMatches: (ctx, property, expected) => property === 'tls_client_auth_san_dns'
          && (ctx.req.socket.getPeerX509Certificate()?.subjectAltName ?? '').split(', ').includes(`DNS:${expected}`),
      },
      resourceIndicators: {
        enabled: true,
        // Access tokens for a resource carry it as aud (seen by
        // introspection); tokens for no resource are for userinfo.
        defaultResource: () => undefined,
        useGrantedResource: () => false,
        getResourceServerInfo: (ctx, indicator) => {
          if (!cfg.resources.includes(indicator)) throw new errors.InvalidTarget();
          return { scope: 'api', audience: indicator, accessTokenFormat: 'opaque', accessTokenTTL: cfg.accessTokenTTL };
        },
      },
    },

    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', Object.entries(out)
        .map(([k, v]) => `<p><strong>${esc(k)}</strong>: ${esc(v)}</p>`).join('\n'));
    },
  };

  const provider = new Provider(issuer, configuration);

  // RFC 8693 token exchange. The provider authenticates the client and
  // checks that the client may use this grant before calling the handler.
  provider.registerGrantType(TOKEN_EXCHANGE, tokenExchange, [
    'subject_token', 'subject_token_type', 'audience', 'resource', 'scope', 'requested_token_type',
  ]);

  async function tokenExchange(ctx) {
    const { params, client } = ctx.oidc;

    if (!params.subject_token) {
      throw new errors.InvalidRequest('missing required parameter subject_token');
    }
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }
    if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }

    // RFC 8693 2.2.2: an invalid subject token is invalid_request.
    const subject = await provider.AccessToken.find(params.subject_token);
    if (!subject || !subject.isValid) {
      throw new errors.InvalidRequest('subject_token is not an active access token');
    }
    if (subject.clientId !== client.clientId) {
      throw new errors.InvalidRequest('subject_token was issued to another client');
    }
    // A revoked grant (logout) kills its tokens; double-check anyway.
    if (subject.grantId && !(await provider.Grant.find(subject.grantId))) {
      throw new errors.InvalidRequest('subject_token is not an active access token');
    }

    // The requested scope must be a subset of the subject token's scope.
    const available = subject.scopes;
    let scope = subject.scope ?? '';
    if (params.scope !== undefined) {
      const requested = [...new Set(params.scope.split(' ').filter(Boolean))];
      const extra = requested.filter((s) => !available.has(s));
      if (extra.length) {
        throw new errors.InvalidScope('requested scope exceeds the subject token\'s scope', extra.join(' '));
      }
      scope = requested.join(' ');
    }

    const at = new provider.AccessToken({
      accountId: subject.accountId,
      client,
      grantId: subject.grantId,
      gty: TOKEN_EXCHANGE,
      scope: scope || undefined,
      sid: subject.sid,
      sessionUid: subject.sessionUid,
      expiresWithSession: subject.expiresWithSession,
      expiresIn: Math.min(cfg.accessTokenTTL, MAX_EXCHANGED_TTL),
    });
    // Recorded so introspection shows it as `aud`.
    const audience = params.audience ?? params.resource;
    if (audience) at.setAudience(audience);

    ctx.oidc.entity('AccessToken', at);
    const accessToken = await at.save();

    ctx.body = {
      access_token: accessToken,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: at.expiration,
      scope: scope || undefined,
    };
  }

  // Counters and error logging. Errors carry codes and descriptions only,
  // never token values.
  provider.on('grant.success', (ctx) => {
    const gt = grantTypeOf(ctx);
    stats.grants[gt] = (stats.grants[gt] ?? 0) + 1;
  });
  provider.on('grant.error', (ctx, err) => {
    const gt = grantTypeOf(ctx);
    stats.grantErrors[gt] = (stats.grantErrors[gt] ?? 0) + 1;
    console.error(`test-op: token endpoint (${gt}): ${err.error ?? err.name}: ${err.error_description ?? err.message}${err.error_detail ? ` (${err.error_detail})` : ''}`);
  });
  provider.on('server_error', (ctx, err) => {
    if (ctx?.oidc?.route === 'token') {
      const gt = grantTypeOf(ctx);
      stats.grantErrors[gt] = (stats.grantErrors[gt] ?? 0) + 1;
    }
    console.error(`test-op: server error on ${ctx?.method} ${ctx?.path}:`, err);
  });
  provider.on('backchannel.success', () => {
    stats.backchannel += 1;
  });
  provider.on('backchannel.error', (ctx, err, client) => {
    console.error(`test-op: back-channel logout to ${client?.backchannelLogoutUri} failed: ${err.message}`);
  });
  for (const event of ['authorization.error', 'end_session.error', 'introspection.error',
    'revocation.error', 'userinfo.error', 'jwks.error', 'discovery.error']) {
    provider.on(event, (ctx, err) => {
      console.error(`test-op: ${event}: ${err.error ?? err.name}: ${err.error_description ?? err.message}${err.error_detail ? ` (${err.error_detail})` : ''}`);
    });
  }

  return provider;
}

// ---------------------------------------------------------------------------
// Interaction routes: login and consent.

const MAX_FORM_BYTES = 64 * 1024;

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw Object.assign(new Error('form too large'), { status: 413 });
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(provider, req, res, uid, action) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    // No or expired _interaction cookie: start over from the client.
    return sendHtml(res, 400, page('Sign-in expired', `<p class="error">${esc(err.error_description ?? err.message)}</p>`));
  }
  if (details.uid !== uid) {
    return sendHtml(res, 400, page('Sign-in expired', '<p class="error">This sign-in page does not belong to the current sign-in.</p>'));
  }
  const { prompt, params, session, grantId } = details;

  if (action === undefined) {
    if (req.method !== 'GET') return sendHtml(res, 405, page('Method not allowed', ''));
    if (prompt.name === 'login') return sendHtml(res, 200, loginPage(uid, { login: params.login_hint ?? '' }));
    if (prompt.name === 'consent') return sendHtml(res, 200, consentPage(uid, params.client_id, prompt.details));
    return sendHtml(res, 501, page('Not implemented', `<p>prompt ${esc(prompt.name)}</p>`));
  }

  if (req.method !== 'POST') return sendHtml(res, 405, page('Method not allowed', ''));
  const form = await readForm(req);

  if (action === 'login') {
    if (prompt.name !== 'login') {
      return sendHtml(res, 400, page('Unexpected step', '<p class="error">This sign-in does not need a password now.</p>'));
    }
    const login = form.get('login') ?? '';
    const accountId = checkPassword(login, form.get('password') ?? '');
    if (!accountId) {
      // Re-render the form with 401 so scripted clients see the failure.
      return sendHtml(res, 401, loginPage(uid, { login, error: 'Invalid username or password.' }));
    }
    // The one-time code, when given, makes it a two-factor login; a wrong
    // one fails the login. auth_age (test-only) back-dates the login by
    // that many seconds, so tests can have a stale auth_time.
    const otp = form.get('otp') ?? '';
    if (otp && otp !== ACCOUNTS.get(accountId).otp) {
      return sendHtml(res, 401, loginPage(uid, { login, error: 'Invalid one-time code.' }));
    }
    const age = Number(form.get('auth_age') ?? 0);
    if (!Number.isInteger(age) || age < 0 || age > MAX_AUTH_AGE) {
      return sendHtml(res, 400, loginPage(uid, { login, error: 'auth_age must be whole seconds up to a day.' }));
    }
    const result = { accountId, acr: otp ? ACR_MFA : ACR_PASSWORD, amr: otp ? ['pwd', 'otp'] : ['pwd'] };
    if (age) result.ts = Math.floor(Date.now() / 1000) - age;
    return provider.interactionFinished(req, res, { login: result }, { mergeWithLastSubmission: false });
  }

  if (action === 'consent') {
    if (prompt.name !== 'consent') {
      return sendHtml(res, 400, page('Unexpected step', '<p class="error">This sign-in does not need consent now.</p>'));
    }
    // Grant what was asked for, as oidc-provider's devInteractions do.
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const result = { consent: { grantId: await grant.save() } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  }

  // abort
  return provider.interactionFinished(req, res, {
    error: 'access_denied',
    error_description: 'End-User aborted interaction',
  }, { mergeWithLastSubmission: false });
}

// ---------------------------------------------------------------------------
// HTTP server

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|consent|abort))?$/;

async function main() {
  const server = cfg.tls
    ? https.createServer({
      cert: fs.readFileSync(cfg.tls.cert),
      key: fs.readFileSync(cfg.tls.key),
      ca: fs.readFileSync(cfg.tls.ca),
      requestCert: true,
      rejectUnauthorized: false,
    })
    : http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const issuer = `${cfg.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  const provider = newProvider(issuer);

  // Validate the client now, so a bad OP_CONFIG fails at start with
  // oidc-provider's message instead of on the first request.
  try {
    const client = await provider.Client.find(cfg.clientId);
    if (!client) fail(`client ${cfg.clientId} not found`);
  } catch (err) {
    fail(`invalid client configuration: ${err.error_description ?? err.message}`);
  }

  const callback = provider.callback();

  server.on('request', (req, res) => {
    let pathname;
    try {
      ({ pathname } = new URL(req.url, issuer));
    } catch {
      return sendJson(res, 400, { error: 'invalid_request', error_description: 'bad request target' });
    }
    if (pathname === '/__stats') {
      if (req.method !== 'GET') return sendJson(res, 405, { error: 'method_not_allowed' });
      return sendJson(res, 200, stats);
    }
    const m = INTERACTION.exec(pathname);
    if (m) {
      return interaction(provider, req, res, m[1], m[2]).catch((err) => {
        console.error(`test-op: interaction ${pathname}:`, err);
        if (!res.headersSent) sendHtml(res, err.status ?? 500, page('Error', `<p class="error">${esc(err.message)}</p>`));
        else res.end();
      });
    }
    return callback(req, res);
  });

  let closing = false;
  const shutdown = (signal) => {
    if (closing) return;
    closing = true;
    server.close(() => process.exit(0));
    server.closeAllConnections();
    // Never hang on shutdown.
    setTimeout(() => {
      console.error(`test-op: forced exit after ${signal}`);
      process.exit(0);
    }, 2000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (cfg.exitOnStdinClose) {
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }

  process.stdout.write(`READY ${issuer}\n`);
}

main().catch((err) => fail(err.stack ?? String(err)));
