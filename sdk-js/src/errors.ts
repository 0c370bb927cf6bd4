/**
 * An error answer from the BFF (or from an API behind it) that the client
 * could not turn into a normal result.
 *
 * `code` is the JSON `error` field of the response when there is one
 * (e.g. `session_store_unavailable`, `csrf_header_missing`, `not_found`),
 * otherwise a client-side code:
 *   - `http_error`        the response was not JSON or had no `error` field
 *   - `invalid_response`  a 2xx response whose body was not the expected JSON
 */
export class BffError extends Error {
  override readonly name = 'BffError';
  /** HTTP status of the response (0 is never used: network failures are BffNetworkError). */
  readonly status: number;
  /** Machine-readable error code, from the JSON `error` field when present. */
  readonly code: string;
  /** Human-readable text, from the JSON `error_description` field when present. */
  readonly description: string | undefined;
  /** The parsed JSON body, if the response had one. */
  readonly body: unknown;

  constructor(init: {
    status: number;
    code: string;
    description?: string | undefined;
    message?: string | undefined;
    body?: unknown;
  }) {
    super(
      init.message ??
        `BFF request failed: ${init.status} ${init.code}${init.description ? ` (${init.description})` : ''}`,
    );
    this.status = init.status;
    this.code = init.code;
    this.description = init.description;
    this.body = init.body;
  }
}

/**
 * The request never produced an HTTP response: the BFF is unreachable, DNS
 * failed, CORS blocked the response, the connection was reset, ...
 * The original error is available as `cause`.
 */
export class BffNetworkError extends Error {
  override readonly name = 'BffNetworkError';
  /** The URL that was requested. */
  readonly url: string;

  constructor(url: string, cause: unknown) {
    super(
      `Network error while calling ${url}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.url = url;
  }
}

/** True for the error a fetch rejects with when its AbortSignal fires. */
export function isAbortError(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    ((err as { name?: unknown }).name === 'AbortError' ||
      (err as { name?: unknown }).name === 'TimeoutError')
  );
}
