import { BffError, BffNetworkError, BffStepUpError, isAbortError } from './errors.js';
import type {
  AccessToken,
  AccessTokenOptions,
  BffClient,
  BffClientOptions,
  BffEvents,
  BffPaths,
  CsrfHeader,
  LoginOptions,
  LogoutOptions,
  Session,
  SessionInfo,
  User,
} from './types.js';

export const DEFAULT_PATHS: Readonly<Required<BffPaths>> = Object.freeze({
  session: '/session',
  login: '/login',
  logout: '/logout',
  token: '/token',
  sessions: '/sessions',
});

export const DEFAULT_CSRF_HEADER: Readonly<CsrfHeader> = Object.freeze({ name: 'X-CSRF', value: '1' });

export const DEFAULT_TOKEN_REFRESH_MARGIN = 10;

/** The `error` codes with which the BFF says "there is no (valid) session". */
export const SESSION_ERROR_CODES: ReadonlySet<string> = new Set([
  'unauthenticated',
  'invalid_session',
  'session_expired',
]);

const ABSOLUTE_URL = /^[a-z][a-z\d+\-.]*:/i;

function isAbsoluteUrl(url: string): boolean {
  return ABSOLUTE_URL.test(url) || url.startsWith('//');
}

/** Joins the base URL (origin and/or prefix) and an endpoint path. Absolute paths are kept as they are. */
export function joinUrl(baseUrl: string, path: string): string {
  if (isAbsoluteUrl(path)) return path;
  const base = baseUrl.replace(/\/+$/, '');
  const rel = path.startsWith('/') ? path : `/${path}`;
  return `${base}${rel}`;
}

function withQuery(url: string, query: URLSearchParams): string {
  const qs = query.toString();
  if (!qs) return url;
  const hash = url.indexOf('#');
  const [head, tail] = hash >= 0 ? [url.slice(0, hash), url.slice(hash)] : [url, ''];
  return `${head}${head.includes('?') ? '&' : '?'}${qs}${tail}`;
}

function currentLocation(): Location | undefined {
  const loc = (globalThis as { location?: Location }).location;
  return loc && typeof loc.href === 'string' ? loc : undefined;
}

function defaultCredentials(baseUrl: string): RequestCredentials {
  if (!isAbsoluteUrl(baseUrl)) return 'same-origin';
  const here = currentLocation();
  if (!here) return 'include';
  try {
    return new URL(baseUrl, here.href).origin === here.origin ? 'same-origin' : 'include';
  } catch {
    return 'include';
  }
}

function defaultNavigate(url: string): void {
  const loc = currentLocation();
  if (!loc) throw new Error('@bffgate/client: no window.location here; pass options.navigate to createClient');
  loc.assign(url);
}

