// @vitest-environment jsdom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  BffLoginError,
  BffNetworkError,
  BffStepUpError,
  createClient,
  createSessionStore,
  type SessionStore,
  type SessionStoreOptions,
} from '../src/index.js';
import { ALICE, SESSION_OK, deferred, fakeFetch, json, type Handler } from './helpers.js';

const SIGNED_OUT = { authenticated: false, error: 'unauthenticated' };

const stops: (() => void)[] = [];
afterEach(() => {
  while (stops.length) stops.pop()!();
  vi.useRealTimers();
  vi.unstubAllGlobals();
  window.history.replaceState(null, '', '/');
});

/** A client + store over a fake BFF; `answer` decides what /session says. */
function setup(handler: Handler, options: SessionStoreOptions = {}) {
  const f = fakeFetch(handler);
  const navigate = vi.fn();
  const client = createClient({ fetch: f, navigate });
  const store = createSessionStore(client, { crossTab: false, ...options });
  const seen: string[] = [];
  store.subscribe(() => seen.push(store.getSnapshot().status));
  return { f, navigate, client, store, seen, sessionCalls: () => f.requests.filter((r) => r.url.startsWith('/session')).length };
}

function start(store: SessionStore) {
  const stop = store.start();
  stops.push(stop);
  return stop;
}

/** Lets pending promises (fetch answers) run. */
const flush = () => new Promise((r) => setTimeout(r, 0));

async function until(store: SessionStore, pred: (s: ReturnType<SessionStore['getSnapshot']>) => boolean) {
  await vi.waitFor(() => expect(pred(store.getSnapshot())).toBe(true));
}

describe('createSessionStore: states', () => {
  it('starts loading, does nothing before start(), then becomes authenticated', async () => {
    const gate = deferred<Response>();
    const { store, seen, sessionCalls } = setup(() => gate.promise);
    const first = store.getSnapshot();
    expect(first).toMatchObject({ status: 'loading', isLoading: true, isAuthenticated: false, user: null, session: null, error: null });
    expect(store.getSnapshot()).toBe(first); // stable until something changes
    expect(store.getServerSnapshot()).toBe(first);
    await flush();
    expect(sessionCalls()).toBe(0);
    start(store);
    expect(sessionCalls()).toBe(1);
    gate.resolve(json(200, SESSION_OK));
    await until(store, (s) => s.isAuthenticated);
    expect(store.getSnapshot()).toMatchObject({ status: 'authenticated', isLoading: false, user: ALICE, error: null });
    expect(store.getSnapshot().session).toMatchObject({ expiresAt: SESSION_OK.expiresAt });
    expect(seen).toEqual(['authenticated']);
  });

  it('becomes unauthenticated for the probe answer 200 {authenticated:false} and for a 401', async () => {
    for (const res of [() => json(200, SIGNED_OUT), () => json(401, SIGNED_OUT)]) {
      const { store } = setup(res);
      start(store);
      await until(store, (s) => !s.isLoading);
      expect(store.getSnapshot()).toMatchObject({ status: 'unauthenticated', isAuthenticated: false, user: null, error: null, session: { authenticated: false, reason: 'unauthenticated' } });
    }
  });

  it('starts from initialSession (no loading) and still checks with the BFF', async () => {
    const { store, seen, sessionCalls } = setup(() => json(200, SIGNED_OUT), { initialSession: SESSION_OK as never });
    expect(store.getSnapshot()).toMatchObject({ status: 'authenticated', isLoading: false, user: ALICE });
    expect(store.getServerSnapshot()).toBe(store.getSnapshot());
    start(store);
    await until(store, (s) => !s.isAuthenticated);
    expect(sessionCalls()).toBe(1);
    expect(seen).toEqual(['unauthenticated']);
    expect(store.getServerSnapshot().status).toBe('authenticated'); // what the server rendered stays the same
  });

  it('a failed first load ends loading as unauthenticated with the error; a later failure keeps the status; success clears it', async () => {
    const answers: (() => Response)[] = [
      () => {
        throw new TypeError('offline');
      },
      () => json(200, SESSION_OK),
      () => json(503, { error: 'session_store_unavailable' }),
      () => json(200, SESSION_OK),
    ];
    const { store } = setup(() => answers.shift()!());
    start(store);
    await until(store, (s) => s.error !== null);
    expect(store.getSnapshot()).toMatchObject({ status: 'unauthenticated', session: { authenticated: false } });
    expect(store.getSnapshot().error).toBeInstanceOf(BffNetworkError);
    await store.refresh();
    expect(store.getSnapshot()).toMatchObject({ status: 'authenticated', error: null });
    await store.refresh();
    expect(store.getSnapshot()).toMatchObject({ status: 'authenticated', error: { code: 'session_store_unavailable' } });
    await store.refresh();
    expect(store.getSnapshot().error).toBeNull();
  });

  it('only the latest /session answer counts', async () => {
    const gates = [deferred<Response>(), deferred<Response>()];
    let i = 0;
    const { store } = setup(() => gates[i++]!.promise);
    start(store);
    const second = store.refresh();
    gates[1]!.resolve(json(200, SIGNED_OUT));
    await second;
    gates[0]!.resolve(json(200, SESSION_OK));
    await flush();
    expect(store.getSnapshot().status).toBe('unauthenticated');
  });
});

