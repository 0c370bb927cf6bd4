package bff

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
	"github.com/bffgate/bffgate/core/session/redisstore"
)

// Modes of operation (Config.Mode).
const (
	// ModeBFF keeps every token on the server (the default).
	ModeBFF = "bff"
	// ModeTokenMediating also hands the JavaScript app a short-lived access
	// token at the token path (RFC 10017, token-mediating backend).
	ModeTokenMediating = "token-mediating"
)

// Config configures one BFF: one OAuth client at one OpenID Provider, in
// front of one set of APIs. The zero value of every optional field means
// its default, given in the field's comment; New fills defaults in and
// validates. Durations are whole seconds, so the same struct is the Kong
// plugin schema and the Tyk config file.
//
// Secrets (ClientSecret, CookieKeys) may be written as "env:NAME" to read
// them from the environment variable NAME when New runs.
type Config struct {
	// Issuer is the OpenID Provider's issuer URL; its discovery document is
	// read from Issuer + "/.well-known/openid-configuration". Required.
	Issuer string `json:"issuer"`
	// ClientID is the client registered at the provider. Required.
	ClientID string `json:"client_id"`
	// ClientSecret is the client's secret. Required for the
	// client_secret_* methods of ClientAuthMethod; unused otherwise.
	ClientSecret string `json:"client_secret"`
	// ClientAuthMethod is how the client authenticates at every endpoint
	// of the provider it calls (token, PAR, revocation, exchange):
	// "client_secret_basic", "client_secret_post", "private_key_jwt" (RFC
	// 7523: a JWT signed with ClientKeys[0]) or "tls_client_auth" (RFC
	// 8705: TLSClientCert). Defaults to "client_secret_basic".
	ClientAuthMethod string `json:"client_auth_method"`
	// ClientKeys are the client's private keys for private_key_jwt, each
	// a PEM (PKCS #8, SEC 1, PKCS #1) or JWK file name, the PEM or JWK
	// itself, or "env:NAME". The first signs; register the public keys at
	// the provider, a new one before it goes first. EC P-256 or RSA of at
	// least 2048 bits.
	ClientKeys []string `json:"client_keys"`
	// ClientKeyID is the kid of ClientKeys[0]. Defaults to the JWK's kid,
	// else its RFC 7638 thumbprint.
	ClientKeyID string `json:"client_key_id"`
	// ClientAssertionAudience is the aud of client assertions: "issuer",
	// "token_endpoint" (the provider's token endpoint URL; Entra ID wants
	// it) or an absolute URL. Defaults to "issuer".
	ClientAssertionAudience string `json:"client_assertion_audience"`
	// ClientKeyAlg signs client assertions: "ES256" (P-256 keys), "PS256"
	// or "RS256" (RSA keys). Defaults to the JWK's alg, else ES256 for EC
	// and RS256 for RSA keys (PS256 under profile fapi2).
	ClientKeyAlg string `json:"client_key_alg"`
	// TLSClientCert and TLSClientKey are the client's certificate (chain)
	// and key for tls_client_auth, PEM files or "env:NAME". The
	// certificate is presented on every call to the provider, so tokens
	// the provider binds to it (RFC 8705 §3) work only from this client.
	TLSClientCert string `json:"tls_client_cert"`
	TLSClientKey  string `json:"tls_client_key"`
	// DPoP asks the provider for DPoP-bound tokens (RFC 9449): each
	// session gets its own P-256 key, kept only in the sealed session,
	// and every token request carries a proof made with it. Routes that
	// ask for it forward the token with a proof of their own. Defaults to
	// false.
	DPoP bool `json:"dpop"`
	// SignedRequestObject sends the authorization request as a JWT signed
	// with ClientKeys[0] (JAR, RFC 9101): pushed with PAR, or by value in
	// the browser's URL without it, where it can be read but not changed.
	// Defaults to false.
	SignedRequestObject bool `json:"signed_request_object"`
	// Resources are the resource indicators (RFC 8707) of the APIs whose
	// routes name one: login asks the provider for all of them, and each
	// such route gets a token for its resource only, kept in the session
	// beside the others. Absolute URIs without fragment. Defaults to none.
	Resources []string `json:"resources"`
	// Profile enforces a security profile: "fapi2" (FAPI 2.0 Security
	// Profile: PAR, PKCE S256, iss, private_key_jwt or tls_client_auth,
	// DPoP or certificate-bound tokens, no fallback). Defaults to "" (none).
	Profile string `json:"profile"`
	// RedirectURL is the absolute URL of the callback path as the browser
	// reaches it, registered at the provider, e.g.
	// "https://app.example.com/oauth/callback". Required.
	RedirectURL string `json:"redirect_url"`
	// Scopes requested at login. Defaults to openid, profile, email and
	// offline_access (for a refresh token).
	Scopes []string `json:"scopes"`
	// Mode is "bff" (tokens never reach the browser) or "token-mediating"
	// (the token path hands out short-lived access tokens). Defaults to
	// "bff".
	Mode string `json:"mode"`

	// PathPrefix is put before every path in Paths, e.g. "/app" when a
	// gateway sees the API's listen path. Defaults to "".
	PathPrefix string `json:"path_prefix"`
	// Paths of the BFF's own endpoints; see Paths for defaults.
	Paths Paths `json:"paths"`
	// DBSC binds sessions to a key on the browser's device (Device Bound
	// Session Credentials), for browsers that support it; see DBSC.
	// Defaults to off.
	DBSC DBSC `json:"dbsc"`

	// CookieName is the session cookie's name. A "__Host-" (or
	// "__Host-Http-") prefix makes browsers refuse it unless Secure, on
	// Path=/ and with no Domain. Defaults to "__Host-bffgate".
	CookieName string `json:"cookie_name"`
	// CookieSameSite is "lax" or "strict". Defaults to "lax". With "strict"
	// the first page load after login does not carry the cookie.
	CookieSameSite string `json:"cookie_same_site"`
	// CookieKeys are base64 (standard or URL) encoded 32-byte keys that
	// seal the short-lived login cookies. The first seals; all open, so a
	// new key goes first and an old one stays until logins begun under it
	// are over (10 minutes). Every node of a gateway needs the same keys.
	// Make one with `openssl rand -base64 32`. Required.
	CookieKeys []string `json:"cookie_keys"`

	// SessionIdleTimeout ends a session not used for this many seconds.
	// Defaults to 28800 (8 hours).
	SessionIdleTimeout int `json:"session_idle_timeout"`
	// SessionMaxLifetime ends a session this many seconds after login,
	// however it is used. Defaults to 86400 (24 hours).
	SessionMaxLifetime int `json:"session_max_lifetime"`
	// SessionMaxPerUser caps a user's sessions at once: a login past the
	// cap ends the user's oldest sessions. Defaults to 0: no cap.
	SessionMaxPerUser int `json:"session_max_per_user"`
	// RefreshSkew refreshes the access token when it expires within this
	// many seconds. Defaults to 30.
	RefreshSkew int `json:"refresh_skew"`

	// CSRFHeader is the header every API request must carry (a custom
	// header forces a CORS preflight cross-origin). Defaults to "X-CSRF".
	CSRFHeader string `json:"csrf_header"`
	// CSRFHeaderValue is the value CSRFHeader must have. Defaults to "1".
	CSRFHeaderValue string `json:"csrf_header_value"`
	// CSRFUnsafeMethodsOnly requires the CSRF header only on methods other
	// than GET, HEAD and OPTIONS, for apps that load API resources with
	// plain links. Defaults to false: every API request needs it.
	CSRFUnsafeMethodsOnly bool `json:"csrf_unsafe_methods_only"`
	// AllowedOrigins are the origins ("https://spa.example.com") of apps
	// allowed to call cross-origin: their Origin header is accepted, the
	// BFF's own responses carry CORS headers with credentials for them, and
	// login may return to them. Same-origin requests are always allowed.
	AllowedOrigins []string `json:"allowed_origins"`

	// PushedAuthorization is "auto" (push the authorization request, RFC
	// 9126, when the provider advertises a
	// pushed_authorization_request_endpoint), "required" (always; a login
	// fails if the provider cannot) or "off". Defaults to "auto".
	PushedAuthorization string `json:"pushed_authorization"`
	// LoginParams are the query parameters of the login path passed on to
	// the provider's authorization request. Defaults to prompt, acr_values,
	// login_hint, max_age and ui_locales.
	LoginParams []string `json:"login_params"`
	// DefaultReturnTo is where the browser lands after login when the login
	// request names no returnTo. Defaults to "/".
	DefaultReturnTo string `json:"default_return_to"`
	// LoginErrorPath is where a failed login (the user denied consent, the
	// login expired, the provider answered an error) sends the browser,
	// with ?error=<code> and, for a provider's refusal,
	// &provider_error=<its code>. Defaults to the login's returnTo, or
	// DefaultReturnTo when the login state is unreadable. Requests that
	// are not page loads (fetch, XHR) get the JSON error instead.
	LoginErrorPath string `json:"login_error_path"`
	// PostLogoutRedirectURL is the absolute URL of the logout callback
	// path, registered at the provider as a post_logout_redirect_uri. When
	// empty, none is sent and the provider decides where logout ends.
	PostLogoutRedirectURL string `json:"post_logout_redirect_url"`
	// LogoutIDTokenHint sends the ID token as id_token_hint in the
	// provider's end-session URL. Off by default: that URL passes through
	// the browser, and a BFF keeps every token off it (RFC 10017); the
	// client_id is sent instead. Turn it on for providers that need the
	// hint to honour post_logout_redirect_url or to skip their
	// confirmation page.
	LogoutIDTokenHint bool `json:"logout_id_token_hint"`
	// PostLogoutReturnTo is where the logout callback sends the browser.
	// Defaults to "/".
	PostLogoutReturnTo string `json:"post_logout_return_to"`

	// UserClaims are the ID token claims the session path shows the app.
	// Defaults to sub, name, given_name, family_name, preferred_username,
	// email and email_verified.
	UserClaims []string `json:"user_claims"`
	// IdentityHeaders are set on every forwarded API request from the
	// session's claims. The client's own headers of these names are always
	// removed first, so a client cannot forge them.
	IdentityHeaders []IdentityHeader `json:"identity_headers"`
	// Policy is what every API request of this engine needs of the
	// session: claims, scopes, acr and a recent login (see Policy). An
	// adapter's route policies are checked on top of it. Defaults to
	// none.
	Policy Policy `json:"policy"`
	// Route is what this engine's API requests ask beyond the config: a
	// resource's token and DPoP proofs (see Route), for adapters whose
	// gateway route is one config (a Tyk API, a Kong plugin instance). A
	// route given to HandleRoute goes instead. Defaults to none.
	Route Route `json:"route"`

	// PublicPaths are path prefixes (as the BFF sees paths, e.g. "/static/"
	// or "/" for a whole site) whose requests go upstream without a
	// session: no bearer is set, and the BFF's cookies and the client's
	// identity headers (and their look-alikes) are removed. Use it for the
	// SPA's own files and APIs that take bearer tokens themselves, when
	// the gateway runs the BFF for them too (Tyk, Kong). The BFF's own
	// paths stay the BFF's. Defaults to none.
	PublicPaths []string `json:"public_paths"`
	// AllowedMethods are the methods forwarded upstream; any other is
	// answered 405. Defaults to GET, HEAD, POST, PUT, PATCH, DELETE and
	// OPTIONS: TRACE would reflect the bearer back to the browser (RFC
	// 9110 §9.3.8), CONNECT and unknown methods have no place in an API.
	AllowedMethods []string `json:"allowed_methods"`

	// TokenExchangeAudience, in token-mediating mode, makes the token path
	// exchange the session's access token (RFC 8693) for one limited to
	// this audience. When empty, the session's own token is handed out
	// unless the app asks for less scope or a resource, or the token lives
	// longer than TokenMaxLifetime and the provider supports the exchange.
	TokenExchangeAudience string `json:"token_exchange_audience"`
	// TokenMaxLifetime, in token-mediating mode, is the longest remaining
	// lifetime in seconds of an access token handed to the browser as it
	// is; a longer-lived one is exchanged (RFC 8693) when the provider
	// supports it. Defaults to 300.
	TokenMaxLifetime int `json:"token_max_lifetime"`

	// HTTPTimeout bounds every call to the provider, in seconds. Defaults
	// to 10.
	HTTPTimeout int `json:"http_timeout"`

	// Redis keeps sessions in Redis (standalone, Sentinel or Cluster), so
	// every gateway node sees every session and only one refreshes a
	// session at a time. Used when redis.url or redis.addrs is set; see
	// package redisstore for the fields. Otherwise sessions live in this
	// process's memory (one gateway node only).
	Redis redisstore.Config `json:"redis"`
	// MemoryMaxSessions caps the sessions the in-process store keeps (used
	// without Redis and Store); at the cap, a login ends the least recently
	// used session. Defaults to 100000 (memstore.DefaultMaxSessions).
	MemoryMaxSessions int `json:"memory_max_sessions"`

	// Store keeps sessions, for Go callers with a store of their own.
	// Overrides Redis. Defaults to the Redis store when configured, else
	// an in-process memory store.
	Store session.Store `json:"-"`
	// HTTPClient makes the calls to the provider. Defaults to a client
	// with HTTPTimeout.
	HTTPClient *http.Client `json:"-"`
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time `json:"-"`
	// Observer receives the engine's requests, refreshes, provider and
	// store calls, and session starts and ends, for metrics. Defaults to
	// none.
	Observer Observer `json:"-"`
	// Logger receives the BFF's events; never tokens. Defaults to
	// slog.Default().
	Logger *slog.Logger `json:"-"`
	// SessionEnded, when not nil, is called with the keys (as
	// Result.Session names them) of sessions this engine ended: logout,
	// back-channel logout, the user's list, the per-user cap, a refused
	// refresh, the maximum lifetime. An adapter that holds connections
	// open (WebSocket, Server-Sent Events) closes theirs. It must not
	// block. Defaults to none.
	SessionEnded func(keys []string) `json:"-"`
}

