package bff

import (
	"context"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bffgate/bffgate/core/session"
)

// Device Bound Session Credentials (W3C WebAppSec draft, "DBSC"): a browser
// that supports it registers a key it keeps on the device for the session,
// and from then on the session works only with a short-lived bound cookie
// that the browser gets by signing a fresh challenge with that key. A
// copied cookie jar works until its bound cookie expires, then no more.
//
// The protocol, as Chromium speaks it:
//
//	callback  → Secure-Session-Registration: (ES256 RS256);path="…";challenge="…";authorization="…"
//	register  ← POST, Secure-Session-Response: JWT {typ dbsc+jwt, jwk} {jti: challenge, authorization}
//	          → 200 session config JSON + Set-Cookie: bound cookie
//	refresh   ← POST, Sec-Secure-Session-Id: …
//	          → 403 Secure-Session-Challenge: "<nonce>";id="<session identifier>"
//	refresh   ← POST, Sec-Secure-Session-Id, Secure-Session-Response: JWT {jti: nonce} signed by the registered key
//	          → 200 session config JSON + Set-Cookie: fresh bound cookie (or {"continue": false})

// DBSC configures Device Bound Session Credentials. Off by default; when
// on, sessions of browsers that do not speak DBSC work exactly as before.
type DBSC struct {
	// Enabled offers DBSC registration at every login. Defaults to false.
	Enabled bool `json:"enabled"`
	// BoundCookieTTL is the lifetime in seconds of the bound cookie, the
	// longest a copied cookie jar keeps working; the browser signs one
	// challenge per lifetime. Defaults to 600 (10 minutes).
	BoundCookieTTL int `json:"bound_cookie_ttl"`
	// RegistrationPath is where the browser registers its key, below
	// path_prefix. Defaults to "/dbsc/register".
	RegistrationPath string `json:"registration_path"`
	// RefreshPath is where the browser gets a fresh bound cookie, below
	// path_prefix. Defaults to "/dbsc/refresh".
	RefreshPath string `json:"refresh_path"`
}

// dbscState is the engine's DBSC setup; nil when DBSC is off.
type dbscState struct {
	cookie   string        // the bound cookie's name
	origin   string        // scheme://host of redirect_url, the session's scope
	register string        // registration path, with the prefix
	refresh  string        // refresh path, with the prefix
	ttl      time.Duration // bound cookie lifetime
}

// Limits and lifetimes of the protocol's parts.
const (
	// challengeTTL is how long a challenge may be answered: the browser
	// signs it at once, a hardware key within seconds.
	challengeTTL = 2 * time.Minute
	// maxProof bounds a Secure-Session-Response JWT (a 4096-bit RSA key
	// and signature fit in half of it), maxProofHeader its header.
	maxProof       = 8 << 10
	maxProofHeader = 4 << 10
	// boundValueLen is the bound cookie value's length: base64url of an
	// 8-byte expiry and a 32-byte MAC.
	boundValueLen = 54
)

// The DBSC failures.
var (
	errBoundMissing = fail(http.StatusUnauthorized, CodeDBSCRefreshRequired,
		"the session is bound to a device and its bound cookie is missing or expired: the browser refreshes it, or log in again")
	errProof = fail(http.StatusBadRequest, CodeInvalidRequest, "the Secure-Session-Response proof is missing, malformed or not validly signed")
)

// validateDBSC checks the dbsc fields.
func (c *Config) validateDBSC() error {
	d := &c.DBSC
	if !d.Enabled {
		return nil
	}
	if d.BoundCookieTTL < 0 || d.BoundCookieTTL > c.SessionMaxLifetime {
		return cfgErr("dbsc.bound_cookie_ttl", "%d must be between 1 and session_max_lifetime (%d) seconds, e.g. 600", d.BoundCookieTTL, c.SessionMaxLifetime)
	}
	taken := map[string]string{}
	for _, p := range c.paths() {
		taken[*p.path] = "paths." + p.field
	}
	for _, p := range []pathField{{"registration_path", &d.RegistrationPath}, {"refresh_path", &d.RefreshPath}} {
		if !strings.HasPrefix(*p.path, "/") || strings.ContainsAny(*p.path, "?#% ") {
			return cfgErr("dbsc."+p.field, "%q must be a plain path starting with /", *p.path)
		}
		if other, dup := taken[*p.path]; dup {
			return cfgErr("dbsc."+p.field, "%q is also %s: give each endpoint its own path", *p.path, other)
		}
		taken[*p.path] = "dbsc." + p.field
	}
	return nil
}

