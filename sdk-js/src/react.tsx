'use client';

import {
  createContext,
  useContext,
  useEffect,
  useMemo,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from 'react';
import { createSessionStore, type SessionState, type SessionStore, type SessionStoreOptions } from './store.js';
import type { AccessToken, AccessTokenOptions, BffClient, LoginOptions, LogoutOptions } from './types.js';

export type { SessionState, SessionStatus, SessionStore, SessionStoreOptions } from './store.js';

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

export interface UseSessionResult extends SessionState {
  /** Top-level navigation to the BFF's login endpoint (`{ acr_values }` for a step-up). */
  login: (options?: LoginOptions) => void;
  /** Ends the session at the BFF (every tab learns of it) and navigates away. */
  logout: (options?: LogoutOptions) => Promise<void>;
  /** Asks the BFF for the session again. */
  refresh: () => Promise<void>;
  /** Forgets `error` (e.g. after showing a login or step-up error). */
  clearError: () => void;
}

interface SessionContextValue {
  client: BffClient;
  store: SessionStore;
}

const SessionContext = createContext<SessionContextValue | null>(null);

export interface SessionProviderProps extends SessionStoreOptions {
  client: BffClient;
  children?: ReactNode;
}

/**
 * Keeps the session of the BFF for `useSession()`, in a store read with
 * `useSyncExternalStore` (see `createSessionStore`): it loads `/session` when it mounts,
 * switches to `unauthenticated` at once on a 401 session answer of `client.fetch`, asks
 * again on window focus, on other 401s and when `expiresAt` passes, follows logout and
 * login in other tabs, and reports `?error=` of a failed login.
 *
 * Pass `initialSession` (read on the server with the request's cookie) to render the
 * signed-in or signed-out page on the server with no hydration mismatch.
 *
 * If `/session` fails (5xx, network) while still `loading`, the status becomes
 * `unauthenticated` and `error` is set; a failing `refresh()` later keeps the status
 * and only sets `error`.
 */
export function SessionProvider({ client, children, initialSession, refetchOnFocus, crossTab, channelName, loginErrorFromUrl }: SessionProviderProps) {
  // One store per client; the options are read when it is made.
  const make = (): SessionContextValue => ({
    client,
    store: createSessionStore(client, { initialSession, refetchOnFocus, crossTab, channelName, loginErrorFromUrl }),
  });
  const [holder, setHolder] = useState(make);
  let current = holder;
  if (holder.client !== client) {
    current = make();
    setHolder(current);
  }
  useEffect(() => current.store.start(), [current]);
  return <SessionContext.Provider value={current}>{children}</SessionContext.Provider>;
}

function useSessionContext(hook: string): SessionContextValue {
  const ctx = useContext(SessionContext);
  if (!ctx) throw new Error(`@bffgate/client/react: ${hook}() must be used inside <SessionProvider client={...}>`);
  return ctx;
}

function useSessionState(store: SessionStore): SessionState {
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getServerSnapshot);
}

/** The session state (`status`, `isLoading`, `isAuthenticated`, `user`, `session`, `error`) plus actions. */
export function useSession(): UseSessionResult {
  const { client, store } = useSessionContext('useSession');
  const state = useSessionState(store);
  return useMemo(
    () => ({
      ...state,
      login: (options?: LoginOptions) => client.login(options),
      logout: (options?: LogoutOptions) => client.logout(options),
      refresh: store.refresh,
      clearError: store.clearError,
    }),
    [client, store, state],
  );
}

export interface RequireAuthProps {
  children?: ReactNode;
  /**
   * Shown when signed out. Without it, `<RequireAuth>` starts the login (`loginOptions`)
   * once the BFF has said there is no session, unless `error` is set (`/session` failed,
   * or a login just failed: then it shows nothing; read `useSession().error`).
   */
  fallback?: ReactNode;
  /** Shown while the session loads and while the login starts. Default nothing. */
  loading?: ReactNode;
  /** Options of the login it starts, e.g. `{ returnTo, prompt }`. */
  loginOptions?: LoginOptions;
}

/** Renders `children` only for a signed-in user; otherwise `fallback`, or it starts the login. */
export function RequireAuth({ children, fallback, loading = null, loginOptions }: RequireAuthProps) {
  const { client, store } = useSessionContext('RequireAuth');
  const state = useSessionState(store);
  // Only when the BFF said "no session": not after a failed /session (the BFF may be down) and
  // not after a failed login (that would loop), where `error` is set.
  const startLogin = fallback === undefined && state.session?.authenticated === false && !state.error;
  useEffect(() => {
    if (startLogin) client.login(loginOptions);
    // loginOptions is read when the login starts (not a dependency): a new object on each
    // render must not start it again.
  }, [client, startLogin]);
  if (state.isAuthenticated) return <>{children}</>;
  if (state.isLoading || startLogin) return <>{loading}</>;
  return <>{fallback ?? null}</>;
}

/** The `BffClient` given to the provider. */
export function useBffClient(): BffClient {
  return useSessionContext('useBffClient').client;
}

/** The client's `fetch`: adds the CSRF header and credentials, reports 401s as session expiry. */
export function useBffFetch(): BffClient['fetch'] {
  return useSessionContext('useBffFetch').client.fetch;
}

export interface UseAccessTokenOptions extends AccessTokenOptions {
  /** Set to `false` to not request a token (yet). Default `true`. */
  enabled?: boolean;
}

export interface UseAccessTokenResult {
  /** The bearer token string, or `null` while loading, logged out or after an error. */
  token: string | null;
  /** The full token object (`expiresAt`, `expiresIn`, `scope`, `tokenType`). */
  accessToken: AccessToken | null;
  error: Error | null;
  loading: boolean;
}

/**
 * Token-mediating mode: an access token from the BFF's `/token` endpoint for the
 * given scope/resource. Requested only while the session is authenticated, and
 * requested again shortly before it expires.
 */
export function useAccessToken(options: UseAccessTokenOptions = {}): UseAccessTokenResult {
  const { client, store } = useSessionContext('useAccessToken');
  const state = useSessionState(store);
  const { scope, resource, enabled = true } = options;
  const status = state.status;
  const [result, setResult] = useState<{ token: AccessToken | null; error: Error | null; loading: boolean }>(
    () => ({ token: null, error: null, loading: enabled }),
  );

  useEffect(() => {
    if (!enabled || status !== 'authenticated') {
      setResult({ token: null, error: null, loading: enabled && status === 'loading' });
      return;
    }
    let cancelled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const opts: AccessTokenOptions = {};
    if (scope !== undefined) opts.scope = scope;
    if (resource !== undefined) opts.resource = resource;

    const load = () => {
      setResult((prev) => (prev.loading ? prev : { ...prev, loading: true }));
      client.getAccessToken(opts).then(
        (token) => {
          if (cancelled) return;
          setResult({ token, error: null, loading: false });
          const margin = client.config.tokenRefreshMargin;
          const seconds = token.expiresIn > margin ? token.expiresIn - margin : Math.max(token.expiresIn, 5);
          timer = setTimeout(load, seconds * 1000);
        },
        (err: unknown) => {
          if (!cancelled) setResult({ token: null, error: toError(err), loading: false });
        },
      );
    };
    load();
    return () => {
      cancelled = true;
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [client, scope, resource, enabled, status]);

  return {
    token: result.token?.accessToken ?? null,
    accessToken: result.token,
    error: result.error,
    loading: result.loading,
  };
}
