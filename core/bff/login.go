package bff

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/bffgate/bffgate/core/session"
)

// Login state lives in a sealed cookie per login flow, so abandoned logins
// cost the store nothing and several tabs can log in at once.
const (
	loginTTL       = 10 * time.Minute
	maxLoginFlows  = 4 // login cookies kept at once; the oldest go first
	maxStateLength = 256
)

// loginState is sealed into a login cookie at /login and opened at the
// callback.
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	Created  int64  `json:"t"` // Unix seconds
	// What a step-up login asked for, checked at the callback (stepup.go).
	ACRValues string `json:"a,omitempty"`
	MaxAge    *int   `json:"m,omitempty"`
}

// loginCookieName names a flow's cookie after a hash of its state, so the
// callback finds its own cookie among several.
func (b *Engine) loginCookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	return b.loginPrefix + base64.RawURLEncoding.EncodeToString(sum[:12])
}

func randomString() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newGCM(key [32]byte) cipher.AEAD {
	block, _ := aes.NewCipher(key[:]) // a 32-byte key is always valid
	gcm, _ := cipher.NewGCM(block)
	return gcm
}

// sealLogin encrypts st under the first cookie key, bound to the cookie's
// name.
func (b *Engine) sealLogin(name string, st *loginState) string {
	plain := marshalLogin(st)
	gcm := newGCM(b.keys[0])
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(plain)+gcm.Overhead())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(gcm.Seal(nonce, nonce, plain, []byte(name)))
}

// marshalLogin encodes st as JSON without HTML escaping: "<" stays one
// byte, not six, so a returnTo cannot inflate the cookie.
func marshalLogin(st *loginState) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(st) // only strings and an int64
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// maxReturnTo bounds a returnTo as sealed (JSON escaped), so that
// maxLoginFlows login cookies stay under 8 KiB, the smallest Cookie header
// limit of common servers (nginx's large_client_header_buffers).
const maxReturnTo = 1024

var errLoginCookie = errors.New("login cookie invalid")

// openLogin decrypts a login cookie with any of the cookie keys and checks
// its age.
func (b *Engine) openLogin(name, value string) (*loginState, error) {
	if len(value) > 2048 {
		return nil, errLoginCookie
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(value)
	if err != nil || len(raw) < 12+16 {
		return nil, errLoginCookie
	}
	for _, k := range b.keys {
		gcm := newGCM(k)
		plain, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], []byte(name))
		if err != nil {
			continue
		}
		var st loginState
		if json.Unmarshal(plain, &st) != nil {
			return nil, errLoginCookie
		}
		age := b.now().Sub(time.Unix(st.Created, 0))
		if age < -time.Minute || age > loginTTL {
			return nil, errLoginCookie
		}
		return &st, nil
	}
	return nil, errLoginCookie
}

// login starts the authorization code flow (GET).
func (b *Engine) login(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return b.methodNotAllowed(req, "GET")
	}
	q, err := url.ParseQuery(req.RawQuery)
	if err != nil {
		return b.answer(req, fail(http.StatusBadRequest, CodeInvalidRequest, "the query string is malformed"))
	}
	returnTo := b.cfg.DefaultReturnTo
	if rt := firstOf(q, "returnTo", "return_to"); rt != "" {
		var ok bool
		if returnTo, ok = b.safeReturnTo(rt); !ok {
			return b.answer(req, fail(http.StatusBadRequest, CodeInvalidReturnTo, "returnTo must be a path on this site or a URL of an allowed origin"))
		}
	}
	su, err := b.stepUpParams(q)
	if err != nil {
		return b.answer(req, err)
	}
	p, err := b.prov.get(ctx)
	if err != nil {
		return b.answer(req, idpFailure(err))
	}
	st := &loginState{
		State: randomString(), Nonce: randomString(), Verifier: oauth2.GenerateVerifier(),
		ReturnTo: returnTo, Created: b.now().Unix(), ACRValues: su.ACRValues, MaxAge: su.MaxAge,
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)}
	for name, vals := range q {
		if b.loginParams[name] && len(vals) == 1 && len(vals[0]) <= 256 {
			opts = append(opts, oauth2.SetAuthURLParam(name, vals[0]))
		}
	}
	name := b.loginCookieName(st.State)
	cookies := append(b.expireOldLogins(req.Header), b.cookie(name, b.sealLogin(name, st), int(loginTTL/time.Second), "Lax"))
	to, err := b.authURL(ctx, p, st.State, opts...)
	if err != nil {
		var f *failure
		if !errors.As(err, &f) {
			b.logLimited(slog.LevelWarn, "bffgate: pushed authorization request failed", "error", err)
			f = idpFailure(err)
		}
		return b.answer(req, f)
	}
	return redirect(to, cookies...)
}

