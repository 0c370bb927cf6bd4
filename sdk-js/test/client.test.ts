import { afterEach, describe, expect, it, vi } from 'vitest';
import { BffError, BffNetworkError, BffStepUpError, createClient, joinUrl } from '../src/index.js';
import { ALICE, SESSION_OK, deferred, fakeFetch, json, pathOf } from './helpers.js';

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('configuration', () => {
  it('uses same-origin credentials and default paths for the same origin', () => {
    const client = createClient({ fetch: fakeFetch(() => json(200, {})) });
    expect(client.config.baseUrl).toBe('');
    expect(client.config.credentials).toBe('same-origin');
    expect(client.config.paths).toEqual({
      session: '/session',
      login: '/login',
      logout: '/logout',
      token: '/token',
      sessions: '/sessions',
    });
    expect(client.config.csrfHeader).toEqual({ name: 'X-CSRF', value: '1' });
    expect(client.config.tokenRefreshMargin).toBe(10);
  });

  it('uses include credentials when the BFF is on another origin', () => {
    vi.stubGlobal('location', new URL('https://app.example/page'));
    expect(createClient({ baseUrl: 'https://bff.example' }).config.credentials).toBe('include');
    expect(createClient({ baseUrl: 'https://app.example/bff' }).config.credentials).toBe('same-origin');
    expect(createClient({ baseUrl: '/bff' }).config.credentials).toBe('same-origin');
    expect(createClient({ baseUrl: 'https://bff.example', credentials: 'omit' }).config.credentials).toBe('omit');
  });

  it('treats an absolute baseUrl as cross-origin when there is no window.location', () => {
    expect(createClient({ baseUrl: 'https://bff.example' }).config.credentials).toBe('include');
  });

  it('joins baseUrl prefixes and paths', () => {
    expect(joinUrl('', '/session')).toBe('/session');
    expect(joinUrl('/bff/', '/session')).toBe('/bff/session');
    expect(joinUrl('https://bff.example/auth', 'session')).toBe('https://bff.example/auth/session');
    expect(joinUrl('https://bff.example', 'https://other.example/s')).toBe('https://other.example/s');
  });

  it('sends requests to custom paths under the base URL', async () => {
    const f = fakeFetch(() => json(200, SESSION_OK));
    const client = createClient({
      baseUrl: 'https://bff.example/auth/',
      paths: { session: '/me' },
      fetch: f,
    });
    await client.getSession();
    expect(f.requests[0]!.url).toBe('https://bff.example/auth/me?probe=1');
    expect(f.requests[0]!.credentials).toBe('include');
  });
});