// initDBSC sets up DBSC's state and routes when it is on.
func (b *Engine) initDBSC() {
	d := b.cfg.DBSC
	if !d.Enabled {
		return
	}
	u, _ := url.Parse(b.cfg.RedirectURL) // validated
	pre := b.cfg.PathPrefix
	b.dbsc = &dbscState{
		cookie:   b.cfg.CookieName + "-bound",
		origin:   u.Scheme + "://" + u.Host,
		register: pre + d.RegistrationPath,
		refresh:  pre + d.RefreshPath,
		ttl:      time.Duration(d.BoundCookieTTL) * time.Second,
	}
	b.routes[b.dbsc.register] = b.dbscRegister
	b.routes[b.dbsc.refresh] = b.dbscRefresh
	b.kinds[b.dbsc.register] = "dbsc_registration"
	b.kinds[b.dbsc.refresh] = "dbsc_refresh"
}

// load reads and opens the request's session as loadUnbound does and,
// for a session registered for DBSC, requires its valid bound cookie:
// without one the session is refused like an ended one (401), never
// served as if it had not registered.
func (b *Engine) load(ctx context.Context, req *Request, slide bool) (session.ID, *session.Session, error) {
	id, s, err := b.loadUnbound(ctx, req, slide)
	if err == nil && !b.boundOK(req, id, s) {
		return id, nil, errBoundMissing
	}
	return id, s, err
}

// boundOK reports whether the request may use session s: it never
// registered (or DBSC is off), or it carries a valid bound cookie for it.
func (b *Engine) boundOK(req *Request, id session.ID, s *session.Session) bool {
	if b.dbsc == nil || s == nil || s.DBSC == "" {
		return true
	}
	v, ok := cookieValue(req.Header, b.dbsc.cookie)
	if !ok || len(v) != boundValueLen {
		return false
	}
	var raw [8 + sha256.Size]byte
	if n, err := base64.RawURLEncoding.Strict().Decode(raw[:], []byte(v)); err != nil || n != len(raw) {
		return false
	}
	exp := int64(binary.BigEndian.Uint64(raw[:8]))
	if b.now().Unix() >= exp {
		return false
	}
	rec := parseRecord(s.DBSC)
	for _, k := range b.keys {
		if want := boundMAC(k, id, rec.id, exp); hmac.Equal(want[:], raw[8:]) {
			return true
		}
	}
	return false
}

// boundMAC is the bound cookie's MAC under a cookie key: over the
// session's store key (so it is worthless without its session cookie),
// the DBSC session identifier (a new registration voids old cookies) and
// the expiry.
func boundMAC(key [32]byte, id session.ID, dbscID string, exp int64) [sha256.Size]byte {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("bffgate dbsc bound cookie v1\x00"))
	m.Write([]byte(id.StoreKey()))
	m.Write([]byte{0})
	m.Write([]byte(dbscID))
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], uint64(exp))
	m.Write(e[:])
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	return sum
}

// boundGrace is how long past its Max-Age a bound cookie is still taken:
// the browser counts Max-Age from when the answer reached it, later than
// the BFF made it, and in whole seconds. Without it a browser sends a
// cookie it holds as live that the BFF already refuses (seen in Chromium
// with a 5 s lifetime: one 401 before its refresh).
const boundGrace = 5 * time.Second

// boundCookie makes a fresh bound cookie for the session.
func (b *Engine) boundCookie(id session.ID, dbscID string) string {
	end := b.now().Add(b.dbsc.ttl + boundGrace)
	exp := end.Unix()
	if end.Nanosecond() > 0 { // whole seconds, rounded up
		exp++
	}
	var raw [8 + sha256.Size]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(exp))
	mac := boundMAC(b.keys[0], id, dbscID, exp)
	copy(raw[8:], mac[:])
	return b.cookie(b.dbsc.cookie, base64.RawURLEncoding.EncodeToString(raw[:]), int(b.dbsc.ttl/time.Second), "Lax")
}

