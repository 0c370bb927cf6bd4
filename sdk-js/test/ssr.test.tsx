// @vitest-environment jsdom
// Server render + hydration as Next.js or Remix do it: the server renders with the session it
// read (or without one: `loading`), the browser hydrates the same markup. React reports a
// mismatch through console.error or onRecoverableError; the last test shows that it does.
import { act } from 'react';
import { hydrateRoot, type Root } from 'react-dom/client';
import { renderToString } from 'react-dom/server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createClient, type Session } from '../src/index.js';
import { RequireAuth, SessionProvider, useSession } from '../src/react.js';
import { SESSION_OK, fakeFetch, json } from './helpers.js';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

function App() {
  const { status, user } = useSession();
  return (
    <main>
      <p id="status">{status}</p>
      <p id="name">{user?.name ?? 'nobody'}</p>
      <RequireAuth fallback={<a href="/login">Log in</a>} loading={<span>…</span>}>
        <p id="secret">orders</p>
      </RequireAuth>
    </main>
  );
}

function page(initialSession: Session | undefined) {
  const client = createClient({
    fetch: fakeFetch(() => json(200, SESSION_OK)),
    navigate: () => {},
  });
  return (
    <SessionProvider client={client} initialSession={initialSession} crossTab={false}>
      <App />
    </SessionProvider>
  );
}

let root: Root | null = null;
afterEach(() => {
  act(() => root?.unmount());
  root = null;
  document.body.innerHTML = '';
});

async function serverThenHydrate(serverSession: Session | undefined, browserSession: Session | undefined) {
  const html = renderToString(page(serverSession));
  const container = document.createElement('div');
  container.innerHTML = html;
  document.body.appendChild(container);
  const consoleError = vi.spyOn(console, 'error');
  const recoverable = vi.fn();
  await act(async () => {
    root = hydrateRoot(container, page(browserSession), { onRecoverableError: recoverable });
  });
  // let the /session check answer and render
  await act(async () => {
    await new Promise((r) => setTimeout(r, 10));
  });
  return { html, container, problems: [...consoleError.mock.calls, ...recoverable.mock.calls] };
}

describe('SSR: renderToString + hydrateRoot', () => {
  it('a signed-in page rendered on the server hydrates with no warning', async () => {
    const { html, container, problems } = await serverThenHydrate(SESSION_OK as Session, SESSION_OK as Session);
    expect(html).toContain('authenticated');
    expect(html).toContain('Alice Example');
    expect(html).toContain('orders');
    expect(problems).toEqual([]);
    expect(container.querySelector('#secret')?.textContent).toBe('orders');
  });

  it('a signed-out page hydrates with no warning', async () => {
    const signedOut: Session = { authenticated: false, reason: 'unauthenticated' };
    const { html, problems } = await serverThenHydrate(signedOut, signedOut);
    expect(html).toContain('Log in');
    expect(problems).toEqual([]);
  });

  it('without an initial session: loading on the server, loading at hydration, then the session', async () => {
    const { html, container, problems } = await serverThenHydrate(undefined, undefined);
    expect(html).toContain('loading');
    expect(problems).toEqual([]);
    expect(container.querySelector('#status')?.textContent).toBe('authenticated');
  });

  it('the check bites: a browser that starts from another session than the server reports a mismatch', async () => {
    const { problems } = await serverThenHydrate({ authenticated: false }, SESSION_OK as Session);
    expect(problems.length).toBeGreaterThan(0);
  });
});
