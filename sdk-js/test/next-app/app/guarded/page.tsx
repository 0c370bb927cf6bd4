// The same guard without a fallback: in the browser it would start the login; on the server
// (and in this prerendered page) it renders the children for the signed-in initial session.
import { RequireAuth } from '@bffgate/client/react';
import { Profile } from '../profile';

export default function Guarded() {
  return (
    <RequireAuth loading={<p>Loading…</p>}>
      <Profile />
    </RequireAuth>
  );
}