// dbscIdentifier makes the DBSC session identifier of session id: the ID
// sealed (AES-GCM, a fresh nonce) under a key derived from the first
// cookie key, so a refresh finds its session without the session cookie
// while the identifier, which the browser shows, reveals nothing. Alone
// it is worth nothing: a bound cookie needs the device key to get and the
// session cookie to use.
func (b *Engine) dbscIdentifier(id session.ID) string {
	gcm := newGCM(identifierKey(b.keys[0]))
	out := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(id)+gcm.Overhead())
	_, _ = rand.Read(out)
	return base64.RawURLEncoding.EncodeToString(gcm.Seal(out, out, id[:], []byte("bffgate dbsc identifier")))
}

// openIdentifier returns the session a DBSC identifier names, under any
// of the cookie keys.
func (b *Engine) openIdentifier(v string) (session.ID, bool) {
	var id session.ID
	raw, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if len(v) > 128 || err != nil || len(raw) != 12+len(id)+16 {
		return id, false
	}
	for _, k := range b.keys {
		gcm := newGCM(identifierKey(k))
		if plain, err := gcm.Open(nil, raw[:12], raw[12:], []byte("bffgate dbsc identifier")); err == nil {
			copy(id[:], plain)
			return id, true
		}
	}
	return id, false
}

func identifierKey(k [32]byte) [32]byte {
	return sha256.Sum256(append([]byte("bffgate dbsc identifier key v1\x00"), k[:]...))
}

// dbscRecord is what a registered session keeps, in Session.DBSC: the
// DBSC session identifier, the key's algorithm and its public JWK, joined
// by NUL. Only the identifier is read on every request.
type dbscRecord struct {
	id, alg, jwk string
}

func (r dbscRecord) String() string { return r.id + "\x00" + r.alg + "\x00" + r.jwk }

func parseRecord(s string) dbscRecord {
	id, rest, _ := strings.Cut(s, "\x00")
	alg, jwk, _ := strings.Cut(rest, "\x00")
	return dbscRecord{id: id, alg: alg, jwk: jwk}
}

// Challenges live in the store, shared by every node, under a hash of
// their value, each in an index of its own: Store.TakeIndex removes the
// index atomically, so exactly one request can use a challenge, on any
// node. The record holds its kind and end, then the session's ID and the
// authorization value sent with it, sealed (AES-GCM) under a key derived
// from the challenge, which the store never holds: a store dump gives no
// session ID. The ID comes back from the challenge because Chromium sends
// the registration without the session cookie (the callback that offers
// it is the end of a cross-site navigation from the provider, so the
// SameSite=Lax cookie stays home).
const (
	challengeRegister = 'r'
	challengeRefresh  = 'f'
)

func challengeKey(c string) string {
	sum := sha256.Sum256([]byte("bffgate dbsc challenge v1\x00" + c))
	return "dbsc:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func challengeGCM(c string) cipher.AEAD {
	return newGCM(sha256.Sum256([]byte("bffgate dbsc challenge seal v1\x00" + c)))
}

// newChallenge stores a fresh challenge of kind for the session.
func (b *Engine) newChallenge(ctx context.Context, kind byte, id session.ID, authorization string) (string, error) {
	c := randomString()
	gcm := challengeGCM(c)
	rec := make([]byte, 9+gcm.NonceSize(), 9+gcm.NonceSize()+len(id)+len(authorization)+gcm.Overhead())
	rec[0] = kind
	binary.BigEndian.PutUint64(rec[1:9], uint64(b.now().Add(challengeTTL).UnixMilli()))
	_, _ = rand.Read(rec[9:])
	rec = gcm.Seal(rec, rec[9:], append(id[:], authorization...), rec[:9])
	k := challengeKey(c)
	return c, b.store.Set(ctx, k, rec, challengeTTL, k)
}

