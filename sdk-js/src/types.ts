import type { BffError, BffStepUpError } from './errors.js';

/** The user as the BFF reports it: `sub` plus whichever claims the BFF is configured to expose. */
export interface User {
  sub: string;
  name?: string;
  email?: string;
  [claim: string]: unknown;
}

/** `bff`: APIs are called through the BFF with the cookie. `token-mediating`: `/token` hands out access tokens. */
export type BffMode = 'bff' | 'token-mediating';

export interface AuthenticatedSession {
  authenticated: true;
  user: User;
  /** ISO-8601 time at which the session ends, if the BFF reports it: the earlier of the two below. */
  expiresAt?: string;
  /** ISO-8601 time at which the session idles out unless used again. */
  idleExpiresAt?: string;
  /** ISO-8601 time at which the session ends however it is used (its maximum lifetime). */
  absoluteExpiresAt?: string;
  /** Which mode the BFF runs in. */
  mode?: BffMode | (string & {});
}

export interface UnauthenticatedSession {
  authenticated: false;
  /** The BFF's `error` code: `unauthenticated`, `invalid_session` or `session_expired`. */
  reason?: string;
}

export type Session = AuthenticatedSession | UnauthenticatedSession;

export interface BffPaths {
  /** Default `/session`. */
  session?: string;
  /** Default `/login`. */
  login?: string;
  /** Default `/logout`. */
  logout?: string;
  /** Default `/token`. */
  token?: string;
  /** Default `/sessions`: the user's list of sessions. */
  sessions?: string;
}

/** One of the user's sessions, from `listSessions()`: device and times only, never a token. */
export interface SessionInfo {
  /** Opaque ID, for `endSession(id)`. */
  id: string;
  /** This browser's session. */
  current: boolean;
  /** Coarse label from the login's User-Agent, e.g. `Firefox on Linux`. */
  device: string;
  /** ISO-8601 login time. */
  createdAt: string;
  /** ISO-8601 time of its last use (coarse: to within a tenth of the idle timeout on Redis). */
  lastSeenAt: string;
  /** ISO-8601 time at which it ends however it is used. */
  endsAt: string;
}

export interface CsrfHeader {
  name: string;
  value: string;
}

export interface BffClientOptions {
  /**
   * Origin (and optional common prefix) of the BFF, e.g. `https://bff.example.com` or `/bff`.
   * Default `''`: the BFF is on the same origin as the app, at the root.
   */
  baseUrl?: string;
  /** Endpoint paths, relative to `baseUrl`. */
  paths?: BffPaths;
  /** The anti-CSRF header sent on every request. Default `X-CSRF: 1`. */
  csrfHeader?: CsrfHeader;
  /**
   * Credentials mode for requests to the BFF. Default `'include'` when `baseUrl`
   * is on another origin, otherwise `'same-origin'`.
   */
  credentials?: RequestCredentials;
  /** The fetch implementation. Default: the global `fetch`, looked up at call time. */
  fetch?: typeof fetch;
  /** Performs a top-level navigation. Default: `window.location.assign`. */
  navigate?: (url: string) => void;
  /** Called when the BFF answers 401 to an API call or a token request (the session is gone). */
  onSessionExpired?: (err: BffError) => void;
  /** Seconds before `expires_in` runs out at which a cached access token is dropped. Default 10. */
  tokenRefreshMargin?: number;
  /** Clock in milliseconds since the epoch, for token caching. Default `Date.now`. Mostly for tests. */
  now?: () => number;
}

export interface LoginOptions {
  /**
   * Where the BFF sends the browser after login: a relative path or an absolute URL
   * the BFF allows. Default: the current `location` path + search + hash.
   */
  returnTo?: string;
  /** OpenID Connect `prompt`, e.g. `login`, `consent`, `select_account`, `none`. */
  prompt?: string;
  /** OpenID Connect `acr_values` for a step-up login, e.g. from `BffStepUpError.acrValues`. */
  acr_values?: string;
  /** OpenID Connect `max_age` (seconds) for a step-up login, e.g. from `BffStepUpError.maxAge`. */
  max_age?: number | undefined;
  /** Extra query parameters for the login endpoint (the BFF decides which it forwards). */
  params?: Record<string, string>;
}

export interface LogoutOptions {
  /** Where to go when the provider has no end-session endpoint (`logoutUrl: null`). Default `/`. */
  returnTo?: string;
}

export interface AccessTokenOptions {
  /** Space-separated scopes. */
  scope?: string;
  /** Resource indicator (RFC 8707). */
  resource?: string;
}

export interface AccessToken {
  /** The bearer token. Do not log or display it. */
  accessToken: string;
  /** Usually `Bearer`. */
  tokenType: string;
  /** Seconds of validity left when this object was returned (from `expires_in`, minus time spent in the cache). */
  expiresIn: number;
  /** Epoch milliseconds at which the token expires (from `expires_in`). */
  expiresAt: number;
  /** Granted scopes, if the BFF reported them. */
  scope?: string;
}

export interface BffEvents {
  /** The BFF answered 401: the session is missing, invalid or expired. */
  'session-expired': BffError;
  /** Any 401 answer to `fetch()` (the session may have ended elsewhere): the session store asks `/session` again. */
  unauthorized: BffError;
  /** An API answered `insufficient_user_authentication` (401/403): log in again with `err.acrValues`. */
  'step-up-required': BffStepUpError;
  /** `logout()` ended the session at the BFF (just before it navigates away). */
  logout: undefined;
}

export interface BffClient {
  /** The resolved options (paths, header, credentials) in use. */
  readonly config: Readonly<{
    baseUrl: string;
    paths: Required<BffPaths>;
    csrfHeader: CsrfHeader;
    credentials: RequestCredentials;
    tokenRefreshMargin: number;
  }>;
  /**
   * Current session, from `GET /session?probe=1`: the BFF answers a signed-out visitor 200
   * `{authenticated: false}` (no red console line); a 401 means the same. Other errors throw.
   */
  getSession(options?: { signal?: AbortSignal }): Promise<Session>;
  /** The URL `login()` navigates to, e.g. for an `<a href>`. */
  loginUrl(options?: LoginOptions): string;
  /** Top-level navigation to the BFF's login endpoint. */
  login(options?: LoginOptions): void;
  /** Ends the session at the BFF and navigates to the provider's logout URL (or `returnTo`). */
  logout(options?: LogoutOptions): Promise<void>;
  /** The user's sessions (`GET /sessions`), newest first, this browser's marked `current`. */
  listSessions(): Promise<SessionInfo[]>;
  /** Ends one of the user's sessions (`DELETE /sessions/{id}`); ending the current one logs this browser out. */
  endSession(id: string): Promise<void>;
  /** Token-mediating mode: an access token for the given scope/resource, cached and single-flight. */
  getAccessToken(options?: AccessTokenOptions): Promise<AccessToken>;
  /** Drops all cached access tokens. */
  clearTokenCache(): void;
  /**
   * `fetch` with the CSRF header and the credentials mode added. Relative paths
   * starting with `/` are resolved against `baseUrl`. Emits `session-expired` on a
   * 401 from the BFF and returns the response unchanged; never retries.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends keyof BffEvents>(event: E, listener: (payload: BffEvents[E]) => void): () => void;
}
