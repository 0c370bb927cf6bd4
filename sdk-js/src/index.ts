export { createClient, joinUrl, DEFAULT_PATHS, DEFAULT_CSRF_HEADER, DEFAULT_TOKEN_REFRESH_MARGIN, SESSION_ERROR_CODES } from './client.js';
export { BffError, BffLoginError, BffNetworkError, BffStepUpError } from './errors.js';
export { createSessionStore, takeLoginError } from './store.js';
export type { SessionState, SessionStatus, SessionStore, SessionStoreOptions } from './store.js';
export type { BffErrorCode } from './codes.js';
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
  SessionInfo,
  UnauthenticatedSession,
  User,
} from './types.js';
