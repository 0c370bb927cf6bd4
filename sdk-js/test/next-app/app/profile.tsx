'use client';
import { useSession } from '@bffgate/client/react';

export function Profile() {
  const { status, isAuthenticated, user, logout } = useSession();
  if (!isAuthenticated) return <p id="status">{status}</p>;
  return (
    <p id="status">
      Signed in as {user?.name} <button onClick={() => logout()}>Log out</button>
    </p>
  );
}
