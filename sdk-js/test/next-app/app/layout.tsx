// A Server Component: reads the session the way a real app would (here a fixed one, as
// there is no BFF at build time) and hands it to the client-side provider.
import type { Metadata } from 'next';
import type { ReactNode } from 'react';
import { serverSession } from './server-session';
import { Providers } from './providers';

// No favicon request (it would 404 here, a console error the hydration check would see).
export const metadata: Metadata = { icons: { icon: 'data:,' } };

export default async function RootLayout({ children }: { children: ReactNode }) {
  const session = await serverSession();
  return (
    <html lang="en">
      <body>
        <Providers initialSession={session}>{children}</Providers>
      </body>
    </html>
  );
}