describe('getSession', () => {
  it('returns the authenticated session with user, expiry and mode', async () => {
    const f = fakeFetch(() => json(200, { ...SESSION_OK, user: { ...ALICE, groups: ['admins'] }, mode: 'token-mediating' }));
    const client = createClient({ fetch: f });
    const session = await client.getSession();
    expect(session).toEqual({
      authenticated: true,
      user: { ...ALICE, groups: ['admins'] },
      expiresAt: '2026-11-23T20:00:00Z',
      mode: 'token-mediating',
    });
    expect(f.requests).toHaveLength(1);
    const req = f.requests[0]!;
    expect(req.method).toBe('GET');
    expect(req.url).toBe('/session?probe=1');
    expect(req.credentials).toBe('same-origin');
    expect(req.headers.get('X-CSRF')).toBe('1');
    expect(req.headers.get('Accept')).toBe('application/json');
  });

  it.each(['unauthenticated', 'invalid_session', 'session_expired'])(
    'resolves 401 %s to an unauthenticated session without throwing or firing session-expired',
    async (code) => {
      const f = fakeFetch(() => json(401, { authenticated: false, error: code }));
      const onSessionExpired = vi.fn();
      const client = createClient({ fetch: f, onSessionExpired });
      const listener = vi.fn();
      client.on('session-expired', listener);
      await expect(client.getSession()).resolves.toEqual({ authenticated: false, reason: code });
      expect(onSessionExpired).not.toHaveBeenCalled();
      expect(listener).not.toHaveBeenCalled();
    },
  );

  it('resolves a 401 without a body to an unauthenticated session', async () => {
    const client = createClient({ fetch: fakeFetch(() => new Response(null, { status: 401 })) });
    await expect(client.getSession()).resolves.toEqual({ authenticated: false });
  });

  it('throws BffError with code and description on 503', async () => {
    const client = createClient({
      fetch: fakeFetch(() =>
        json(503, { error: 'session_store_unavailable', error_description: 'redis: connection refused' }),
      ),
    });
    const err = await client.getSession().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BffError);
    expect(err).toBeInstanceOf(Error);
    const e = err as BffError;
    expect(e.name).toBe('BffError');
    expect(e.status).toBe(503);
    expect(e.code).toBe('session_store_unavailable');
    expect(e.description).toBe('redis: connection refused');
    expect(e.body).toEqual({ error: 'session_store_unavailable', error_description: 'redis: connection refused' });
    expect(e.message).toContain('503');
    expect(e.message).toContain('session_store_unavailable');
  });

  it('throws BffError idp_unavailable on 502', async () => {
    const client = createClient({ fetch: fakeFetch(() => json(502, { error: 'idp_unavailable' })) });
    await expect(client.getSession()).rejects.toMatchObject({ name: 'BffError', status: 502, code: 'idp_unavailable' });
  });

  it('uses code http_error for a non-JSON error page', async () => {
    const client = createClient({
      fetch: fakeFetch(() => new Response('<html>Bad gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } })),
    });
    await expect(client.getSession()).rejects.toMatchObject({ status: 502, code: 'http_error', description: undefined });
  });

  it('uses code invalid_response for a 200 that is not a session', async () => {
    const client = createClient({ fetch: fakeFetch(() => new Response('<html>SPA index</html>', { status: 200 })) });
    await expect(client.getSession()).rejects.toMatchObject({ status: 200, code: 'invalid_response' });
    const client2 = createClient({ fetch: fakeFetch(() => json(200, { authenticated: true, user: { name: 'x' } })) });
    await expect(client2.getSession()).rejects.toMatchObject({ code: 'invalid_response' });
  });

  it('wraps a network failure in BffNetworkError with the cause', async () => {
    const cause = new TypeError('Failed to fetch');
    const client = createClient({
      fetch: fakeFetch(() => {
        throw cause;
      }),
    });
    const err = await client.getSession().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BffNetworkError);
    expect(err).not.toBeInstanceOf(BffError);
    expect((err as BffNetworkError).cause).toBe(cause);
    expect((err as BffNetworkError).url).toBe('/session?probe=1');
    expect((err as Error).message).toContain('Failed to fetch');
  });

  it('lets an abort through unchanged', async () => {
    const abort = new DOMException('The operation was aborted.', 'AbortError');
    const client = createClient({
      fetch: fakeFetch(() => {
        throw abort;
      }),
    });
    await expect(client.getSession({ signal: AbortSignal.abort() })).rejects.toBe(abort);
  });
});

describe('login', () => {
  it('navigates to the login endpoint with returnTo, prompt and extra params encoded', () => {
    const navigate = vi.fn();
    const client = createClient({ navigate, fetch: fakeFetch(() => json(200, {})) });
    client.login({ returnTo: '/orders?id=1&x=a b#details', prompt: 'login', params: { login_hint: 'alice@example.com' } });
    expect(navigate).toHaveBeenCalledTimes(1);
    const url = navigate.mock.calls[0]![0] as string;
    expect(url).toBe(
      '/login?returnTo=%2Forders%3Fid%3D1%26x%3Da+b%23details&prompt=login&login_hint=alice%40example.com',
    );
    const parsed = new URL(url, 'https://app.example');
    expect(parsed.searchParams.get('returnTo')).toBe('/orders?id=1&x=a b#details');
    expect(parsed.searchParams.get('prompt')).toBe('login');
  });

  it('defaults returnTo to the current path, search and hash', () => {
    vi.stubGlobal('location', new URL('https://app.example/inbox?folder=2#m-7'));
    const navigate = vi.fn();
    createClient({ navigate }).login();
    expect(navigate).toHaveBeenCalledWith('/login?returnTo=%2Finbox%3Ffolder%3D2%23m-7');
  });

  it('omits returnTo when there is no location and none was given', () => {
    expect(createClient().loginUrl()).toBe('/login');
  });

  it('builds the URL on the BFF origin and custom path, keeping returnTo/prompt options over params', () => {
    const client = createClient({ baseUrl: 'https://bff.example/', paths: { login: '/auth/signin' } });
    expect(
      client.loginUrl({ returnTo: 'https://app.example/', prompt: 'consent', params: { prompt: 'none', returnTo: '/evil' } }),
    ).toBe('https://bff.example/auth/signin?returnTo=https%3A%2F%2Fapp.example%2F&prompt=consent');
  });

  it('uses window.location.assign by default', () => {
    const assign = vi.fn();
    vi.stubGlobal('location', { href: 'https://app.example/a', pathname: '/a', search: '', hash: '', origin: 'https://app.example', assign });
    createClient().login();
    expect(assign).toHaveBeenCalledWith('/login?returnTo=%2Fa');
  });
});

