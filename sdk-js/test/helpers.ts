import { vi } from 'vitest';

/** One request as the fake fetch saw it. */
export interface RecordedRequest {
  url: string;
  method: string;
  headers: Headers;
  credentials: RequestCredentials | undefined;
  init: RequestInit;
}

export type Handler = (req: RecordedRequest) => Response | Promise<Response>;

/**
 * A fetch stub at the network boundary: records every request and answers with
 * whatever the handler returns. Throwing from the handler simulates a network failure.
 */
export function fakeFetch(handler: Handler) {
  const requests: RecordedRequest[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    const req: RecordedRequest = {
      url,
      method,
      headers: new Headers(init.headers),
      credentials: init.credentials,
      init,
    };
    requests.push(req);
    return handler(req);
  });
  return Object.assign(fn as unknown as typeof fetch, { requests });
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** A promise with its resolve function exposed, to hold a response back. */
export function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export const ALICE = { sub: 'alice', name: 'Alice Example', email: 'alice@example.com' };

export const SESSION_OK = {
  authenticated: true,
  user: ALICE,
  expiresAt: '2026-11-23T20:00:00Z',
  mode: 'bff',
};

/** Path + query of a recorded URL, whatever the origin. */
export function pathOf(url: string): string {
  const u = new URL(url, 'http://app.test');
  return `${u.pathname}${u.search}`;
}
