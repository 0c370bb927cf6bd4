// Server-only code importing the core entry: createClient must load in the server
// (React Server Components) environment without touching window or document. 'server-only'
// as in the README's guide: Next.js resolves it itself (there is no such package installed here).
import 'server-only';
import { createClient, type Session } from '@bffgate/client';

export async function serverSession(): Promise<Session> {
  const bff = createClient({
    baseUrl: 'http://bffgate.invalid',
    // No BFF at build time: answer /session as a signed-in BFF would.
    fetch: async () =>
      new Response(
        JSON.stringify({ authenticated: true, user: { sub: 'u-1', name: 'Alice' }, expiresAt: '2099-01-01T00:00:00Z' }),
        { status: 200, headers: { 'content-type': 'application/json' } },
      ),
  });
  return bff.getSession();
}
