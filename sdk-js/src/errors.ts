import type { BffErrorCode } from './codes.js';

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
  override readonly name: string = 'BffError';
  /** HTTP status of the response (0 is never used: network failures are BffNetworkError). */
  readonly status: number;
  /** Machine-readable error code, from the JSON `error` field when present. */
  readonly code: BffErrorCode | 'http_error' | 'invalid_response' | (string & {});
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

/**
 * The API needs a stronger or fresher login (OAuth step-up, RFC 9470): a 401
 * or 403 whose JSON `error` (or `WWW-Authenticate` `error`) is
 * `insufficient_user_authentication`. Log in again with the `acr_values`
 * (and `max_age`) it asks for: `client.login({ acr_values: err.acrValues })`.
 */
export class BffStepUpError extends BffError {
  override readonly name = 'BffStepUpError';
  /** The `acr_values` the API asks for, if it said. */
  readonly acrValues: string | undefined;
  /** The `max_age` (seconds since the last login) the API asks for, if it said. */
  readonly maxAge: number | undefined;

  constructor(init: { status: number; body?: unknown; description?: string | undefined; acrValues?: string | undefined; maxAge?: number | undefined }) {
    super({ ...init, code: 'insufficient_user_authentication' });
    this.acrValues = init.acrValues;
    this.maxAge = init.maxAge;
  }
}

/**
 * A login that failed: the BFF sent the browser back to the app with
 * `?error=<code>` (and maybe `error_description`), e.g. `access_denied` when
 * the user declined consent. The session store reads it from the URL it lands
 * on and removes it from the address bar.
 */
export class BffLoginError extends Error {
  override readonly name = 'BffLoginError';
  /** The `error` code, e.g. `access_denied`, `login_required`, `invalid_state`. */
  readonly code: string;
  /** The `error_description`, if any. */
  readonly description: string | undefined;

  constructor(code: string, description?: string) {
    super(`Login failed: ${code}${description ? ` (${description})` : ''}`);
    this.code = code;
    this.description = description;
  }
}