describe('getSession expiry', () => {
  it('exposes when the session idles out and when it ends', async () => {
    const times = { idleExpiresAt: '2026-11-23T20:00:00Z', absoluteExpiresAt: '2026-11-24T12:00:00Z' };
    const session = await createClient({ fetch: fakeFetch(() => json(200, { ...SESSION_OK, ...times })) }).getSession();
    expect(session).toMatchObject({ authenticated: true, expiresAt: '2026-11-23T20:00:00Z', ...times });
  });

  it('leaves out times that are not strings', async () => {
    const body = { ...SESSION_OK, idleExpiresAt: 5, absoluteExpiresAt: null };
    const session = await createClient({ fetch: fakeFetch(() => json(200, body)) }).getSession();
    expect(session).not.toHaveProperty('idleExpiresAt');
    expect(session).not.toHaveProperty('absoluteExpiresAt');
  });
});

describe('listSessions and endSession', () => {
  const LIST = {
    sessions: [
      { id: 'a1', current: true, device: 'Firefox on Linux', createdAt: '2026-11-23T08:00:00Z', lastSeenAt: '2026-11-23T09:00:00Z', endsAt: '2026-11-24T08:00:00Z' },
      { id: 'b/2', current: false, device: 'Chrome on Android', createdAt: '2026-11-22T08:00:00Z', lastSeenAt: '2026-11-22T09:00:00Z', endsAt: '2026-11-23T08:00:00Z' },
    ],
  };

  it('GETs the list with the CSRF header', async () => {
    const f = fakeFetch(() => json(200, LIST));
    const got = await createClient({ baseUrl: '/bff', fetch: f }).listSessions();
    expect(got).toEqual(LIST.sessions);
    const req = f.requests[0]!;
    expect([req.method, req.url, req.headers.get('X-CSRF'), req.credentials]).toEqual(['GET', '/bff/sessions', '1', 'same-origin']);
  });

  it('DELETEs one session by its ID, encoded, with the CSRF header', async () => {
    const f = fakeFetch(() => new Response(null, { status: 204 }));
    await createClient({ fetch: f, paths: { sessions: '/me/sessions' } }).endSession('b/2');
    const req = f.requests[0]!;
    expect([req.method, req.url, req.headers.get('X-CSRF')]).toEqual(['DELETE', '/me/sessions/b%2F2', '1']);
  });

  it('throws BffError not_found for an ID that is not one of the user\'s', async () => {
    const client = createClient({ fetch: fakeFetch(() => json(404, { error: 'not_found' })) });
    await expect(client.endSession('x')).rejects.toMatchObject({ name: 'BffError', status: 404, code: 'not_found' });
  });

  it('fires session-expired on a 401', async () => {
    const client = createClient({ fetch: fakeFetch(() => json(401, { error: 'invalid_session' })) });
    const listener = vi.fn();
    client.on('session-expired', listener);
    await expect(client.listSessions()).rejects.toBeInstanceOf(BffError);
    expect(listener).toHaveBeenCalledOnce();
  });

  it('gives an empty list for a body without sessions', async () => {
    expect(await createClient({ fetch: fakeFetch(() => json(200, {})) }).listSessions()).toEqual([]);
  });
});