// Paths are the BFF endpoints' paths, each below Config.PathPrefix.
type Paths struct {
	Login             string `json:"login"`              // defaults to "/login"
	Callback          string `json:"callback"`           // defaults to "/oauth/callback"
	Session           string `json:"session"`            // defaults to "/session"
	Token             string `json:"token"`              // defaults to "/token"
	Logout            string `json:"logout"`             // defaults to "/logout"
	LogoutCallback    string `json:"logout_callback"`    // defaults to "/logout/callback"
	BackchannelLogout string `json:"backchannel_logout"` // defaults to "/backchannel-logout"
	Sessions          string `json:"sessions"`           // defaults to "/sessions"
}

// IdentityHeader sets one upstream header from one claim of the session.
type IdentityHeader struct {
	Header string `json:"header"` // e.g. "X-User-Id"
	Claim  string `json:"claim"`  // e.g. "sub"; strings, numbers and booleans are sent
}

// ConfigError is a configuration mistake: which field, what is wrong, and
// how to fix it.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return "bffgate: config: " + e.Field + ": " + e.Msg }

func cfgErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// WithDefaults returns c with every zero optional field set to its
// default, as New fills them in: for tools that show the defaults (the
// Kong plugin's schema). It does not validate.
func (c Config) WithDefaults() Config { return c.withDefaults() }

