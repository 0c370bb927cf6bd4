// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, renderHook, screen, waitFor } from '@testing-library/react';
import { StrictMode, type ReactNode } from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BffError, createClient } from '../src/index.js';
import { RequireAuth, SessionProvider, useAccessToken, useBffClient, useBffFetch, useSession } from '../src/react.js';
import { ALICE, SESSION_OK, deferred, fakeFetch, json, type Handler } from './helpers.js';

afterEach(() => {
  cleanup();
});

function Status() {
  const { status, user, session, error, login, logout } = useSession();
  return (
    <div>
      <p data-testid="status">{status}</p>
      {user && <p data-testid="user">{user.name}</p>}
      {session && !session.authenticated && <p data-testid="reason">{session.reason ?? '-'}</p>}
      {error && <p data-testid="error">{error instanceof BffError ? error.code : error.message}</p>}
      <button onClick={() => login({ returnTo: '/after' })}>log in</button>
      <button onClick={() => void logout()}>log out</button>
    </div>
  );
}

function setup(handler: Handler, extra: Partial<Parameters<typeof createClient>[0]> = {}) {
  const f = fakeFetch(handler);
  const navigate = vi.fn();
  const client = createClient({ fetch: f, navigate, ...extra });
  const wrapper = ({ children }: { children: ReactNode }) => <SessionProvider client={client}>{children}</SessionProvider>;
  return { f, navigate, client, wrapper };
}