// errChallenge is a challenge that is unknown, used, stale or of another
// kind.
var errChallenge = errors.New("dbsc: challenge unknown, used or stale")

// takeChallenge uses up challenge c of kind and returns the session it
// was made for and the authorization value stored with it. Any error but
// errChallenge is the store's.
func (b *Engine) takeChallenge(ctx context.Context, c string, kind byte) (id session.ID, authorization string, err error) {
	if c == "" || len(c) > 128 {
		return id, "", errChallenge
	}
	k := challengeKey(c)
	keys, err := b.store.TakeIndex(ctx, k)
	if err != nil {
		return id, "", err
	}
	if len(keys) != 1 || keys[0] != k {
		return id, "", errChallenge
	}
	rec, err := b.store.Get(ctx, k, 0)
	_ = b.store.Delete(ctx, k)
	if errors.Is(err, session.ErrNotFound) {
		return id, "", errChallenge
	}
	if err != nil {
		return id, "", err
	}
	gcm := challengeGCM(c)
	if len(rec) < 9+gcm.NonceSize() || rec[0] != kind || b.now().UnixMilli() >= int64(binary.BigEndian.Uint64(rec[1:9])) {
		return id, "", errChallenge
	}
	plain, err := gcm.Open(nil, rec[9:9+gcm.NonceSize()], rec[9+gcm.NonceSize():], rec[:9])
	if err != nil || len(plain) < len(id) {
		return id, "", errChallenge
	}
	copy(id[:], plain)
	return id, string(plain[len(id):]), nil
}

// sameSession reports whether the request's session cookie, if it sent
// one, names session id: a challenge is good only for its own session.
func (b *Engine) sameSession(req *Request, id session.ID) bool {
	v, ok := cookieValue(req.Header, b.cfg.CookieName)
	return !ok || subtle.ConstantTimeCompare([]byte(v), []byte(id.String())) == 1
}

// offerDBSC adds the registration header to the callback's answer r for
// the session whose Set-Cookie value is sessionCookie. A store that fails
// here costs the offer, not the login.
func (b *Engine) offerDBSC(ctx context.Context, r *Result, sessionCookie string) {
	if b.dbsc == nil {
		return
	}
	v, _, _ := strings.Cut(strings.TrimPrefix(sessionCookie, b.cfg.CookieName+"="), ";")
	id, err := session.ParseID(v)
	if err != nil {
		return
	}
	auth := randomString()
	c, err := b.newChallenge(ctx, challengeRegister, id, auth)
	if err != nil {
		b.logLimited(slog.LevelWarn, "bffgate: dbsc: storing a registration challenge failed", "error", err)
		return
	}
	r.Header.Set("Secure-Session-Registration",
		`(ES256 RS256);path="`+b.dbsc.register+`";challenge="`+c+`";authorization="`+auth+`"`)
}

// proofClaims are the claims of a Secure-Session-Response JWT.
type proofClaims struct {
	JTI           string `json:"jti"`
	Authorization string `json:"authorization"`
}

// verifyProof checks a Secure-Session-Response JWT: compact, at most
// maxProof bytes, typ dbsc+jwt, signed with ES256 or RS256. With key nil
// (registration) it is verified with the public key in its own jwk
// header, which it returns; else with key under alg only.
func verifyProof(tok string, key *jose.JSONWebKey, alg string) (proofClaims, *jose.JSONWebKey, error) {
	var c proofClaims
	if len(tok) > maxProof {
		return c, nil, errProof
	}
	if h, _, _ := strings.Cut(tok, "."); len(h) > maxProofHeader {
		return c, nil, errProof
	}
	algs := []jose.SignatureAlgorithm{jose.ES256, jose.RS256}
	if key != nil {
		algs = []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)}
	}
	jws, err := jose.ParseSignedCompact(tok, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return c, nil, errProof
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dbsc+jwt" {
		return c, nil, errProof
	}
	if key == nil {
		if key = h.JSONWebKey; key == nil || !key.Valid() || !key.IsPublic() || !keyFits(key, h.Algorithm) {
			return c, nil, errProof
		}
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return c, nil, errProof
	}
	if json.Unmarshal(payload, &c) != nil || c.JTI == "" {
		return c, nil, errProof
	}
	return c, key, nil
}

