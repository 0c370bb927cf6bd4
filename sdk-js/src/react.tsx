'use client';

import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from 'react';
import type {
  AccessToken,
  AccessTokenOptions,
  BffClient,
  LoginOptions,
  LogoutOptions,
  Session,
  User,
} from './types.js';

export type SessionStatus = 'loading' | 'authenticated' | 'unauthenticated';

export interface SessionState {
  /** `loading` until the first `/session` answer, then `authenticated` or `unauthenticated`. */
  status: SessionStatus;
  /** The user when authenticated, else `null`. */
  user: User | null;
  /** The last session the BFF reported (includes `mode`, `expiresAt`, or the `reason` when logged out). */
  session: Session | null;
  /** The last error of `/session` (a `BffError` or `BffNetworkError`), cleared by the next success. */
  error: Error | null;
}

export interface UseSessionResult extends SessionState {
  /** Top-level navigation to the BFF's login endpoint. */
  login: (options?: LoginOptions) => void;
  /** Ends the session at the BFF and navigates away. */
  logout: (options?: LogoutOptions) => Promise<void>;
  /** Asks the BFF for the session again. */
  refresh: () => Promise<void>;
}

interface SessionContextValue {
  client: BffClient;
  state: SessionState;
  refresh: () => Promise<void>;
}

const SessionContext = createContext<SessionContextValue | null>(null);

const INITIAL_STATE: SessionState = { status: 'loading', user: null, session: null, error: null };

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

export interface SessionProviderProps {
  client: BffClient;
  children?: ReactNode;
}

/**
 * Loads the session from the BFF when it mounts and keeps it for `useSession()`.
 * A `session-expired` event of the client (a 401 from the BFF) switches it to
 * `unauthenticated` at once.
 *
 * If `/session` fails (5xx, network) while still `loading`, the status becomes
 * `unauthenticated` and `error` is set; a failing `refresh()` later keeps the
 * status and only sets `error`.
 */
export function SessionProvider({ client, children }: SessionProviderProps) {
  const [state, setState] = useState<SessionState>(INITIAL_STATE);
  /** Only the answer to the latest request may change the state. */
  const seq = useRef(0);
  const controller = useRef<AbortController | null>(null);

  const refresh = useCallback(async (): Promise<void> => {
    const id = ++seq.current;
    controller.current?.abort();
    const ac = typeof AbortController !== 'undefined' ? new AbortController() : null;
    controller.current = ac;
    try {
      const session = await client.getSession(ac ? { signal: ac.signal } : {});
      if (id !== seq.current) return;
      setState({
        status: session.authenticated ? 'authenticated' : 'unauthenticated',
        user: session.authenticated ? session.user : null,
        session,
        error: null,
      });
    } catch (err) {
      if (id !== seq.current) return;
      setState((prev) => ({
        ...prev,
        status: prev.status === 'loading' ? 'unauthenticated' : prev.status,
        error: toError(err),
      }));
    } finally {
      if (controller.current === ac) controller.current = null;
    }
  }, [client]);

  useEffect(() => {
    setState((prev) => (prev.status === 'loading' ? prev : INITIAL_STATE));
    void refresh();
    const off = client.on('session-expired', (err) => {
      seq.current++; // an in-flight /session answer must not undo this
      controller.current?.abort();
      setState({
        status: 'unauthenticated',
        user: null,
        session: { authenticated: false, reason: err.code },
        error: null,
      });
    });
    return () => {
      off();
      seq.current++;
      controller.current?.abort();
      controller.current = null;
    };
  }, [client, refresh]);

  const value = useMemo<SessionContextValue>(() => ({ client, state, refresh }), [client, state, refresh]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

function useSessionContext(hook: string): SessionContextValue {
  const ctx = useContext(SessionContext);
  if (!ctx) throw new Error(`@bffgate/client/react: ${hook}() must be used inside <SessionProvider client={...}>`);
  return ctx;
}

/** The session state plus `login`, `logout` and `refresh`. */
export function useSession(): UseSessionResult {
  const { client, state, refresh } = useSessionContext('useSession');
  return useMemo(
    () => ({
      ...state,
      login: (options?: LoginOptions) => client.login(options),
      logout: (options?: LogoutOptions) => client.logout(options),
      refresh,
    }),
    [client, state, refresh],
  );
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
  const { client, state } = useSessionContext('useAccessToken');
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
