'use client';
// The app's client module: one client for the browser, the provider around the pages.
import type { ReactNode } from 'react';
import { createClient, type Session } from '@bffgate/client';
import { SessionProvider } from '@bffgate/client/react';

const bff = createClient();

export function Providers({ initialSession, children }: { initialSession?: Session; children: ReactNode }) {
  return (
    <SessionProvider client={bff} initialSession={initialSession} crossTab={true}>
      {children}
    </SessionProvider>
  );
}
