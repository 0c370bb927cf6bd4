import { BffLoginError } from './errors.js';
import type { BffClient, Session, User } from './types.js';

export type SessionStatus = 'loading' | 'authenticated' | 'unauthenticated';

/** One immutable snapshot of the session store; a new object on every change. */
export interface SessionState {
  /** `loading` until the first `/session` answer, then `authenticated` or `unauthenticated`. */
  status: SessionStatus;
  /** `status === 'loading'`. */
  isLoading: boolean;
  /** `status === 'authenticated'`. */
  isAuthenticated: boolean;
  /** The user when authenticated, else `null`. */
  user: User | null;
  /** The last session the BFF reported (includes `mode`, `expiresAt`, or the `reason` when logged out). */
  session: Session | null;
  /**
   * The latest problem: a failed `/session` call (`BffError`, `BffNetworkError`; cleared by the
   * next success), a failed login (`BffLoginError`, from `?error=` on the URL) or a step-up
   * answer of an API (`BffStepUpError`); the last two stay until `clearError()`.
   */
  error: Error | null;
}

export interface SessionStoreOptions {
  /**
   * The session the server already knows (Next.js, Remix: read `/session` with the request's
   * cookie while rendering). The store starts from it instead of `loading`, on the server and
   * in the browser alike, so hydration matches.
   */
  initialSession?: Session | null;
  /** Ask `/session` again when the window regains focus or the tab becomes visible. Default `true`. */
  refetchOnFocus?: boolean;
  /** Tell other tabs of this origin about logout and login (BroadcastChannel, else `storage` events). Default `true`. */
  crossTab?: boolean;
  /** Name of the BroadcastChannel and localStorage key. Default `bffgate:<baseUrl>`. */
  channelName?: string;
  /**
   * Read a failed login from the URL the app lands on (`?error=<code>&error_description=…`),
   * expose it as a `BffLoginError` and remove it from the address bar. `false` to leave the URL
   * alone. Default `true`.
   */
  loginErrorFromUrl?: boolean;
}

export interface SessionStore {
  /** The current state (same object until something changes). */
  getSnapshot(): SessionState;
  /** The state the server rendered with: `loading`, or the `initialSession`. For `useSyncExternalStore`. */
  getServerSnapshot(): SessionState;
  /** Calls `listener` after every change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void;
  /**
   * Starts the side effects: loads `/session`, listens to the client's events, focus, other tabs
   * and the expiry timer. Returns `stop`. Calls nest: effects stop when every `start` was stopped.
   */
  start(): () => void;
  /** Asks the BFF for the session again; only the latest answer counts. Never rejects. */
  refresh(): Promise<void>;
  /** Forgets `error`. */
  clearError(): void;
}

/** A message between tabs: this tab's authenticated user (or none). */
interface TabMessage {
  sub: string | null;
}

/** setTimeout's limit; a later expiry is checked again then. */
const MAX_DELAY = 2 ** 31 - 1;

function stateOf(session: Session | null | undefined, error: Error | null = null): SessionState {
  const status: SessionStatus = !session ? 'loading' : session.authenticated ? 'authenticated' : 'unauthenticated';
  return {
    status,
    isLoading: status === 'loading',
    isAuthenticated: status === 'authenticated',
    user: session?.authenticated ? session.user : null,
    session: session ?? null,
    error,
  };
}

/** Reads `?error=` (and `error_description`) from the current URL and removes them from it. */
export function takeLoginError(): BffLoginError | null {
  const w = globalThis as { location?: Location; history?: History };
  if (!w.location || typeof w.location.href !== 'string') return null;
  const url = new URL(w.location.href);
  const code = url.searchParams.get('error');
  if (!code) return null;
  const description = url.searchParams.get('error_description') ?? undefined;
  for (const k of ['error', 'error_description', 'error_uri']) url.searchParams.delete(k);
  w.history?.replaceState?.(w.history.state, '', `${url.pathname}${url.search}${url.hash}`);
  return new BffLoginError(code, description);
}

/**
 * A framework-neutral store of the session, for React (`SessionProvider` uses it with
 * `useSyncExternalStore`), Vue, Svelte or plain JS.
 *
 * ```ts
 * const store = createSessionStore(client);
 * store.subscribe(() => render(store.getSnapshot()));
 * const stop = store.start();
 * ```
 */