describe('createSessionStore: 401s, focus and expiry', () => {
  it('a 401 session answer of fetch signs out at once, beats an in-flight /session and asks nothing more', async () => {
    const gate = deferred<Response>();
    const { store, client, sessionCalls } = setup((req) =>
      req.url.startsWith('/session') ? (sessionCalls() === 1 ? json(200, SESSION_OK) : gate.promise) : json(401, { error: 'session_expired' }),
    );
    start(store);
    await until(store, (s) => s.isAuthenticated);
    const pending = store.refresh();
    await client.fetch('/api/x');
    expect(store.getSnapshot()).toMatchObject({ status: 'unauthenticated', session: { reason: 'session_expired' } });
    gate.resolve(json(200, SESSION_OK));
    await pending;
    expect(store.getSnapshot().status).toBe('unauthenticated');
    expect(sessionCalls()).toBe(2);
  });

  it('another 401 of fetch makes it ask /session again', async () => {
    let signedIn = true;
    const { store, client, sessionCalls } = setup((req) =>
      req.url.startsWith('/session') ? json(200, signedIn ? SESSION_OK : SIGNED_OUT) : json(401, { error: 'invalid_token' }),
    );
    start(store);
    await until(store, (s) => s.isAuthenticated);
    signedIn = false;
    await client.fetch('/api/x');
    await until(store, (s) => s.status === 'unauthenticated');
    expect(sessionCalls()).toBe(2);
  });

  it('asks again on window focus and when the tab becomes visible, not when refetchOnFocus is false', async () => {
    const { store, sessionCalls } = setup(() => json(200, SESSION_OK));
    start(store);
    await until(store, (s) => s.isAuthenticated);
    window.dispatchEvent(new Event('focus'));
    await flush();
    expect(sessionCalls()).toBe(2);
    document.dispatchEvent(new Event('visibilitychange'));
    await flush();
    expect(sessionCalls()).toBe(3);

    const quiet = setup(() => json(200, SESSION_OK), { refetchOnFocus: false });
    start(quiet.store);
    await until(quiet.store, (s) => s.isAuthenticated);
    window.dispatchEvent(new Event('focus'));
    await flush();
    expect(quiet.sessionCalls()).toBe(1);
  });

  it('stop() removes every listener; starts nest', async () => {
    const { store, sessionCalls } = setup(() => json(200, SESSION_OK));
    const stop1 = store.start();
    const stop2 = store.start();
    await until(store, (s) => s.isAuthenticated);
    expect(sessionCalls()).toBe(1);
    stop1();
    stop1(); // twice is once
    window.dispatchEvent(new Event('focus'));
    await flush();
    expect(sessionCalls()).toBe(2); // still started by the second
    stop2();
    window.dispatchEvent(new Event('focus'));
    await flush();
    expect(sessionCalls()).toBe(2);
  });

  it('asks again when expiresAt passes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(new Date('2026-12-01T10:00:00Z'));
    let answer: unknown = { ...SESSION_OK, expiresAt: '2026-12-01T10:05:00Z' };
    const { store, sessionCalls } = setup(() => json(200, answer));
    start(store);
    await vi.waitFor(() => expect(store.getSnapshot().isAuthenticated).toBe(true));
    answer = SIGNED_OUT;
    await vi.advanceTimersByTimeAsync(4 * 60_000);
    expect(sessionCalls()).toBe(1);
    await vi.advanceTimersByTimeAsync(61_000);
    expect(sessionCalls()).toBe(2);
    expect(store.getSnapshot().status).toBe('unauthenticated');
  });

  it('sets no timer for an expiresAt in the past (clocks disagree), so it does not loop', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(new Date('2026-12-01T10:00:00Z'));
    const { store, sessionCalls } = setup(() => json(200, { ...SESSION_OK, expiresAt: '2026-12-01T09:00:00Z' }));
    start(store);
    await vi.waitFor(() => expect(store.getSnapshot().isAuthenticated).toBe(true));
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(sessionCalls()).toBe(1);
  });
});