// keyFits reports whether key is a key alg signs with: P-256 for ES256,
// RSA of at least 2048 bits for RS256.
func keyFits(key *jose.JSONWebKey, alg string) bool {
	switch k := key.Key.(type) {
	case *ecdsa.PublicKey:
		return alg == string(jose.ES256) && k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return alg == string(jose.RS256) && k.N.BitLen() >= 2048
	}
	return false
}

// dbscConfig is the session config JSON the browser gets at registration
// and refresh.
type dbscConfig struct {
	SessionIdentifier string           `json:"session_identifier"`
	RefreshURL        string           `json:"refresh_url"`
	Scope             dbscScope        `json:"scope"`
	Credentials       []dbscCredential `json:"credentials"`
}

type dbscScope struct {
	Origin             string     `json:"origin"`
	IncludeSite        bool       `json:"include_site"`
	ScopeSpecification []struct{} `json:"scope_specification"`
}

type dbscCredential struct {
	Type       string `json:"type"`
	Name       string `json:"name"`
	Attributes string `json:"attributes"`
}

// sessionConfig answers the session config for rec with a fresh bound
// cookie. It sends no challenge ahead (Secure-Session-Challenge may come
// with any answer, and Chromium signs it at the next refresh, saving the
// 403): Chromium 156 gives a session up for good when a proof over such a
// cached challenge is answered 403 (checked: no refresh after it, every
// request 401), so a challenge gone stale while the browser was idle
// would end the user's session. Each refresh is a 403 and a signed retry.
func (b *Engine) sessionConfig(req *Request, id session.ID, rec dbscRecord) Result {
	r := b.json(req, http.StatusOK, dbscConfig{
		SessionIdentifier: rec.id,
		RefreshURL:        b.dbsc.refresh,
		Scope:             dbscScope{Origin: b.dbsc.origin, ScopeSpecification: []struct{}{}},
		Credentials: []dbscCredential{{
			Type: "cookie", Name: b.dbsc.cookie, Attributes: "Path=/; Secure; HttpOnly; SameSite=Lax",
		}},
	})
	r.Header.Add("Set-Cookie", b.boundCookie(id, rec.id))
	return r
}

// dbscEnded answers a refresh for a session that is gone: the browser
// ends its DBSC session.
func (b *Engine) dbscEnded(req *Request) Result {
	r := b.json(req, http.StatusOK, struct {
		Continue bool `json:"continue"`
	}{false})
	r.Header.Add("Set-Cookie", b.cookie(b.dbsc.cookie, "", -1, "Lax"))
	return r
}

// dbscRegister is the registration endpoint (POST): it verifies the
// browser's proof of its key against the challenge sent at login, keeps
// the public key in the sealed session, and answers the session config
// with the first bound cookie.
func (b *Engine) dbscRegister(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodPost {
		return b.methodNotAllowed(req, "POST")
	}
	if !b.originAllowed(req) {
		return b.answer(req, errOrigin)
	}
	v := req.Header.Values("Secure-Session-Response")
	if len(v) != 1 {
		return b.answer(req, errProof)
	}
	claims, key, err := verifyProof(v[0], nil, "")
	if err != nil {
		return b.answer(req, err)
	}
	id, auth, err := b.takeChallenge(ctx, claims.JTI, challengeRegister)
	switch {
	case errors.Is(err, errChallenge):
		return b.answer(req, fail(http.StatusBadRequest, CodeInvalidRequest, "the registration challenge is unknown, used or stale: log in again"))
	case err != nil:
		return b.answer(req, errStoreDown)
	case !b.sameSession(req, id):
		return b.answer(req, fail(http.StatusBadRequest, CodeInvalidRequest, "the registration challenge is another session's"))
	case subtle.ConstantTimeCompare([]byte(auth), []byte(claims.Authorization)) != 1:
		return b.answer(req, fail(http.StatusBadRequest, CodeInvalidRequest, "the proof's authorization is not the one sent"))
	}
	jwk, err := key.Public().MarshalJSON()
	if err != nil {
		return b.answer(req, errProof)
	}
	alg := string(jose.ES256)
	if _, ok := key.Key.(*rsa.PublicKey); ok {
		alg = string(jose.RS256)
	}
	rec := dbscRecord{id: b.dbscIdentifier(id), alg: alg, jwk: string(jwk)}
	if err := b.saveDBSC(ctx, id, rec.String()); err != nil {
		return b.answer(req, err)
	}
	b.log.Info("bffgate: dbsc: session registered", "alg", alg)
	return b.sessionConfig(req, id, rec)
}