function reportListenerError(err: unknown): void {
  const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
  if (typeof report === 'function') report(err);
  else console.error(err);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a body as JSON; `undefined` when it is empty or not JSON. */
async function readJson(res: Response): Promise<unknown> {
  let text: string;
  try {
    text = await res.text();
  } catch {
    return undefined;
  }
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function errorFromBody(status: number, body: unknown, message?: string, code?: string): BffError {
  code ??= isRecord(body) && typeof body.error === 'string' && body.error ? body.error : 'http_error';
  const description =
    isRecord(body) && typeof body.error_description === 'string' ? body.error_description : undefined;
  return new BffError({ status, code, description, body, message });
}

/** A 2xx answer of `url` whose body is not what it should be. */
function invalidResponse(status: number, url: string, what: string, body: unknown): BffError {
  return new BffError({ status, code: 'invalid_response', description: `${url} ${what}`, body });
}

const STEP_UP = 'insufficient_user_authentication';

/** `name="value"` or `name=token` from a `WWW-Authenticate` header. */
function authParam(header: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|[\\s,])${name}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^\\s,]+))`, 'i').exec(header);
  return m ? (m[1]?.replace(/\\(.)/g, '$1') ?? m[2]) : undefined;
}

/** A step-up answer (RFC 9470): the JSON `error` or the `WWW-Authenticate` `error` is insufficient_user_authentication. */
function stepUpError(res: Response, body: unknown): BffStepUpError | null {
  const www = res.headers.get('www-authenticate') ?? '';
  const fromBody = isRecord(body) && body.error === STEP_UP;
  if (!fromBody && authParam(www, 'error') !== STEP_UP) return null;
  const field = (k: string): string | undefined => {
    const v = isRecord(body) ? body[k] : undefined;
    return typeof v === 'string' || typeof v === 'number' ? String(v) : authParam(www, k);
  };
  const maxAge = Number(field('max_age'));
  return new BffStepUpError({
    status: res.status,
    body,
    description: field('error_description'),
    acrValues: field('acr_values'),
    maxAge: Number.isFinite(maxAge) && field('max_age') !== undefined ? maxAge : undefined,
  });
}

interface CachedToken {
  token: Omit<AccessToken, 'expiresIn'>;
  /** Epoch ms after which the cached entry is no longer handed out. */
  dropAt: number;
}

/**
 * Creates a client for a bffgate BFF.
 *
 * ```ts
 * const bff = createClient();                       // same origin, default paths
 * const session = await bff.getSession();
 * if (!session.authenticated) bff.login();
 * const res = await bff.fetch('/api/orders');      // cookie + X-CSRF: 1
 * ```
 */
export function createClient(options: BffClientOptions = {}): BffClient {
  const baseUrl = options.baseUrl ?? '';
  const paths: Required<BffPaths> = { ...DEFAULT_PATHS };
  for (const key of Object.keys(DEFAULT_PATHS) as (keyof BffPaths)[]) {
    const p = options.paths?.[key];
    if (p) paths[key] = p;
  }
  const csrfHeader: CsrfHeader = { ...(options.csrfHeader ?? DEFAULT_CSRF_HEADER) };
  if (!csrfHeader.name) throw new TypeError('@bffgate/client: csrfHeader.name must not be empty');
  const credentials = options.credentials ?? defaultCredentials(baseUrl);
  const tokenRefreshMargin = options.tokenRefreshMargin ?? DEFAULT_TOKEN_REFRESH_MARGIN;
  const now = options.now ?? (() => Date.now());
  const navigate = options.navigate ?? defaultNavigate;
  const doFetch: typeof fetch =
    options.fetch ?? ((input, init) => globalThis.fetch(input, init));

  const listeners: { [E in keyof BffEvents]: Set<(payload: BffEvents[E]) => void> } = {
    'session-expired': new Set(),
    unauthorized: new Set(),
    'step-up-required': new Set(),
    logout: new Set(),
  };

  const tokenCache = new Map<string, CachedToken>();
  const tokenInflight = new Map<string, Promise<AccessToken>>();
  /** Bumped by clearTokenCache so that a request already in flight does not refill the cache. */
  let tokenGeneration = 0;

  function emit<E extends keyof BffEvents>(event: E, payload: BffEvents[E]): void {
    if (event === 'session-expired' && options.onSessionExpired) {
      try {
        options.onSessionExpired(payload as BffError);
      } catch (err) {
        reportListenerError(err);
      }
    }
    for (const listener of [...listeners[event]]) {
      try {
        listener(payload);
      } catch (err) {
        reportListenerError(err);
      }
    }
  }

  function sessionExpired(err: BffError): void {
    clearTokenCache();
    emit('session-expired', err);
  }

  function bffHeaders(extra?: Record<string, string>): Headers {
    const h = new Headers(extra);
    h.set(csrfHeader.name, csrfHeader.value);
    return h;
  }

  async function send(target: RequestInfo | URL, init: RequestInit, url: string): Promise<Response> {
    try {
      return await doFetch(target, init);
    } catch (err) {
      if (isAbortError(err)) throw err;
      throw new BffNetworkError(url, err);
    }
  }

  /** A request to one of the BFF's own endpoints; resolves to the response and its JSON body. */
  async function call(url: string, method: string, signal?: AbortSignal): Promise<[Response, unknown]> {
    const init: RequestInit = {
      method,
      headers: bffHeaders({ Accept: 'application/json' }),
      credentials,
      cache: 'no-store',
    };
    if (signal) init.signal = signal;
    const res = await send(url, init, url);
    return [res, await readJson(res)];
  }

  function clearTokenCache(): void {
    tokenGeneration++;
    tokenCache.clear();
    tokenInflight.clear();
  }

  async function getSession(opts: { signal?: AbortSignal } = {}): Promise<Session> {
    // probe=1: a signed-out visitor gets 200 {authenticated:false}, not a 401 the console shows in red.
    const url = withQuery(joinUrl(baseUrl, paths.session), new URLSearchParams({ probe: '1' }));
    const [res, body] = await call(url, 'GET', opts.signal);
    const invalid = (what: string) => invalidResponse(res.status, url, what, body);
    if (res.status !== 401) {
      if (!res.ok) throw errorFromBody(res.status, body);
      if (!isRecord(body) || typeof body.authenticated !== 'boolean') throw invalid('did not answer with a session JSON object');
    }
    if (res.status === 401 || !(body as { authenticated: boolean }).authenticated) {
      // No session is a normal state, not an error. Tokens from an old session are useless now.
      clearTokenCache();
      const reason = isRecord(body) && typeof body.error === 'string' ? body.error : undefined;
      return reason ? { authenticated: false, reason } : { authenticated: false };
    }
    if (!isRecord(body) || !isRecord(body.user) || typeof body.user.sub !== 'string') {
      throw invalid('answered authenticated:true without a user.sub');
    }
    const session: Session = { authenticated: true, user: body.user as User };
    for (const k of ['expiresAt', 'idleExpiresAt', 'absoluteExpiresAt', 'mode'] as const) {
      if (typeof body[k] === 'string') session[k] = body[k] as string;
    }
    return session;
  }

  function loginUrl(opts: LoginOptions = {}): string {
    const query = new URLSearchParams();
    let returnTo = opts.returnTo;
    if (returnTo === undefined) {
      const loc = currentLocation();
      if (loc) returnTo = `${loc.pathname}${loc.search}${loc.hash}`;
    }
    if (returnTo) query.set('returnTo', returnTo);
    if (opts.prompt) query.set('prompt', opts.prompt);
    if (opts.acr_values) query.set('acr_values', opts.acr_values);
    if (opts.max_age !== undefined && Number.isInteger(opts.max_age) && opts.max_age >= 0) query.set('max_age', String(opts.max_age));
    for (const [k, v] of Object.entries(opts.params ?? {})) {
      if (query.has(k)) continue; // the dedicated options win
      query.set(k, v);
    }
    return withQuery(joinUrl(baseUrl, paths.login), query);
  }

  function login(opts: LoginOptions = {}): void {
    navigate(loginUrl(opts));
  }

  async function logout(opts: LogoutOptions = {}): Promise<void> {
    const url = joinUrl(baseUrl, paths.logout);
    const fallback = opts.returnTo ?? '/';
    clearTokenCache();
    const [res, body] = await call(url, 'POST');
    clearTokenCache();
    if (res.status === 401) {
      // There was no session left to end: the user is logged out already.
      emit('logout', undefined);
      navigate(fallback);
      return;
    }
    if (!res.ok) throw errorFromBody(res.status, body);
    const logoutUrl = isRecord(body) && typeof body.logoutUrl === 'string' && body.logoutUrl ? body.logoutUrl : null;
    emit('logout', undefined);
    navigate(logoutUrl ?? fallback);
  }

  /** The user's list of sessions (no id), or the end of one (id), through fetch(), which reports a 401. */
  async function sessions(id?: string): Promise<unknown> {
    const list = id === undefined;
    const res = await bffFetch(paths.sessions + (list ? '' : `/${encodeURIComponent(id)}`), {
      method: list ? 'GET' : 'DELETE',
      cache: 'no-store',
    });
    const body = (await readJson(res)) as { sessions?: SessionInfo[] } | undefined;
    if (!res.ok) throw errorFromBody(res.status, body);
    return list ? (body?.sessions ?? []) : undefined;
  }

  function tokenView(entry: Omit<AccessToken, 'expiresIn'>): AccessToken {
    const expiresIn = Math.max(0, Math.floor((entry.expiresAt - now()) / 1000));
    return { ...entry, expiresIn };
  }

  async function requestToken(key: string, opts: AccessTokenOptions, generation: number): Promise<AccessToken> {
    const query = new URLSearchParams();
    if (opts.scope) query.set('scope', opts.scope);
    if (opts.resource) query.set('resource', opts.resource);
    const url = withQuery(joinUrl(baseUrl, paths.token), query);
    const [res, body] = await call(url, 'GET');
    if (res.status === 401) {
      const err = errorFromBody(401, body);
      sessionExpired(err);
      throw err;
    }
    if (res.status === 404) {
      const message = `The BFF answered 404 on ${url}: token-mediating mode is off. Call your APIs with client.fetch(), or turn the mode on at the BFF.`;
      throw errorFromBody(404, body, message, 'not_found');
    }
    if (!res.ok) throw errorFromBody(res.status, body);
    if (!isRecord(body) || typeof body.access_token !== 'string' || !body.access_token) {
      throw invalidResponse(res.status, url, 'did not answer with an access_token', body);
    }
    const rawExpires = typeof body.expires_in === 'string' ? Number(body.expires_in) : body.expires_in;
    const expiresInSec = typeof rawExpires === 'number' && Number.isFinite(rawExpires) ? Math.max(0, rawExpires) : 0;
    const issuedAt = now();
    const entry: Omit<AccessToken, 'expiresIn'> = {
      accessToken: body.access_token,
      tokenType: typeof body.token_type === 'string' ? body.token_type : 'Bearer',
      expiresAt: issuedAt + expiresInSec * 1000,
    };
    if (typeof body.scope === 'string') entry.scope = body.scope;
    const dropAt = issuedAt + (expiresInSec - tokenRefreshMargin) * 1000;
    if (generation === tokenGeneration && dropAt > issuedAt) tokenCache.set(key, { token: entry, dropAt });
    return tokenView(entry);
  }

  function getAccessToken(opts: AccessTokenOptions = {}): Promise<AccessToken> {
    const key = `${opts.scope ?? ''}\u0000${opts.resource ?? ''}`;
    const cached = tokenCache.get(key);
    if (cached) {
      if (now() < cached.dropAt) return Promise.resolve(tokenView(cached.token));
      tokenCache.delete(key);
    }
    const inflight = tokenInflight.get(key);
    if (inflight) return inflight;
    const p = requestToken(key, opts, tokenGeneration).finally(() => {
      if (tokenInflight.get(key) === p) tokenInflight.delete(key);
    });
    tokenInflight.set(key, p);
    return p;
  }

  async function bffFetch(input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
    const isRequest = typeof Request !== 'undefined' && input instanceof Request;
    const target: RequestInfo | URL =
      typeof input === 'string' && input.startsWith('/') && !input.startsWith('//')
        ? joinUrl(baseUrl, input)
        : input;
    const headers = new Headers(isRequest ? (input as Request).headers : undefined);
    if (init.headers) new Headers(init.headers).forEach((value, name) => headers.set(name, value));
    headers.set(csrfHeader.name, csrfHeader.value);
    const finalInit: RequestInit = { ...init, headers, credentials: init.credentials ?? credentials };
    const url = typeof target === 'string' ? target : target instanceof URL ? target.href : target.url;
    const res = await send(target, finalInit, url);
    if (res.status === 401 || res.status === 403) {
      const body = await readJson(res.clone());
      const stepUp = stepUpError(res, body);
      if (stepUp) emit('step-up-required', stepUp);
      else if (res.status === 401 && isRecord(body) && typeof body.error === 'string' && SESSION_ERROR_CODES.has(body.error)) {
        sessionExpired(errorFromBody(401, body));
      }
      if (res.status === 401) emit('unauthorized', stepUp ?? errorFromBody(401, body));
    }
    return res;
  }

  function on<E extends keyof BffEvents>(event: E, listener: (payload: BffEvents[E]) => void): () => void {
    const set = listeners[event] as Set<(payload: BffEvents[E]) => void> | undefined;
    if (!set) throw new TypeError(`@bffgate/client: unknown event ${String(event)}`);
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  return {
    config: Object.freeze({ baseUrl, paths: Object.freeze({ ...paths }), csrfHeader: Object.freeze({ ...csrfHeader }), credentials, tokenRefreshMargin }),
    getSession,
    loginUrl,
    login,
    logout,
    listSessions: () => sessions() as Promise<SessionInfo[]>,
    endSession: (id: string) => sessions(id) as Promise<void>,
    getAccessToken,
    clearTokenCache,
    fetch: bffFetch,
    on,
  };
}
