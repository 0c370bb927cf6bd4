export { createClient, joinUrl, DEFAULT_PATHS, DEFAULT_CSRF_HEADER, DEFAULT_TOKEN_REFRESH_MARGIN, SESSION_ERROR_CODES } from './client.js';
export { BffError, BffNetworkError } from './errors.js';
export type {
  AccessToken,
  AccessTokenOptions,
  AuthenticatedSession,
  BffClient,
  BffClientOptions,
  BffEvents,
  BffMode,
  BffPaths,
  CsrfHeader,
  LoginOptions,
  LogoutOptions,
  Session,
  UnauthenticatedSession,
  User,
} from './types.js';