describe('SessionProvider / useSession', () => {
  it('goes from loading to authenticated and shows the user', async () => {
    const gate = deferred<Response>();
    const { client, f } = setup(() => gate.promise);
    render(
      <SessionProvider client={client}>
        <Status />
      </SessionProvider>,
    );
    expect(screen.getByTestId('status').textContent).toBe('loading');
    expect(screen.queryByTestId('user')).toBeNull();
    await act(async () => {
      gate.resolve(json(200, SESSION_OK));
      await gate.promise;
    });
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('authenticated'));
    expect(screen.getByTestId('user').textContent).toBe('Alice Example');
    expect(f.requests.map((r) => r.url)).toEqual(['/session?probe=1']);
  });

  it('goes from loading to unauthenticated on 401', async () => {
    const { client } = setup(() => json(401, { authenticated: false, error: 'unauthenticated' }));
    render(
      <SessionProvider client={client}>
        <Status />
      </SessionProvider>,
    );
    expect(screen.getByTestId('status').textContent).toBe('loading');
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('unauthenticated'));
    expect(screen.getByTestId('reason').textContent).toBe('unauthenticated');
    expect(screen.queryByTestId('user')).toBeNull();
    expect(screen.queryByTestId('error')).toBeNull();
  });

  it('switches to unauthenticated when the client reports session-expired', async () => {
    const { client } = setup((req) =>
      req.url === '/session?probe=1' ? json(200, SESSION_OK) : json(401, { error: 'session_expired' }),
    );
    render(
      <SessionProvider client={client}>
        <Status />
      </SessionProvider>,
    );
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('authenticated'));
    let res: Response | undefined;
    await act(async () => {
      res = await client.fetch('/api/whoami');
    });
    expect(res!.status).toBe(401);
    expect(screen.getByTestId('status').textContent).toBe('unauthenticated');
    expect(screen.getByTestId('reason').textContent).toBe('session_expired');
    expect(screen.queryByTestId('user')).toBeNull();
  });

  it('exposes a /session failure as error and leaves loading', async () => {
    const { client } = setup(() => json(503, { error: 'session_store_unavailable' }));
    render(
      <SessionProvider client={client}>
        <Status />
      </SessionProvider>,
    );
    await waitFor(() => expect(screen.getByTestId('error').textContent).toBe('session_store_unavailable'));
    expect(screen.getByTestId('status').textContent).toBe('unauthenticated');
  });

  it('refresh() fetches the session again and keeps the status on a later failure', async () => {
    let answer: Response = json(401, { error: 'unauthenticated' });
    const { wrapper, f } = setup(() => answer);
    const { result } = renderHook(() => useSession(), { wrapper });
    await waitFor(() => expect(result.current.status).toBe('unauthenticated'));
    answer = json(200, SESSION_OK);
    await act(() => result.current.refresh());
    expect(result.current.status).toBe('authenticated');
    expect(result.current.user).toEqual(ALICE);
    expect(result.current.session).toMatchObject({ mode: 'bff', expiresAt: '2026-11-23T20:00:00Z' });
    answer = json(502, { error: 'idp_unavailable' });
    await act(() => result.current.refresh());
    expect(result.current.status).toBe('authenticated');
    expect(result.current.error).toMatchObject({ code: 'idp_unavailable' });
    expect(f.requests).toHaveLength(3);
  });

  it('ignores a stale /session answer that arrives after session-expired', async () => {
    const gate = deferred<Response>();
    const { client, wrapper } = setup((req) =>
      req.url === '/session?probe=1' ? gate.promise : json(401, { error: 'session_expired' }),
    );
    const { result } = renderHook(() => useSession(), { wrapper });
    expect(result.current.status).toBe('loading');
    await act(async () => {
      await client.fetch('/api/x'); // a 401 from the BFF while /session is still pending
    });
    expect(result.current.status).toBe('unauthenticated');
    await act(async () => {
      gate.resolve(json(200, SESSION_OK));
      await gate.promise;
      await new Promise((r) => setTimeout(r, 0));
    });
    expect(result.current.status).toBe('unauthenticated');
    expect(result.current.session).toEqual({ authenticated: false, reason: 'session_expired' });
  });

  it('login and logout from the hook use the client', async () => {
    const { client, navigate, f } = setup((req) =>
      req.url === '/logout' ? json(200, { logoutUrl: 'https://op.example/end' }) : json(200, SESSION_OK),
    );
    render(
      <SessionProvider client={client}>
        <Status />
      </SessionProvider>,
    );
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('authenticated'));
    fireEvent.click(screen.getByText('log in'));
    expect(navigate).toHaveBeenLastCalledWith('/login?returnTo=%2Fafter');
    fireEvent.click(screen.getByText('log out'));
    await waitFor(() => expect(navigate).toHaveBeenLastCalledWith('https://op.example/end'));
    const logoutReq = f.requests.find((r) => r.url === '/logout')!;
    expect(logoutReq.method).toBe('POST');
    expect(logoutReq.headers.get('X-CSRF')).toBe('1');
  });

  it('makes exactly one effective session load under StrictMode', async () => {
    const { client, f } = setup(() => json(200, SESSION_OK));
    render(
      <StrictMode>
        <SessionProvider client={client}>
          <Status />
        </SessionProvider>
      </StrictMode>,
    );
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('authenticated'));
    expect(f.requests.every((r) => r.url === '/session?probe=1')).toBe(true);
    expect(f.requests.length).toBeGreaterThanOrEqual(1);
    expect(f.requests.length).toBeLessThanOrEqual(2);
  });

  it('throws a helpful error outside the provider', () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(() => renderHook(() => useSession())).toThrow(/inside <SessionProvider/);
  });
});