// saveDBSC keeps rec in the session: under its refresh lock, re-read, so a
// token refresh on another node is not undone.
func (b *Engine) saveDBSC(ctx context.Context, id session.ID, rec string) error {
	release, err := b.sessions.Lock(ctx, id)
	if err != nil {
		return errStoreDown
	}
	defer release()
	s, err := b.sessions.Load(ctx, id, false)
	if err != nil {
		return b.loadFailure(err)
	}
	if s.DBSC != "" {
		return fail(http.StatusConflict, CodeInvalidRequest, "the session is registered already")
	}
	s.DBSC = rec
	if err := b.sessions.Save(ctx, id, s); err != nil {
		b.logLimited(slog.LevelError, "bffgate: saving a session failed", "error", err)
		return errStoreDown
	}
	return nil
}

// dbscRefresh is the refresh endpoint (POST): without a proof it answers
// 403 with a fresh challenge; with a proof of the registered key over
// that challenge, a fresh bound cookie; for a session that has ended,
// {"continue": false}.
func (b *Engine) dbscRefresh(ctx context.Context, req *Request) Result {
	if req.Method != http.MethodPost {
		return b.methodNotAllowed(req, "POST")
	}
	if !b.originAllowed(req) {
		return b.answer(req, errOrigin)
	}
	// The session is found by its DBSC identifier, not the session
	// cookie: a refresh the browser makes for a request from another site
	// may come without the SameSite=Lax cookie.
	sid := req.Header.Values("Sec-Secure-Session-Id")
	if len(sid) != 1 {
		return b.dbscEnded(req)
	}
	id, ok := b.openIdentifier(sid[0])
	if !ok || !b.sameSession(req, id) {
		return b.dbscEnded(req)
	}
	s, err := b.sessions.Load(ctx, id, true)
	if err = b.loadFailure(err); err == errStoreDown {
		return b.answer(req, err)
	}
	if err != nil || s.DBSC == "" {
		return b.dbscEnded(req)
	}
	rec := parseRecord(s.DBSC)
	if rec.id != sid[0] {
		return b.dbscEnded(req)
	}
	v := req.Header.Values("Secure-Session-Response")
	if len(v) == 0 {
		return b.dbscChallenge(ctx, req, id, rec)
	}
	var key jose.JSONWebKey
	if len(v) != 1 || key.UnmarshalJSON([]byte(rec.jwk)) != nil {
		return b.answer(req, errProof)
	}
	claims, _, err := verifyProof(v[0], &key, rec.alg)
	if err != nil {
		return b.answer(req, err)
	}
	cid, _, err := b.takeChallenge(ctx, claims.JTI, challengeRefresh)
	if errors.Is(err, errChallenge) || (err == nil && cid != id) {
		return b.dbscChallenge(ctx, req, id, rec) // a slow browser's stale one: try again
	} else if err != nil {
		return b.answer(req, errStoreDown)
	}
	return b.sessionConfig(req, id, rec)
}

// dbscChallenge answers 403 with a fresh refresh challenge.
func (b *Engine) dbscChallenge(ctx context.Context, req *Request, id session.ID, rec dbscRecord) Result {
	c, err := b.newChallenge(ctx, challengeRefresh, id, "")
	if err != nil {
		b.logLimited(slog.LevelError, "bffgate: dbsc: storing a challenge failed", "error", err)
		return b.answer(req, errStoreDown)
	}
	r := b.json(req, http.StatusForbidden, struct{}{})
	r.Header.Set("Secure-Session-Challenge", `"`+c+`";id="`+rec.id+`"`)
	return r
}