// expireOldLogins returns Set-Cookie values deleting login cookies beyond
// what may live at once (making room for one more), oldest and unreadable
// first, so abandoned logins never grow the Cookie header past a server's
// limit.
func (b *Engine) expireOldLogins(h http.Header) []string {
	type flow struct {
		name    string
		created int64
	}
	var flows []flow
	forEachCookie(h, func(n, v string) bool {
		if strings.HasPrefix(n, b.loginPrefix) {
			f := flow{name: n}
			if st, err := b.openLogin(n, v); err == nil {
				f.created = st.Created
			}
			flows = append(flows, f)
		}
		return true
	})
	if len(flows) < maxLoginFlows {
		return nil
	}
	if len(flows) > 16 { // the Cookie header is bounded; this answer too
		flows = flows[:16]
	}
	slices.SortFunc(flows, func(a, b flow) int { return int(a.created - b.created) })
	var out []string
	for _, f := range flows[:len(flows)-maxLoginFlows+1] {
		out = append(out, b.cookie(f.name, "", -1, "Lax"))
	}
	return out
}

// expireLogins returns Set-Cookie values deleting every login cookie of
// the request (at most 16).
func (b *Engine) expireLogins(h http.Header) []string {
	var out []string
	forEachCookie(h, func(n, _ string) bool {
		if strings.HasPrefix(n, b.loginPrefix) {
			out = append(out, b.cookie(n, "", -1, "Lax"))
		}
		return len(out) < 16
	})
	return out
}

// safeReturnTo accepts a path on this site, or an absolute URL on an
// allowed origin, and returns it normalized. Anything a browser could read
// as another origin ("//evil", "/\evil", "https:evil", control characters)
// is refused.
func (b *Engine) safeReturnTo(rt string) (string, bool) {
	if len(rt) > maxReturnTo {
		return "", false
	}
	if len(marshalLogin(&loginState{ReturnTo: rt})) > maxReturnTo+len(`{"s":"","n":"","v":"","r":"","t":0}`) {
		return "", false // JSON escapes count
	}
	if isLocalPath(rt) {
		return rt, true
	}
	u, err := url.Parse(rt)
	if err != nil || u.User != nil || u.Opaque != "" || strings.ContainsAny(rt, "\\\t\r\n") {
		return "", false
	}
	origin := u.Scheme + "://" + u.Host
	if !b.origins[origin] || (u.Path != "" && !isLocalPath(u.Path)) {
		return "", false
	}
	return u.String(), true
}