describe('logout', () => {
  it('POSTs with the CSRF header and navigates to the provider logout URL', async () => {
    const logoutUrl = 'https://op.example/session/end?id_token_hint=abc&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2F';
    const f = fakeFetch(() => json(200, { logoutUrl }));
    const navigate = vi.fn();
    const client = createClient({ fetch: f, navigate });
    await client.logout();
    expect(f.requests).toHaveLength(1);
    const req = f.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/logout');
    expect(req.headers.get('X-CSRF')).toBe('1');
    expect(req.credentials).toBe('same-origin');
    expect(navigate).toHaveBeenCalledExactlyOnceWith(logoutUrl);
  });

  it('navigates to / when the provider has no end-session endpoint', async () => {
    const navigate = vi.fn();
    await createClient({ fetch: fakeFetch(() => json(200, { logoutUrl: null })), navigate }).logout();
    expect(navigate).toHaveBeenCalledExactlyOnceWith('/');
  });

  it('navigates to returnTo when given and there is no logoutUrl', async () => {
    const navigate = vi.fn();
    await createClient({ fetch: fakeFetch(() => json(200, { logoutUrl: null })), navigate }).logout({ returnTo: '/bye' });
    expect(navigate).toHaveBeenCalledExactlyOnceWith('/bye');
  });

  it('treats 401 (no session left) as already logged out', async () => {
    const navigate = vi.fn();
    await createClient({ fetch: fakeFetch(() => json(401, { error: 'unauthenticated' })), navigate }).logout();
    expect(navigate).toHaveBeenCalledExactlyOnceWith('/');
  });

  it('throws BffError and does not navigate on 403 csrf_header_missing', async () => {
    const navigate = vi.fn();
    const client = createClient({ fetch: fakeFetch(() => json(403, { error: 'csrf_header_missing' })), navigate });
    await expect(client.logout()).rejects.toMatchObject({ name: 'BffError', status: 403, code: 'csrf_header_missing' });
    expect(navigate).not.toHaveBeenCalled();
  });

  it('clears the access token cache', async () => {
    const f = fakeFetch((req) =>
      req.url === '/logout'
        ? json(200, { logoutUrl: null })
        : json(200, { access_token: `t${f.requests.length}`, token_type: 'Bearer', expires_in: 120 }),
    );
    const client = createClient({ fetch: f, navigate: () => {} });
    expect((await client.getAccessToken()).accessToken).toBe('t1');
    expect((await client.getAccessToken()).accessToken).toBe('t1');
    await client.logout();
    expect((await client.getAccessToken()).accessToken).toBe('t3');
    expect(f.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /token', 'POST /logout', 'GET /token']);
  });
});

describe('getAccessToken', () => {
  function tokenServer(expiresIn = 120) {
    let n = 0;
    return fakeFetch((req) => {
      n++;
      const u = new URL(req.url, 'https://app.example');
      return json(200, {
        access_token: `token-${n}`,
        token_type: 'Bearer',
        expires_in: expiresIn,
        scope: u.searchParams.get('scope') ?? 'openid',
      });
    });
  }

  it('calls /token with scope, resource and the CSRF header', async () => {
    const f = tokenServer();
    const client = createClient({ fetch: f, now: () => 1_000_000 });
    const token = await client.getAccessToken({ scope: 'orders.read orders.write', resource: 'https://api.example/' });
    expect(token).toEqual({
      accessToken: 'token-1',
      tokenType: 'Bearer',
      expiresIn: 120,
      expiresAt: 1_000_000 + 120_000,
      scope: 'orders.read orders.write',
    });
    const req = f.requests[0]!;
    expect(req.method).toBe('GET');
    expect(pathOf(req.url)).toBe('/token?scope=orders.read+orders.write&resource=https%3A%2F%2Fapi.example%2F');
    expect(new URL(req.url, 'https://app.example').searchParams.get('scope')).toBe('orders.read orders.write');
    expect(req.headers.get('X-CSRF')).toBe('1');
    expect(req.credentials).toBe('same-origin');
  });

  it('caches a token per scope and resource', async () => {
    const f = tokenServer();
    const client = createClient({ fetch: f });
    const a1 = await client.getAccessToken({ scope: 'a' });
    const a2 = await client.getAccessToken({ scope: 'a' });
    const b = await client.getAccessToken({ scope: 'b' });
    const aR = await client.getAccessToken({ scope: 'a', resource: 'https://r.example' });
    const none = await client.getAccessToken();
    expect(a1.accessToken).toBe('token-1');
    expect(a2.accessToken).toBe('token-1');
    expect(b.accessToken).toBe('token-2');
    expect(aR.accessToken).toBe('token-3');
    expect(none.accessToken).toBe('token-4');
    expect(f.requests).toHaveLength(4);
  });

  it('makes one request for 10 concurrent callers (single-flight)', async () => {
    const gate = deferred<Response>();
    const f = fakeFetch(() => gate.promise);
    const client = createClient({ fetch: f });
    const calls = Array.from({ length: 10 }, () => client.getAccessToken({ scope: 'api' }));
    await Promise.resolve();
    expect(f.requests).toHaveLength(1);
    gate.resolve(json(200, { access_token: 'shared', token_type: 'Bearer', expires_in: 60 }));
    const tokens = await Promise.all(calls);
    expect(tokens.map((t) => t.accessToken)).toEqual(Array(10).fill('shared'));
    expect(f.requests).toHaveLength(1);
    // and the next caller is served from the cache
    await client.getAccessToken({ scope: 'api' });
    expect(f.requests).toHaveLength(1);
  });

  it('drops a cached token tokenRefreshMargin seconds before it expires (injected clock)', async () => {
    let clock = 0;
    const f = tokenServer(120);
    const client = createClient({ fetch: f, now: () => clock });
    expect((await client.getAccessToken()).accessToken).toBe('token-1');
    clock = 109_999;
    const cached = await client.getAccessToken();
    expect(cached.accessToken).toBe('token-1');
    expect(cached.expiresIn).toBe(10); // seconds left, not the original 120
    expect(f.requests).toHaveLength(1);
    clock = 110_000; // 120 s - 10 s margin
    expect((await client.getAccessToken()).accessToken).toBe('token-2');
    expect(f.requests).toHaveLength(2);
  });

  it('honours a custom tokenRefreshMargin (fake timers drive Date.now)', async () => {
    vi.useFakeTimers();
    try {
      vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
      const f = tokenServer(60);
      const client = createClient({ fetch: f, tokenRefreshMargin: 30 });
      await client.getAccessToken();
      vi.advanceTimersByTime(29_000);
      await client.getAccessToken();
      expect(f.requests).toHaveLength(1);
      vi.advanceTimersByTime(1_000);
      await client.getAccessToken();
      expect(f.requests).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not cache a token that lives shorter than the margin', async () => {
    const f = tokenServer(5);
    const client = createClient({ fetch: f });
    await client.getAccessToken();
    await client.getAccessToken();
    expect(f.requests).toHaveLength(2);
  });

  it('does not cache failures: the next call asks again', async () => {
    let n = 0;
    const f = fakeFetch(() => (++n === 1 ? json(503, { error: 'idp_unavailable' }) : json(200, { access_token: 'ok', expires_in: 60 })));
    const client = createClient({ fetch: f });
    await expect(client.getAccessToken()).rejects.toMatchObject({ status: 503, code: 'idp_unavailable' });
    await expect(client.getAccessToken()).resolves.toMatchObject({ accessToken: 'ok', tokenType: 'Bearer' });
    expect(f.requests).toHaveLength(2);
  });

  it('on 401 fires session-expired once, calls onSessionExpired and throws BffError 401 without retrying', async () => {
    const f = fakeFetch(() => json(401, { error: 'session_expired' }));
    const onSessionExpired = vi.fn();
    const client = createClient({ fetch: f, onSessionExpired });
    const listener = vi.fn();
    client.on('session-expired', listener);
    const err = await client.getAccessToken().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BffError);
    expect(err).toMatchObject({ status: 401, code: 'session_expired' });
    expect(f.requests).toHaveLength(1);
    expect(onSessionExpired).toHaveBeenCalledExactlyOnceWith(err);
    expect(listener).toHaveBeenCalledExactlyOnceWith(err);
  });

  it('on 404 (plain bff mode) throws not_found explaining that token-mediating mode is off', async () => {
    const f = fakeFetch(() => json(404, { error: 'not_found' }));
    const listener = vi.fn();
    const client = createClient({ fetch: f });
    client.on('session-expired', listener);
    const err = (await client.getAccessToken().catch((e: unknown) => e)) as BffError;
    expect(err).toBeInstanceOf(BffError);
    expect(err.status).toBe(404);
    expect(err.code).toBe('not_found');
    expect(err.message).toMatch(/token-mediating mode is off/);
    expect(listener).not.toHaveBeenCalled();
  });

  it('reports 403 csrf_header_missing as BffError', async () => {
    const client = createClient({ fetch: fakeFetch(() => json(403, { error: 'csrf_header_missing' })) });
    await expect(client.getAccessToken()).rejects.toMatchObject({ status: 403, code: 'csrf_header_missing' });
  });

  it('rejects a 200 without access_token as invalid_response', async () => {
    const client = createClient({ fetch: fakeFetch(() => json(200, { token_type: 'Bearer' })) });
    await expect(client.getAccessToken()).rejects.toMatchObject({ code: 'invalid_response' });
  });

  it('does not store a token whose request was in flight when the cache was cleared', async () => {
    const gate = deferred<Response>();
    let n = 0;
    const f = fakeFetch(() => (++n === 1 ? gate.promise : json(200, { access_token: 'fresh', expires_in: 60 })));
    const client = createClient({ fetch: f });
    const old = client.getAccessToken();
    client.clearTokenCache();
    gate.resolve(json(200, { access_token: 'stale', expires_in: 60 }));
    expect((await old).accessToken).toBe('stale');
    expect((await client.getAccessToken()).accessToken).toBe('fresh');
    expect(f.requests).toHaveLength(2);
  });
});

describe('fetch wrapper', () => {
  it('adds the CSRF header and credentials to every request', async () => {
    const f = fakeFetch(() => json(200, { ok: true }));
    const client = createClient({ fetch: f });
    await client.fetch('/api/a');
    await client.fetch('/api/b', { method: 'POST', body: '{}' });
    await client.fetch(new URL('https://app.example/api/c'));
    expect(f.requests).toHaveLength(3);
    for (const req of f.requests) {
      expect(req.headers.get('X-CSRF')).toBe('1');
      expect(req.credentials).toBe('same-origin');
    }
    expect(f.requests[1]!.method).toBe('POST');
    expect(f.requests[1]!.init.body).toBe('{}');
  });

  it("merges the caller's headers and never overwrites Authorization", async () => {
    const f = fakeFetch(() => json(200, {}));
    const client = createClient({ fetch: f });
    await client.fetch('/api/x', { headers: { Authorization: 'Bearer mine', 'Content-Type': 'application/json' } });
    await client.fetch('/api/y', { headers: [['X-Trace', 't1']] });
    await client.fetch('/api/z', { headers: new Headers({ authorization: 'Basic abc' }) });
    const [x, y, z] = f.requests;
    expect(x!.headers.get('Authorization')).toBe('Bearer mine');
    expect(x!.headers.get('Content-Type')).toBe('application/json');
    expect(x!.headers.get('X-CSRF')).toBe('1');
    expect(y!.headers.get('X-Trace')).toBe('t1');
    expect(y!.headers.get('X-CSRF')).toBe('1');
    expect(z!.headers.get('Authorization')).toBe('Basic abc');
    expect(z!.headers.get('X-CSRF')).toBe('1');
  });

  it('keeps the headers of a Request object', async () => {
    const f = fakeFetch(() => json(200, {}));
    const client = createClient({ fetch: f });
    await client.fetch(new Request('https://app.example/api/r', { headers: { Authorization: 'Bearer req' } }), {
      headers: { 'X-Extra': '1' },
    });
    const req = f.requests[0]!;
    expect(req.headers.get('Authorization')).toBe('Bearer req');
    expect(req.headers.get('X-Extra')).toBe('1');
    expect(req.headers.get('X-CSRF')).toBe('1');
  });

  it('uses a configured CSRF header name and value everywhere', async () => {
    const f = fakeFetch((req) =>
      req.url === '/logout' ? json(200, { logoutUrl: null }) : req.url === '/token' ? json(200, { access_token: 't', expires_in: 60 }) : json(200, SESSION_OK),
    );
    const client = createClient({ fetch: f, navigate: () => {}, csrfHeader: { name: 'X-Requested-With', value: 'bffgate' } });
    await client.getSession();
    await client.fetch('/api/x');
    await client.getAccessToken();
    await client.logout();
    expect(f.requests).toHaveLength(4);
    for (const req of f.requests) {
      expect(req.headers.get('X-Requested-With')).toBe('bffgate');
      expect(req.headers.has('X-CSRF')).toBe(false);
    }
  });

  it('resolves root-relative paths against baseUrl and uses include credentials cross-origin', async () => {
    const f = fakeFetch(() => json(200, {}));
    const client = createClient({ fetch: f, baseUrl: 'https://bff.example' });
    await client.fetch('/api/orders');
    await client.fetch('https://elsewhere.example/x');
    await client.fetch('/api/orders', { credentials: 'omit' });
    expect(f.requests.map((r) => r.url)).toEqual([
      'https://bff.example/api/orders',
      'https://elsewhere.example/x',
      'https://bff.example/api/orders',
    ]);
    expect(f.requests.map((r) => r.credentials)).toEqual(['include', 'include', 'omit']);
  });

  it('on a 401 session error fires session-expired, returns the response and does not retry', async () => {
    const f = fakeFetch(() => json(401, { error: 'session_expired' }));
    const onSessionExpired = vi.fn();
    const client = createClient({ fetch: f, onSessionExpired });
    const listener = vi.fn();
    const off = client.on('session-expired', listener);
    const res = await client.fetch('/api/whoami');
    expect(res.status).toBe(401);
    await expect(res.json()).resolves.toEqual({ error: 'session_expired' }); // body still readable by the caller
    expect(f.requests).toHaveLength(1);
    expect(listener).toHaveBeenCalledTimes(1);
    const err = listener.mock.calls[0]![0] as BffError;
    expect(err).toBeInstanceOf(BffError);
    expect(err.status).toBe(401);
    expect(err.code).toBe('session_expired');
    expect(onSessionExpired).toHaveBeenCalledExactlyOnceWith(err);

    off();
    await client.fetch('/api/whoami');
    expect(listener).toHaveBeenCalledTimes(1);
    expect(onSessionExpired).toHaveBeenCalledTimes(2);
  });

  it('drops cached tokens when the session expires', async () => {
    let apiStatus = 200;
    const f = fakeFetch((req) =>
      req.url.startsWith('/token')
        ? json(200, { access_token: `t${f.requests.length}`, expires_in: 300 })
        : json(apiStatus, apiStatus === 401 ? { error: 'invalid_session' } : {}),
    );
    const client = createClient({ fetch: f });
    expect((await client.getAccessToken()).accessToken).toBe('t1');
    apiStatus = 401;
    await client.fetch('/api/x');
    expect((await client.getAccessToken()).accessToken).toBe('t3');
  });

  it('does not treat other 401s or 403s as session expiry', async () => {
    const answers = [
      json(401, { error: 'invalid_token' }), // an upstream API's own answer
      new Response('nope', { status: 401 }),
      json(403, { error: 'csrf_header_missing' }),
      json(403, { error: 'origin_not_allowed' }),
    ];
    const f = fakeFetch(() => answers.shift()!);
    const listener = vi.fn();
    const client = createClient({ fetch: f });
    client.on('session-expired', listener);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await client.fetch('/api/x')).status);
    expect(statuses).toEqual([401, 401, 403, 403]);
    expect(listener).not.toHaveBeenCalled();
  });

  it('keeps notifying other listeners when one throws', async () => {
    const reportError = vi.fn();
    vi.stubGlobal('reportError', reportError);
    const client = createClient({ fetch: fakeFetch(() => json(401, { error: 'unauthenticated' })) });
    const boom = new Error('listener bug');
    client.on('session-expired', () => {
      throw boom;
    });
    const second = vi.fn();
    client.on('session-expired', second);
    await client.fetch('/api/x');
    expect(second).toHaveBeenCalledTimes(1);
    expect(reportError).toHaveBeenCalledWith(boom);
  });

  it('wraps network errors in BffNetworkError', async () => {
    const client = createClient({
      fetch: fakeFetch(() => {
        throw new TypeError('NetworkError when attempting to fetch resource.');
      }),
    });
    const err = await client.fetch('/api/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BffNetworkError);
    expect((err as BffNetworkError).url).toBe('/api/x');
  });

  it('uses the global fetch when none is injected', async () => {
    const f = fakeFetch(() => json(200, SESSION_OK));
    vi.stubGlobal('fetch', f);
    const client = createClient();
    await expect(client.getSession()).resolves.toMatchObject({ authenticated: true });
    await client.fetch('/api/x');
    expect(f.requests.map((r) => r.url)).toEqual(['/session?probe=1', '/api/x']);
  });

  it('returns bound functions that survive destructuring', async () => {
    const f = fakeFetch(() => json(200, SESSION_OK));
    const { getSession, fetch: bffFetch } = createClient({ fetch: f });
    await getSession();
    await bffFetch('/api/x');
    expect(f.requests).toHaveLength(2);
  });
});