// withDefaults returns c with every zero optional field set to its
// default. It is the one place defaults live.
func (c Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "profile", "email", "offline_access"}
	}
	c.profileDefaults()
	def(&c.Mode, ModeBFF)
	def(&c.PushedAuthorization, PARAuto)
	def(&c.ClientAuthMethod, AuthSecretBasic)
	def(&c.Paths.Login, "/login")
	def(&c.Paths.Callback, "/oauth/callback")
	def(&c.Paths.Session, "/session")
	def(&c.Paths.Token, "/token")
	def(&c.Paths.Logout, "/logout")
	def(&c.Paths.LogoutCallback, "/logout/callback")
	def(&c.Paths.BackchannelLogout, "/backchannel-logout")
	def(&c.Paths.Sessions, "/sessions")
	def(&c.CookieName, "__Host-bffgate")
	defInt(&c.DBSC.BoundCookieTTL, 600)
	def(&c.DBSC.RegistrationPath, "/dbsc/register")
	def(&c.DBSC.RefreshPath, "/dbsc/refresh")
	def(&c.CookieSameSite, "lax")
	defInt(&c.SessionIdleTimeout, 8*3600)
	defInt(&c.SessionMaxLifetime, 24*3600)
	defInt(&c.RefreshSkew, 30)
	def(&c.CSRFHeader, "X-CSRF")
	def(&c.CSRFHeaderValue, "1")
	if c.LoginParams == nil {
		c.LoginParams = []string{"prompt", "acr_values", "login_hint", "max_age", "ui_locales"}
	}
	def(&c.DefaultReturnTo, "/")
	def(&c.PostLogoutReturnTo, "/")
	if len(c.UserClaims) == 0 {
		c.UserClaims = []string{"sub", "name", "given_name", "family_name", "preferred_username", "email", "email_verified"}
	}
	if len(c.AllowedMethods) == 0 {
		c.AllowedMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	}
	defInt(&c.TokenMaxLifetime, 300)
	defInt(&c.HTTPTimeout, 10)
	defInt(&c.MemoryMaxSessions, memstore.DefaultMaxSessions)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: time.Duration(c.HTTPTimeout) * time.Second}
	}
	return c
}

// redisConfigured reports whether the config asks for the Redis store.
func (c *Config) redisConfigured() bool {
	return c.Redis.URL != "" || len(c.Redis.Addrs) > 0
}

// newRedisStore builds the Redis store, with its config errors named
// under redis.
func (c *Config) newRedisStore() (*redisstore.Store, error) {
	st, err := redisstore.New(c.Redis)
	var re *redisstore.ConfigError
	if errors.As(err, &re) {
		return nil, cfgErr("redis."+re.Field, "%s", re.Msg)
	}
	return st, err
}

type pathField struct {
	field string
	path  *string
}

func (c *Config) paths() []pathField {
	p := &c.Paths
	return []pathField{
		{"login", &p.Login}, {"callback", &p.Callback}, {"session", &p.Session}, {"token", &p.Token},
		{"logout", &p.Logout}, {"logout_callback", &p.LogoutCallback}, {"backchannel_logout", &p.BackchannelLogout},
		{"sessions", &p.Sessions},
	}
}
