import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient } from '@bffgate/client';
import { SessionProvider } from '@bffgate/client/react';
import { App } from './App';
import './styles.css';

// Same origin as the BFF by default. VITE_BFF_BASE_URL (at build time) points it elsewhere.
const client = createClient({ baseUrl: import.meta.env.VITE_BFF_BASE_URL ?? '' });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SessionProvider client={client}>
      <App />
    </SessionProvider>
  </StrictMode>,
);