describe('quiet signed-out probe, step-up and events', () => {
  it('asks /session?probe=1 and treats 200 {authenticated:false} like a 401, dropping cached tokens', async () => {
    let tokenCalls = 0;
    let signedIn = true;
    const f = fakeFetch((req) => {
      if (req.url.startsWith('/token')) {
        tokenCalls++;
        return json(200, { access_token: 'at', token_type: 'Bearer', expires_in: 300 });
      }
      return signedIn ? json(200, SESSION_OK) : json(200, { authenticated: false, error: 'unauthenticated' });
    });
    const client = createClient({ fetch: f });
    await client.getAccessToken();
    signedIn = false;
    await expect(client.getSession()).resolves.toEqual({ authenticated: false, reason: 'unauthenticated' });
    expect(f.requests.at(-1)!.url).toBe('/session?probe=1');
    await client.getAccessToken();
    expect(tokenCalls).toBe(2);
  });

  it('login({ acr_values }) asks the BFF for a step-up login', () => {
    const navigate = vi.fn();
    const client = createClient({ navigate });
    client.login({ returnTo: '/pay', acr_values: 'urn:example:mfa', params: { acr_values: 'ignored', ui_locales: 'de' } });
    expect(navigate).toHaveBeenCalledWith('/login?returnTo=%2Fpay&acr_values=urn%3Aexample%3Amfa&ui_locales=de');
  });

  it('login({ acr_values, max_age }) passes both, and drops a max_age that is not whole seconds', () => {
    const navigate = vi.fn();
    const client = createClient({ navigate });
    client.login({ returnTo: '/pay', acr_values: 'urn:mfa', max_age: 0 });
    expect(navigate).toHaveBeenLastCalledWith('/login?returnTo=%2Fpay&acr_values=urn%3Amfa&max_age=0');
    client.login({ returnTo: '/pay', max_age: 1.5 });
    expect(navigate).toHaveBeenLastCalledWith('/login?returnTo=%2Fpay');
  });

  it('turns a 403 insufficient_user_authentication into a step-up-required BffStepUpError', async () => {
    const f = fakeFetch(() =>
      json(403, { error: 'insufficient_user_authentication', error_description: 'MFA needed', acr_values: 'urn:mfa', max_age: 300 }),
    );
    const client = createClient({ fetch: f });
    const stepUp = vi.fn();
    const expired = vi.fn();
    const unauthorized = vi.fn();
    client.on('step-up-required', stepUp);
    client.on('session-expired', expired);
    client.on('unauthorized', unauthorized);
    const res = await client.fetch('/api/pay', { method: 'POST' });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: 'insufficient_user_authentication' }); // body still readable
    expect(stepUp).toHaveBeenCalledTimes(1);
    const err = stepUp.mock.calls[0]![0] as BffStepUpError;
    expect(err).toBeInstanceOf(BffStepUpError);
    expect(err).toBeInstanceOf(BffError);
    expect(err).toMatchObject({ status: 403, code: 'insufficient_user_authentication', description: 'MFA needed', acrValues: 'urn:mfa', maxAge: 300 });
    expect(expired).not.toHaveBeenCalled();
    expect(unauthorized).not.toHaveBeenCalled();
  });

  it('reads a step-up from WWW-Authenticate (RFC 9470) on a 401 without JSON', async () => {
    const f = fakeFetch(
      () =>
        new Response('no', {
          status: 401,
          headers: { 'WWW-Authenticate': 'Bearer error="insufficient_user_authentication", error_description="A \\"strong\\" login", acr_values="urn:a urn:b", max_age=60' },
        }),
    );
    const client = createClient({ fetch: f });
    const stepUp = vi.fn();
    const expired = vi.fn();
    client.on('step-up-required', stepUp);
    client.on('session-expired', expired);
    await client.fetch('/api/pay');
    expect(stepUp.mock.calls[0]![0]).toMatchObject({ status: 401, acrValues: 'urn:a urn:b', maxAge: 60, description: 'A "strong" login' });
    expect(expired).not.toHaveBeenCalled();
  });

  it('does not take other 403s or WWW-Authenticate errors for a step-up', async () => {
    const answers = [
      json(403, { error: 'csrf_header_missing' }),
      new Response(null, { status: 401, headers: { 'WWW-Authenticate': 'Bearer error="invalid_token", error_description="insufficient_user_authentication"' } }),
    ];
    const client = createClient({ fetch: fakeFetch(() => answers.shift()!) });
    const stepUp = vi.fn();
    client.on('step-up-required', stepUp);
    await client.fetch('/api/a');
    await client.fetch('/api/b');
    expect(stepUp).not.toHaveBeenCalled();
  });

  it('emits unauthorized for every 401 of fetch, and nothing for a 200', async () => {
    const answers = [json(200, {}), json(401, { error: 'invalid_token' }), json(401, { error: 'session_expired' })];
    const client = createClient({ fetch: fakeFetch(() => answers.shift()!) });
    const unauthorized = vi.fn();
    const expired = vi.fn();
    client.on('unauthorized', unauthorized);
    client.on('session-expired', expired);
    await client.fetch('/api/a');
    expect(unauthorized).not.toHaveBeenCalled();
    await client.fetch('/api/b');
    expect(unauthorized).toHaveBeenCalledTimes(1);
    expect(unauthorized.mock.calls[0]![0]).toMatchObject({ status: 401, code: 'invalid_token' });
    expect(expired).not.toHaveBeenCalled();
    await client.fetch('/api/c');
    expect(unauthorized).toHaveBeenCalledTimes(2);
    expect(expired).toHaveBeenCalledTimes(1);
  });

  it('emits logout after the BFF ended the session and before navigating, not when it failed', async () => {
    const order: string[] = [];
    const answers = [json(200, { logoutUrl: null }), json(401, { error: 'unauthenticated' }), json(503, { error: 'session_store_unavailable' })];
    const client = createClient({ fetch: fakeFetch(() => answers.shift()!), navigate: (u) => order.push(`navigate ${u}`) });
    client.on('logout', () => order.push('logout'));
    await client.logout();
    await client.logout();
    await expect(client.logout()).rejects.toBeInstanceOf(BffError);
    expect(order).toEqual(['logout', 'navigate /', 'logout', 'navigate /']);
  });
});