describe('useAccessToken', () => {
  it('fetches a token once authenticated', async () => {
    const { wrapper, f } = setup((req) =>
      req.url === '/session?probe=1'
        ? json(200, { ...SESSION_OK, mode: 'token-mediating' })
        : json(200, { access_token: 'tok', token_type: 'Bearer', expires_in: 120, scope: 'api' }),
    );
    const { result } = renderHook(() => useAccessToken({ scope: 'api' }), { wrapper });
    expect(result.current.loading).toBe(true);
    expect(result.current.token).toBeNull();
    await waitFor(() => expect(result.current.token).toBe('tok'));
    expect(result.current.loading).toBe(false);
    expect(result.current.error).toBeNull();
    expect(result.current.accessToken).toMatchObject({ tokenType: 'Bearer', scope: 'api' });
    const tokenReqs = f.requests.filter((r) => r.url.startsWith('/token'));
    expect(tokenReqs.map((r) => r.url)).toEqual(['/token?scope=api']);
    expect(tokenReqs[0]!.headers.get('X-CSRF')).toBe('1');
  });

  it('does not ask for a token when logged out', async () => {
    const { wrapper, f } = setup(() => json(401, { error: 'unauthenticated' }));
    const { result } = renderHook(() => useAccessToken(), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.token).toBeNull();
    expect(f.requests.map((r) => r.url)).toEqual(['/session?probe=1']);
  });

  it('reports not_found in plain bff mode', async () => {
    const { wrapper } = setup((req) =>
      req.url === '/session?probe=1' ? json(200, SESSION_OK) : json(404, { error: 'not_found' }),
    );
    const { result } = renderHook(() => useAccessToken(), { wrapper });
    await waitFor(() => expect(result.current.error).not.toBeNull());
    expect(result.current.error).toBeInstanceOf(BffError);
    expect(result.current.error).toMatchObject({ status: 404, code: 'not_found' });
    expect(result.current.token).toBeNull();
    expect(result.current.loading).toBe(false);
  });

  it('a 401 from /token logs the provider out', async () => {
    const { wrapper } = setup((req) =>
      req.url === '/session?probe=1' ? json(200, SESSION_OK) : json(401, { error: 'session_expired' }),
    );
    const { result } = renderHook(() => ({ token: useAccessToken(), session: useSession() }), { wrapper });
    await waitFor(() => expect(result.current.session.status).toBe('unauthenticated'));
    expect(result.current.session.session).toEqual({ authenticated: false, reason: 'session_expired' });
    expect(result.current.token.token).toBeNull();
  });
});

describe('useBffFetch / useBffClient', () => {
  it("returns the client's fetch, which adds the CSRF header", async () => {
    const { wrapper, client, f } = setup(() => json(200, SESSION_OK));
    const { result } = renderHook(() => ({ fetch: useBffFetch(), client: useBffClient() }), { wrapper });
    expect(result.current.fetch).toBe(client.fetch);
    expect(result.current.client).toBe(client);
    await act(async () => {
      await result.current.fetch('/api/whoami');
    });
    const apiReq = f.requests.find((r) => r.url === '/api/whoami')!;
    expect(apiReq.headers.get('X-CSRF')).toBe('1');
    expect(apiReq.credentials).toBe('same-origin');
  });
});

describe('useSession: the fields people expect', () => {
  it('has isLoading, isAuthenticated and error beside status, user and session', async () => {
    const gate = deferred<Response>();
    const { wrapper } = setup(() => gate.promise);
    const { result } = renderHook(() => useSession(), { wrapper });
    expect(result.current).toMatchObject({ status: 'loading', isLoading: true, isAuthenticated: false, user: null, error: null });
    await act(async () => {
      gate.resolve(json(200, SESSION_OK));
      await gate.promise;
    });
    await waitFor(() => expect(result.current.isAuthenticated).toBe(true));
    expect(result.current).toMatchObject({ status: 'authenticated', isLoading: false, user: ALICE, error: null });
  });

  it('starts from initialSession without a loading render', async () => {
    const { client, f } = setup(() => json(200, SESSION_OK));
    const statuses: string[] = [];
    function Probe() {
      const s = useSession();
      statuses.push(s.status);
      return null;
    }
    render(
      <SessionProvider client={client} initialSession={SESSION_OK as never}>
        <Probe />
      </SessionProvider>,
    );
    await waitFor(() => expect(f.requests).toHaveLength(1));
    expect(statuses.length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 'authenticated')).toBe(true);
  });

  it('shows a step-up error and clearError() forgets it', async () => {
    const { client, wrapper } = setup((req) =>
      req.url === '/session?probe=1' ? json(200, SESSION_OK) : json(403, { error: 'insufficient_user_authentication', acr_values: 'urn:mfa' }),
    );
    const { result } = renderHook(() => useSession(), { wrapper });
    await waitFor(() => expect(result.current.isAuthenticated).toBe(true));
    await act(async () => {
      await client.fetch('/api/pay');
    });
    expect(result.current.error).toMatchObject({ name: 'BffStepUpError', acrValues: 'urn:mfa' });
    act(() => result.current.clearError());
    expect(result.current.error).toBeNull();
  });
});

