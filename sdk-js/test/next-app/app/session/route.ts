// Stands in for the BFF's GET /session, which the browser asks once after hydration (in a
// real deployment the gateway routes /session to bffgate, not to Next.js). Without it that
// request would 404 and print a console error the hydration check must not have to ignore.
export const dynamic = 'force-static';

export function GET() {
  return Response.json({ authenticated: true, user: { sub: 'u-1', name: 'Alice' }, expiresAt: '2099-01-01T00:00:00Z' });
}
