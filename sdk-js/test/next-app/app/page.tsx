// A Server Component importing RequireAuth straight from @bffgate/client/react: this only
// builds because that entry starts with 'use client' (a client reference, not server code).
import { RequireAuth } from '@bffgate/client/react';
import { Profile } from './profile';

export default function Home() {
  return (
    <main>
      <h1>bffgate Next.js fixture</h1>
      <RequireAuth loading={<p>Loading…</p>} fallback={<p>Please log in</p>}>
        <Profile />
        <p id="guarded">Orders for a signed-in user</p>
      </RequireAuth>
    </main>
  );
}