describe('<RequireAuth>', () => {
  function page(client: ReturnType<typeof createClient>, props: Partial<Parameters<typeof RequireAuth>[0]> = {}) {
    return render(
      <SessionProvider client={client}>
        <RequireAuth loading={<p>checking</p>} {...props}>
          <p>secret</p>
        </RequireAuth>
      </SessionProvider>,
    );
  }

  it('renders loading, then the children for a signed-in user, and never starts a login', async () => {
    const { client, navigate } = setup(() => json(200, SESSION_OK));
    page(client);
    expect(screen.getByText('checking')).toBeTruthy();
    await waitFor(() => expect(screen.queryByText('secret')).not.toBeNull());
    expect(screen.queryByText('checking')).toBeNull();
    expect(navigate).not.toHaveBeenCalled();
  });

  it('renders the fallback when signed out, without starting a login', async () => {
    const { client, navigate } = setup(() => json(200, { authenticated: false }));
    page(client, { fallback: <p>please log in</p> });
    await waitFor(() => expect(screen.queryByText('please log in')).not.toBeNull());
    expect(screen.queryByText('secret')).toBeNull();
    expect(navigate).not.toHaveBeenCalled();
  });

  it('starts the login once when signed out and there is no fallback', async () => {
    const { client, navigate } = setup(() => json(200, { authenticated: false }));
    page(client, { loginOptions: { returnTo: '/orders', prompt: 'login' } });
    await waitFor(() => expect(navigate).toHaveBeenCalledTimes(1));
    expect(navigate).toHaveBeenCalledWith('/login?returnTo=%2Forders&prompt=login');
    expect(screen.queryByText('secret')).toBeNull();
    expect(screen.getByText('checking')).toBeTruthy();
  });

  it('does not start a login when /session failed (the BFF may be down), and hides the children', async () => {
    const { client, navigate } = setup(() => json(503, { error: 'session_store_unavailable' }));
    const { container } = page(client);
    await waitFor(() => expect(screen.queryByText('checking')).toBeNull());
    expect(navigate).not.toHaveBeenCalled();
    expect(container.textContent).toBe('');
  });

  it('hides the children as soon as a 401 ends the session', async () => {
    const { client } = setup((req) => (req.url === '/session?probe=1' ? json(200, SESSION_OK) : json(401, { error: 'session_expired' })));
    page(client, { fallback: <p>signed out</p> });
    await waitFor(() => expect(screen.queryByText('secret')).not.toBeNull());
    await act(async () => {
      await client.fetch('/api/x');
    });
    expect(screen.queryByText('secret')).toBeNull();
    expect(screen.getByText('signed out')).toBeTruthy();
  });
});

describe('<RequireAuth> after a failed login', () => {
  afterEach(() => window.history.replaceState(null, '', '/'));
  it('does not start another login when the URL says the last one failed', async () => {
    window.history.replaceState(null, '', '/?error=access_denied');
    const { client, navigate } = setup(() => json(200, { authenticated: false }));
    render(
      <SessionProvider client={client}>
        <RequireAuth>
          <p>secret</p>
        </RequireAuth>
        <Status />
      </SessionProvider>,
    );
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('unauthenticated'));
    expect(screen.getByTestId('error').textContent).toBe('Login failed: access_denied');
    expect(navigate).not.toHaveBeenCalled();
  });
});

describe('SessionProvider with a new client', () => {
  it('makes a new store for it, asks its BFF, and stops listening to the old one', async () => {
    const one = setup(() => json(200, SESSION_OK));
    const two = setup(() => json(200, { authenticated: false }));
    const view = render(
      <SessionProvider client={one.client}>
        <Status />
      </SessionProvider>,
    );
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('authenticated'));
    view.rerender(
      <SessionProvider client={two.client}>
        <Status />
      </SessionProvider>,
    );
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('unauthenticated'));
    expect(two.f.requests).toHaveLength(1);
    const before = one.f.requests.length;
    await act(async () => {
      window.dispatchEvent(new Event('focus'));
      await new Promise((r) => setTimeout(r, 0));
    });
    expect(one.f.requests).toHaveLength(before); // the old store is stopped
    expect(two.f.requests).toHaveLength(2); // the new one asks on focus
  });
});