func firstOf(q url.Values, names ...string) string {
	for _, n := range names {
		if v := q.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// callback finishes the code flow (GET). Whatever the outcome, the flow's
// login cookie is deleted: a login state is used once.
func (b *Engine) callback(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodGet {
		return b.methodNotAllowed(req, "GET")
	}
	q, err := url.ParseQuery(req.RawQuery)
	if err != nil {
		return b.loginFailed(req, nil, fail(http.StatusBadRequest, CodeInvalidRequest, "the query string is malformed"))
	}
	state := q.Get("state")
	if state == "" || len(state) > maxStateLength || len(q["state"]) != 1 {
		return b.loginFailed(req, nil, fail(http.StatusBadRequest, CodeInvalidState, "the state parameter is missing or malformed"))
	}
	name := b.loginCookieName(state)
	clear := b.cookie(name, "", -1, "Lax")
	st, err := b.loginOf(req, name, state)
	var s *session.Session
	if err == nil {
		s, err = b.authorized(ctx, q, st)
	}
	var cookie string
	if err == nil {
		b.logStepUp(ctx, req, s, st)
		cookie, err = b.startSession(ctx, req, s)
	}
	if err != nil {
		return b.loginFailed(req, st, err, clear)
	}
	r := redirect(st.ReturnTo, clear, cookie)
	b.offerDBSC(ctx, &r, cookie)
	return r
}

// loginFailed answers a failed callback, deleting the given cookies: a
// page load goes back to the app with the error in its query; a script
// gets the JSON error.
func (b *Engine) loginFailed(req *Request, st *loginState, err error, cookies ...string) Result {
	if navigation(req) {
		return redirect(b.loginErrorURL(st, err), cookies...)
	}
	r := b.answer(req, err)
	r.Header["Set-Cookie"] = append(r.Header["Set-Cookie"], cookies...)
	return r
}

// navigation reports whether the browser is loading a page (the provider
// redirecting it to the callback), not a script fetching: Fetch Metadata
// says so, and browsers without it ask for HTML.
func navigation(req *Request) bool {
	if m := req.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	return strings.Contains(req.Header.Get("Accept"), "text/html")
}

// loginErrorURL is where a failed login sends the browser: the app, with
// ?error=<code> (and provider_error=<the provider's code> when the
// provider refused), so the app can tell the user and offer a new login.
// The app path is login_error_path, else the login's returnTo, else
// default_return_to. Nothing of the request but codes goes into it.
func (b *Engine) loginErrorURL(st *loginState, err error) string {
	target := b.cfg.LoginErrorPath
	if target == "" && st != nil {
		target = st.ReturnTo
	}
	if target == "" {
		target = b.cfg.DefaultReturnTo
	}
	q := url.Values{"error": {string(CodeInternal)}}
	var f *failure
	if errors.As(err, &f) {
		q.Set("error", string(f.code))
		if f.detail != "" {
			q.Set("provider_error", f.detail)
		}
	}
	target, frag, _ := strings.Cut(target, "#")
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	target += sep + q.Encode()
	if frag != "" {
		target += "#" + frag
	}
	return target
}

// loginOf opens the login cookie of the flow named by state.
func (b *Engine) loginOf(req *Request, name, state string) (*loginState, error) {
	value, ok := cookieValue(req.Header, name)
	if !ok {
		return nil, fail(http.StatusBadRequest, CodeInvalidState, "no login is in progress for this state (expired, finished, or started in another browser)")
	}
	st, err := b.openLogin(name, value)
	if err != nil || subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 {
		return nil, fail(http.StatusBadRequest, CodeInvalidState, "the login state is invalid or expired: start the login again")
	}
	return st, nil
}

// authorized checks the authorization response (iss, error, code),
// exchanges the code with the PKCE verifier, and verifies the ID token and
// nonce: the session the login makes, not yet saved.
func (b *Engine) authorized(ctx context.Context, q url.Values, st *loginState) (*session.Session, error) {
	p, err := b.prov.get(ctx)
	if err != nil {
		return nil, idpFailure(err)
	}
	// RFC 9207: a provider that says it sends iss must send ours; any iss
	// sent must be ours (mix-up defence). Profile fapi2 always requires it.
	if iss, has := q["iss"]; has || p.issInResponse || b.cfg.Profile == ProfileFAPI2 {
		if len(iss) != 1 || iss[0] != b.cfg.Issuer {
			return nil, fail(http.StatusBadRequest, CodeInvalidIssuer, "the authorization response's iss is not the configured issuer")
		}
	}
	if e := q.Get("error"); e != "" {
		f := fail(http.StatusBadRequest, CodeLoginFailed, "the identity provider answered "+safeCode(e))
		f.detail = safeCode(e)
		return nil, f
	}
	code := q.Get("code")
	if code == "" || len(code) > 2048 {
		return nil, fail(http.StatusBadRequest, CodeInvalidRequest, "the code parameter is missing or malformed")
	}
	var dpopRaw string
	var dk *dpopKey
	if b.cfg.DPoP {
		if dpopRaw, dk, err = newDPoPKey(); err != nil {
			return nil, err
		}
	}
	tok, err := b.tokenCall(ctx, b.cfg.HTTPClient, p, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {b.cfg.RedirectURL}, "code_verifier": {st.Verifier},
	}, dk)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return nil, fail(http.StatusBadRequest, CodeInvalidGrant, "the identity provider refused the code (used already, expired, or the PKCE verifier does not match): start the login again")
		}
		b.logLimited(slog.LevelWarn, "bffgate: code exchange failed", "error", err)
		return nil, idpFailure(err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, fail(http.StatusBadGateway, CodeInvalidIDToken, "the token response has no ID token")
	}
	idt, err := p.idTokens.Verify(ctx, rawID)
	if err != nil {
		b.logLimited(slog.LevelWarn, "bffgate: ID token rejected", "error", err)
		return nil, fail(http.StatusBadRequest, CodeInvalidIDToken, "the ID token did not verify")
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		return nil, fail(http.StatusBadRequest, CodeInvalidNonce, "the ID token's nonce is not this login's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fail(http.StatusBadRequest, CodeInvalidIDToken, "the ID token's claims are malformed")
	}
	if err := b.checkStepUp(st, claims); err != nil {
		return nil, err
	}
	s := &session.Session{
		Issuer: idt.Issuer, Subject: idt.Subject,
		Claims:      b.userClaims(claims),
		Identity:    b.identityClaims(claims),
		AccessToken: tok.AccessToken, TokenType: tok.Type(), RefreshToken: tok.RefreshToken,
		Expiry: b.expiry(tok), Created: b.now(), DPoPKey: dpopRaw,
		TokenClaims: tokenClaims(claims),
	}
	if b.cfg.LogoutIDTokenHint {
		s.IDToken = rawID // kept only for id_token_hint: 1 KiB a session
	}
	s.SID, _ = claims["sid"].(string)
	s.Scope, _ = tok.Extra("scope").(string)
	if s.Scope == "" {
		s.Scope = strings.Join(b.cfg.Scopes, " ")
	}
	return s, nil
}

// startSession saves s under a fresh ID and returns its cookie. A fresh ID
// every login: a cookie planted before login is never adopted (session
// fixation), and the browser's old session, if any, ends.
func (b *Engine) startSession(ctx context.Context, req *Request, s *session.Session) (cookie string, err error) {
	id, err := session.NewID()
	if err != nil {
		return "", fmt.Errorf("making a session ID: %w", err)
	}
	s.Device = deviceLabel(req.Header.Get("User-Agent"))
	if err := b.sessions.Save(ctx, id, s); err != nil {
		b.logLimited(slog.LevelError, "bffgate: saving a new session failed", "error", err)
		return "", errStoreDown
	}
	if old, ok := cookieValue(req.Header, b.cfg.CookieName); ok {
		if oldID, err := session.ParseID(old); err == nil {
			_ = b.sessions.End(ctx, oldID)
			b.obs.Session("ended", "replaced", 1)
		}
	}
	b.capSessions(ctx, s, id.StoreKey())
	b.obs.Session("started", "", 1)
	b.log.Info("bffgate: login", "sub", s.Subject)
	return b.sessionCookie(id.String()), nil
}

// userClaims keeps the configured claims, as the JSON object /session
// shows.
func (b *Engine) userClaims(all map[string]any) string {
	kept := make(map[string]any, len(b.cfg.UserClaims))
	for _, c := range b.cfg.UserClaims {
		if v, ok := all[c]; ok {
			kept[c] = v
		}
	}
	out, _ := json.Marshal(kept)
	return string(out)
}

// identityClaims renders the claims the identity headers need, once at
// login, as name NUL value NUL pairs: forwarding then costs no JSON
// decoding.
func (b *Engine) identityClaims(all map[string]any) string {
	var out strings.Builder
	for _, h := range b.cfg.IdentityHeaders {
		if v, ok := headerValue(all[h.Claim]); ok && !strings.Contains(h.Claim, "\x00") && !strings.Contains(v, "\x00") {
			out.WriteString(h.Claim)
			out.WriteByte(0)
			out.WriteString(v)
			out.WriteByte(0)
		}
	}
	return out.String()
}

// identityClaim finds a claim rendered by identityClaims.
func identityClaim(identity, claim string) (string, bool) {
	for identity != "" {
		var name, value string
		name, identity, _ = strings.Cut(identity, "\x00")
		value, identity, _ = strings.Cut(identity, "\x00")
		if name == claim {
			return value, true
		}
	}
	return "", false
}
