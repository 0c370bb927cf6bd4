/**
 * Every `error` code bffgate itself answers with (the engine and its
 * gateway adapters), as docs/config.md lists them; a Go test holds this
 * list to the engine's. APIs behind the BFF may answer other codes, so
 * `BffError.code` is a `BffErrorCode` or any other string.
 */
export type BffErrorCode =
  | 'uri_too_long'
  | 'cookie_too_large'
  | 'invalid_path'
  | 'method_not_allowed'
  | 'origin_not_allowed'
  | 'csrf_header_missing'
  | 'invalid_request'
  | 'not_found'
  | 'internal_error'
  | 'invalid_return_to'
  | 'invalid_state'
  | 'invalid_issuer'
  | 'invalid_grant'
  | 'invalid_id_token'
  | 'invalid_nonce'
  | 'login_failed'
  | 'unauthenticated'
  | 'invalid_session'
  | 'session_expired'
  | 'session_store_unavailable'
  | 'insufficient_scope'
  | 'insufficient_user_authentication'
  | 'dbsc_refresh_required'
  | 'invalid_scope'
  | 'exchange_unsupported'
  | 'idp_unavailable'
  | 'idp_error'
  | 'idp_timeout'
  | 'timeout'
  | 'bffgate_config_invalid'
  | 'bffgate_no_api'
  | 'bffgate_unavailable'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  | 'body_too_large'
  | 'body_timeout';