describe('createSessionStore: login and step-up errors', () => {
  it('reads ?error= of a failed login as BffLoginError, removes it from the URL and keeps it past the session answer', async () => {
    window.history.replaceState({ keep: 1 }, '', '/orders?tab=2&error=access_denied&error_description=User+said+no#top');
    const replace = vi.spyOn(window.history, 'replaceState');
    const { store } = setup(() => json(200, SIGNED_OUT));
    start(store);
    await until(store, (s) => !s.isLoading);
    const err = store.getSnapshot().error;
    expect(err).toBeInstanceOf(BffLoginError);
    expect(err).toMatchObject({ code: 'access_denied', description: 'User said no' });
    expect(replace).toHaveBeenCalledTimes(1);
    expect(`${location.pathname}${location.search}${location.hash}`).toBe('/orders?tab=2#top');
    expect(window.history.state).toEqual({ keep: 1 });
    await store.refresh();
    expect(store.getSnapshot().error).toBe(err);
    store.clearError();
    expect(store.getSnapshot().error).toBeNull();
  });

  it('leaves the URL alone with loginErrorFromUrl: false, and when there is no error', async () => {
    window.history.replaceState(null, '', '/?error=mine');
    const { store } = setup(() => json(200, SIGNED_OUT), { loginErrorFromUrl: false });
    start(store);
    await until(store, (s) => !s.isLoading);
    expect(store.getSnapshot().error).toBeNull();
    expect(location.search).toBe('?error=mine');

    window.history.replaceState(null, '', '/?tab=1');
    const replace = vi.spyOn(window.history, 'replaceState');
    const other = setup(() => json(200, SIGNED_OUT));
    start(other.store);
    await until(other.store, (s) => !s.isLoading);
    expect(replace).not.toHaveBeenCalled();
  });

  it('a step-up answer becomes the error, and login({ acr_values }) follows it', async () => {
    const { store, client, navigate } = setup((req) =>
      req.url.startsWith('/session')
        ? json(200, SESSION_OK)
        : json(403, { error: 'insufficient_user_authentication', acr_values: 'urn:mfa' }),
    );
    start(store);
    await until(store, (s) => s.isAuthenticated);
    await client.fetch('/api/pay');
    const err = store.getSnapshot().error;
    expect(err).toBeInstanceOf(BffStepUpError);
    expect(store.getSnapshot().status).toBe('authenticated');
    client.login({ acr_values: (err as BffStepUpError).acrValues!, returnTo: '/pay' });
    expect(navigate).toHaveBeenCalledWith('/login?returnTo=%2Fpay&acr_values=urn%3Amfa');
  });
});

describe('createSessionStore: across tabs', () => {
  /** Two "tabs": two clients and stores sharing one cookie jar (`signedIn`). */
  function twoTabs(jar: { signedIn: boolean }) {
    const handler: Handler = (req) => {
      if (req.url === '/logout') {
        jar.signedIn = false;
        return json(200, { logoutUrl: null });
      }
      return json(200, jar.signedIn ? SESSION_OK : SIGNED_OUT);
    };
    const a = setup(handler, { crossTab: true, channelName: 'test-tabs' });
    const b = setup(handler, { crossTab: true, channelName: 'test-tabs' });
    return { a, b };
  }

  beforeEach(() => {
    localStorage.clear();
  });

  it('BroadcastChannel: logout in one tab signs the other out, and a login refreshes it', async () => {
    expect(typeof BroadcastChannel).toBe('function');
    const jar = { signedIn: true };
    const { a, b } = twoTabs(jar);
    start(a.store);
    start(b.store);
    await until(a.store, (s) => s.isAuthenticated);
    await until(b.store, (s) => s.isAuthenticated);
    await a.client.logout();
    expect(a.store.getSnapshot().status).toBe('unauthenticated');
    await until(b.store, (s) => s.status === 'unauthenticated');
    expect(b.store.getSnapshot().session).toMatchObject({ reason: 'logout' });
    const bCalls = b.sessionCalls();

    jar.signedIn = true; // a logs in again (here: the BFF says so at a's next check)
    await a.store.refresh();
    await until(b.store, (s) => s.isAuthenticated);
    expect(b.sessionCalls()).toBe(bCalls + 1);
  });

  it('storage events when there is no BroadcastChannel', async () => {
    vi.stubGlobal('BroadcastChannel', undefined);
    const writes: string[] = [];
    const setItem = Storage.prototype.setItem;
    vi.spyOn(Storage.prototype, 'setItem').mockImplementation(function (this: Storage, k: string, v: string) {
      writes.push(v);
      setItem.call(this, k, v);
    });
    const jar = { signedIn: true };
    const { a, b } = twoTabs(jar);
    start(a.store);
    start(b.store);
    await until(a.store, (s) => s.isAuthenticated);
    await until(b.store, (s) => s.isAuthenticated);
    writes.length = 0;
    await a.client.logout();
    expect(writes).toHaveLength(1);
    expect(localStorage.getItem('test-tabs')).toBeNull(); // removed at once
    // The browser fires `storage` in the *other* tabs; here both stores share one window.
    window.dispatchEvent(new StorageEvent('storage', { key: 'test-tabs', newValue: writes[0]! }));
    expect(b.store.getSnapshot().status).toBe('unauthenticated');
    window.dispatchEvent(new StorageEvent('storage', { key: 'other', newValue: '{"sub":null}' }));
  });

  it('tells nothing when crossTab is false', async () => {
    const post = vi.spyOn(BroadcastChannel.prototype, 'postMessage');
    const { store, client } = setup((req) => (req.url === '/logout' ? json(200, { logoutUrl: null }) : json(200, SESSION_OK)));
    start(store);
    await until(store, (s) => s.isAuthenticated);
    await client.logout();
    expect(store.getSnapshot().status).toBe('unauthenticated');
    expect(post).not.toHaveBeenCalled();
  });
});
