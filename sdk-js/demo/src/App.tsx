import { useState } from 'react';
import { BffError, BffLoginError, BffNetworkError } from '@bffgate/client';
import { useBffClient, useSession } from '@bffgate/client/react';

/** Base URL of the API route that validates bearer tokens itself (not behind the BFF). */
const DIRECT_API_BASE: string = import.meta.env.VITE_DIRECT_API_BASE ?? '';

interface ApiCall {
  status: number;
  body: string;
}

function describeError(err: unknown): string {
  if (err instanceof BffError) return `${err.status} ${err.code}${err.description ? `: ${err.description}` : ''}`;
  if (err instanceof BffNetworkError) return `Network error: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

async function readBody(res: Response): Promise<string> {
  const text = await res.text();
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function App() {
  const { status, user, session, error, login, logout } = useSession();
  const [loggingOut, setLoggingOut] = useState(false);
  const [logoutError, setLogoutError] = useState<string | null>(null);

  const onLogout = () => {
    setLoggingOut(true);
    setLogoutError(null);
    logout().catch((err: unknown) => {
      setLoggingOut(false);
      setLogoutError(describeError(err));
    });
  };

  return (
    <main>
      <header>
        <h1>bffgate demo</h1>
        <p className="muted">
          A browser app without OAuth tokens: the BFF keeps them server-side and the browser only holds an
          HttpOnly session cookie.
        </p>
      </header>

      <section className="card" aria-labelledby="session-title">
        <h2 id="session-title">Session</h2>
        {status === 'loading' && <p id="loading">Loading…</p>}

        {status === 'unauthenticated' && (
          <>
            <p id="logged-out">
              {session && !session.authenticated && session.reason === 'session_expired'
                ? 'Your session has expired. You are logged out.'
                : 'You are logged out.'}
            </p>
            <button id="login" type="button" className="primary" onClick={() => login({ returnTo: '/' })}>
              Log in
            </button>
          </>
        )}

        {status === 'authenticated' && user && (
          <>
            <p>
              Signed in as <strong id="user-name">{user.name ?? user.sub}</strong>
              {user.email && (
                <>
                  {' '}
                  &lt;<span id="user-email">{user.email}</span>&gt;
                </>
              )}
            </p>
            <dl className="facts">
              <dt>Subject</dt>
              <dd id="user-sub">{user.sub}</dd>
              <dt>BFF mode</dt>
              <dd id="mode">{session?.authenticated ? (session.mode ?? 'unknown') : 'unknown'}</dd>
              {session?.authenticated && session.expiresAt && (
                <>
                  <dt>Session ends</dt>
                  <dd id="expires-at">{new Date(session.expiresAt).toLocaleString()}</dd>
                </>
              )}
            </dl>
            <button id="logout" type="button" onClick={onLogout} disabled={loggingOut}>
              {loggingOut ? 'Logging out…' : 'Log out'}
            </button>
            {logoutError && (
              <p id="logout-error" className="error" role="alert">
                Logout failed: {logoutError}
              </p>
            )}
          </>
        )}

        {error instanceof BffLoginError ? (
          <p id="login-error" className="error" role="alert">
            Login failed: {error.code}
            {error.description ? ` (${error.description})` : ''}
          </p>
        ) : (
          error && (
            <p id="session-error" className="error" role="alert">
              Could not load the session: {describeError(error)}
            </p>
          )
        )}
      </section>

      {status === 'authenticated' && (
        <>
          <BffApiSection />
          <TokenSection mode={session?.authenticated ? session.mode : undefined} />
        </>
      )}
    </main>
  );
}

/** BFF mode: the browser calls the API through the BFF with its cookie and the CSRF header. */
function BffApiSection() {
  const client = useBffClient();
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ApiCall | null>(null);
  const [error, setError] = useState<string | null>(null);

  const call = async () => {
    setBusy(true);
    setError(null);
    try {
      const res = await client.fetch('/api/whoami', { headers: { Accept: 'application/json' } });
      setResult({ status: res.status, body: await readBody(res) });
    } catch (err) {
      setResult(null);
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="bff-title">
      <h2 id="bff-title">Call an API through the BFF</h2>
      <p className="muted">
        <code>GET /api/whoami</code> with the session cookie and <code>{client.config.csrfHeader.name}</code>; the BFF
        swaps the cookie for a bearer token upstream.
      </p>
      <button id="call-api" type="button" className="primary" onClick={() => void call()} disabled={busy}>
        Call API via BFF
      </button>
      {error && (
        <p id="api-error" className="error" role="alert">
          {error}
        </p>
      )}
      {result && (
        <>
          <p id="api-status" className={result.status < 400 ? 'ok' : 'error'}>
            HTTP {result.status}
          </p>
          <pre id="api-result">{result.body}</pre>
        </>
      )}
    </section>
  );
}

/** Token-mediating mode: the BFF hands out a short-lived access token and the browser calls the API itself. */
function TokenSection({ mode }: { mode: string | undefined }) {
  const client = useBffClient();
  const [busy, setBusy] = useState(false);
  const [tokenInfo, setTokenInfo] = useState<{ length: number; expiresIn: number; scope?: string } | null>(null);
  const [result, setResult] = useState<ApiCall | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [modeOff, setModeOff] = useState(false);

  const call = async () => {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const token = await client.getAccessToken();
      setModeOff(false);
      setTokenInfo({ length: token.accessToken.length, expiresIn: token.expiresIn, ...(token.scope ? { scope: token.scope } : {}) });
      const res = await fetch(`${DIRECT_API_BASE}/direct/whoami`, {
        headers: { Authorization: `${token.tokenType || 'Bearer'} ${token.accessToken}`, Accept: 'application/json' },
        credentials: 'omit',
      });
      setResult({ status: res.status, body: await readBody(res) });
    } catch (err) {
      if (err instanceof BffError && err.status === 404) {
        setModeOff(true);
        setTokenInfo(null);
      } else {
        setError(describeError(err));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="token-title">
      <h2 id="token-title">Token-mediating mode</h2>
      <p className="muted">
        Gets an access token from <code>{client.config.paths.token}</code> and calls <code>GET /direct/whoami</code>{' '}
        with <code>Authorization: Bearer …</code> and no cookie. That API checks the token itself.
      </p>
      <button id="call-api-token" type="button" className="primary" onClick={() => void call()} disabled={busy}>
        Call API with an access token
      </button>
      {(modeOff || mode === 'bff') && (
        <p id="token-mode-off" className="note">
          The server runs in plain BFF mode: token-mediating mode is off, so <code>{client.config.paths.token}</code>{' '}
          answers 404 and the browser gets no access tokens. Call APIs through the BFF instead.
        </p>
      )}
      {tokenInfo && (
        <p id="token-info" className="ok">
          Got an access token ({tokenInfo.length} characters, expires in {tokenInfo.expiresIn} s
          {tokenInfo.scope ? `, scope "${tokenInfo.scope}"` : ''}). The token itself is not shown.
        </p>
      )}
      {error && (
        <p id="api-token-error" className="error" role="alert">
          {error}
        </p>
      )}
      {result && (
        <>
          <p id="api-token-status" className={result.status < 400 ? 'ok' : 'error'}>
            HTTP {result.status}
          </p>
          <pre id="api-token-result">{result.body}</pre>
        </>
      )}
    </section>
  );
}