export function createSessionStore(client: BffClient, options: SessionStoreOptions = {}): SessionStore {
  const serverState = stateOf(options.initialSession);
  let state = serverState;
  /** Where `state.error` came from: only a refresh error is cleared by the next success. */
  let errorFromRefresh = false;
  const listeners = new Set<() => void>();
  let seq = 0;
  let controller: AbortController | null = null;
  let starts = 0;
  let stopEffects: (() => void) | null = null;
  let expiryTimer: ReturnType<typeof setTimeout> | undefined;
  let tell: (msg: TabMessage) => void = () => {};

  function set(next: SessionState, fromRefresh = false): void {
    const before = state;
    errorFromRefresh = fromRefresh && next.error !== null;
    state = next;
    scheduleExpiry();
    // Tell the other tabs when who is logged in changes (login, logout, a session that ended).
    if (before.status !== 'loading' || next.isAuthenticated) {
      const was = before.user?.sub ?? null;
      const now = next.user?.sub ?? null;
      if (was !== now && next.status !== 'loading') tell({ sub: now });
    }
    for (const l of [...listeners]) l();
  }

  function signedOut(reason: string): void {
    seq++; // an in-flight /session answer must not undo this
    controller?.abort();
    client.clearTokenCache();
    set(stateOf({ authenticated: false, reason }, errorFromRefresh ? null : state.error));
  }

  function scheduleExpiry(): void {
    if (expiryTimer !== undefined) clearTimeout(expiryTimer);
    expiryTimer = undefined;
    const at = state.session?.authenticated ? Date.parse(state.session.expiresAt ?? '') : NaN;
    // A moment after the end, so that the BFF agrees it has ended. An end that has passed already
    // (yet the BFF said authenticated) means the clocks disagree: then focus and 401s must do.
    const delay = at - Date.now() + 1000;
    if (!stopEffects || !(delay > 1000)) return;
    expiryTimer = setTimeout(() => void refresh(), Math.min(delay, MAX_DELAY));
  }

  async function refresh(): Promise<void> {
    const id = ++seq;
    controller?.abort();
    const ac = typeof AbortController !== 'undefined' ? new AbortController() : null;
    controller = ac;
    try {
      const session = await client.getSession(ac ? { signal: ac.signal } : {});
      if (id === seq) set(stateOf(session, errorFromRefresh ? null : state.error));
    } catch (err) {
      if (id !== seq) return;
      const error = err instanceof Error ? err : new Error(String(err));
      // A failure of the first load ends `loading` as signed out; later ones keep the status.
      set({ ...(state.isLoading ? stateOf({ authenticated: false }) : state), error }, true);
    } finally {
      if (controller === ac) controller = null;
    }
  }

  function startEffects(): () => void {
    const offs: (() => void)[] = [];
    const w = globalThis as unknown as Partial<Window & typeof globalThis>;
    if (options.loginErrorFromUrl !== false) {
      const loginError = takeLoginError();
      if (loginError) set({ ...state, error: loginError });
    }
    offs.push(
      client.on('session-expired', (err) => signedOut(err.code)),
      // Any other 401 of an API call: did the session end elsewhere? (After session-expired there is nothing to ask.)
      client.on('unauthorized', () => {
        if (state.isAuthenticated) void refresh();
      }),
      client.on('step-up-required', (err) => set({ ...state, error: err })),
      client.on('logout', () => signedOut('logout')),
    );
    if (options.refetchOnFocus !== false && w.addEventListener) {
      const onFocus = () => {
        if (w.document?.visibilityState !== 'hidden' && !controller) void refresh();
      };
      w.addEventListener('focus', onFocus);
      w.document?.addEventListener('visibilitychange', onFocus);
      offs.push(() => {
        w.removeEventListener?.('focus', onFocus);
        w.document?.removeEventListener('visibilitychange', onFocus);
      });
    }
    if (options.crossTab !== false) offs.push(listenToTabs());
    void refresh();
    return () => {
      for (const off of offs) off();
      seq++;
      controller?.abort();
      controller = null;
      tell = () => {};
    };
  }

  function onTabMessage(msg: unknown): void {
    if (typeof msg !== 'object' || msg === null || !('sub' in msg)) return;
    const sub = (msg as TabMessage).sub;
    if (sub === null) {
      // Another tab saw the session end: it is the same cookie, so it ended here too.
      if (state.isAuthenticated) signedOut('logout');
    } else if (state.user?.sub !== sub) {
      void refresh(); // another tab logged in
    }
  }

  function listenToTabs(): () => void {
    const name = options.channelName ?? `bffgate:${client.config.baseUrl}`;
    const w = globalThis as unknown as Partial<Window & typeof globalThis>;
    if (typeof w.BroadcastChannel === 'function') {
      const channel = new w.BroadcastChannel(name);
      channel.onmessage = (e) => onTabMessage(e.data);
      tell = (msg) => channel.postMessage(msg);
      return () => channel.close();
    }
    const storage = (() => {
      try {
        return w.localStorage ?? null;
      } catch {
        return null; // storage disabled
      }
    })();
    if (!storage || !w.addEventListener) return () => {};
    const onStorage = (e: StorageEvent) => {
      if (e.key !== name || !e.newValue) return;
      try {
        onTabMessage(JSON.parse(e.newValue));
      } catch {
        // not ours
      }
    };
    w.addEventListener('storage', onStorage);
    tell = (msg) => {
      try {
        // A new value every time (the event fires only on a change), removed at once.
        storage.setItem(name, JSON.stringify({ ...msg, at: Date.now(), n: Math.random() }));
        storage.removeItem(name);
      } catch {
        // quota or privacy mode: other tabs learn at their next focus
      }
    };
    return () => w.removeEventListener?.('storage', onStorage);
  }

  return {
    getSnapshot: () => state,
    getServerSnapshot: () => serverState,
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    start() {
      if (starts++ === 0) {
        stopEffects = () => {};
        stopEffects = startEffects();
        scheduleExpiry();
      }
      let stopped = false;
      return () => {
        if (stopped) return;
        stopped = true;
        if (--starts === 0) {
          const stop = stopEffects;
          stopEffects = null;
          stop?.();
          scheduleExpiry();
        }
      };
    },
    refresh,
    clearError() {
      if (state.error) set({ ...state, error: null });
    },
  };
}
