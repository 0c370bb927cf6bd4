package bff_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session/redisstore"
	"github.com/bffgate/bffgate/core/session/redisstore/redistest"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// These tests run DBSC's registration and refresh against the engine
// behind its middleware, logged in at the real OP, with proofs signed
// here the way a browser signs them (go-jose).

const boundName = "__Host-bffgate-bound"

func newDBSCEnv(t *testing.T) *env {
	return newEnv(t, func(c *bff.Config) { c.DBSC.Enabled = true })
}

// offer is a Secure-Session-Registration header's parameters.
type offer struct{ path, challenge, authorization string }

var offerRE = regexp.MustCompile(`^\(ES256 RS256\);path="([^"]+)";challenge="([^"]+)";authorization="([^"]+)"$`)

// loginOffer logs alice in on c and returns the callback's registration
// offer.
func (e *env) loginOffer(c *http.Client) offer {
	e.t.Helper()
	r := e.do(c, "GET", e.authorize(c, e.startLogin(c, ""), op.AliceUser, op.AlicePassword))
	if r.Status != http.StatusFound {
		e.t.Fatalf("callback status = %d (body %s)", r.Status, r.Body)
	}
	m := offerRE.FindStringSubmatch(r.Header.Get("Secure-Session-Registration"))
	if m == nil {
		e.t.Fatalf("callback Secure-Session-Registration = %q", r.Header.Get("Secure-Session-Registration"))
	}
	return offer{m[1], m[2], m[3]}
}

// proof signs a Secure-Session-Response JWT with key under alg, its public
// key embedded in the header when embed.
func proof(t *testing.T, key crypto.Signer, alg jose.SignatureAlgorithm, embed bool, jti, authorization string) string {
	t.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: embed}).WithType("dbsc+jwt")
	return flowtest.SignDBSC(t, jose.SigningKey{Algorithm: alg, Key: key}, opts, jti, authorization)
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaKey(t *testing.T, bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// register POSTs a proof to the registration path.
func (e *env) register(c *http.Client, tok string) *flowtest.Response {
	e.t.Helper()
	return e.do(c, "POST", "/dbsc/register", "Secure-Session-Response", tok)
}

// boundSetCookie returns the Set-Cookie of the bound cookie in h, or "".
func boundSetCookie(h http.Header) string {
	for _, c := range h.Values("Set-Cookie") {
		if strings.HasPrefix(c, boundName+"=") {
			return c
		}
	}
	return ""
}

// challengeOf reads a Secure-Session-Challenge header.
func challengeOf(t *testing.T, h http.Header) (nonce, id string) {
	t.Helper()
	m := regexp.MustCompile(`^"([^"]+)";id="([^"]+)"$`).FindStringSubmatch(h.Get("Secure-Session-Challenge"))
	if m == nil {
		t.Fatalf("Secure-Session-Challenge = %q", h.Get("Secure-Session-Challenge"))
	}
	return m[1], m[2]
}

// copyJar returns a new browser profile with every cookie c holds for
// the BFF: a stolen cookie jar.
func (e *env) copyJar(c *http.Client) *http.Client {
	u, _ := url.Parse(e.bff.URL)
	thief := e.browser()
	thief.Jar.SetCookies(u, c.Jar.Cookies(u))
	return thief
}

// TestDBSCFlow: a registered session is served with its bound cookie,
// refused without it, and refreshed with a fresh challenge signed by the
// registered key; a copied cookie jar works only until its bound cookie
// expires.
func TestDBSCFlow(t *testing.T) {
	e := newDBSCEnv(t)
	c := e.browser()
	o := e.loginOffer(c)
	if o.path != "/dbsc/register" {
		t.Fatalf("offer path = %q", o.path)
	}
	// Before registering, the session works as any other.
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("API before registration: %d %s", r.Status, r.Body)
	}

	key := ecKey(t)
	r := e.register(c, proof(t, key, jose.ES256, true, o.challenge, o.authorization))
	if r.Status != http.StatusOK {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	var cfg struct {
		SessionIdentifier string `json:"session_identifier"`
		RefreshURL        string `json:"refresh_url"`
		Scope             struct {
			Origin      string `json:"origin"`
			IncludeSite *bool  `json:"include_site"`
		} `json:"scope"`
		Credentials []struct{ Type, Name, Attributes string } `json:"credentials"`
	}
	if err := json.Unmarshal(r.Body, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.SessionIdentifier == "" || cfg.RefreshURL != "/dbsc/refresh" || cfg.Scope.Origin != e.bff.URL ||
		cfg.Scope.IncludeSite == nil || *cfg.Scope.IncludeSite || len(cfg.Credentials) != 1 ||
		cfg.Credentials[0].Type != "cookie" || cfg.Credentials[0].Name != boundName ||
		cfg.Credentials[0].Attributes != "Path=/; Secure; HttpOnly; SameSite=Lax" {
		t.Fatalf("session config = %s", r.Body)
	}
	sc := boundSetCookie(r.Header)
	for _, attr := range []string{"; Path=/", "; Secure", "; HttpOnly", "; SameSite=Lax", "; Max-Age=600"} {
		if !strings.Contains(sc, attr) {
			t.Fatalf("bound Set-Cookie = %q, lacks %q", sc, attr)
		}
	}
	if s := e.sessionOf(c); !strings.Contains(s.DBSC, `"kty":"EC"`) || strings.Contains(s.DBSC, `"d":`) {
		t.Fatalf("sealed session's DBSC = %q, want the public key", s.DBSC)
	}

	// With the bound cookie: served, and the upstream sees neither cookie.
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("API with the bound cookie: %d %s", r.Status, r.Body)
	}
	if ck := e.up.Last(t).Header.Get("Cookie"); strings.Contains(ck, "bffgate") {
		t.Fatalf("upstream Cookie = %q", ck)
	}
	if r := e.do(c, "GET", "/session"); r.Status != http.StatusOK {
		t.Fatalf("/session with the bound cookie: %d %s", r.Status, r.Body)
	}

	// A jar with the session cookie alone is refused, the session kept.
	u, _ := url.Parse(e.bff.URL)
	bare := e.browser()
	bare.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-bffgate", Value: e.sessionCookie(c)}})
	for _, p := range []string{"/api/x", "/session"} {
		r := e.do(bare, "GET", p, "X-CSRF", "1")
		r.WantError(t, http.StatusUnauthorized, "dbsc_refresh_required")
		if strings.Contains(strings.Join(r.Header.Values("Set-Cookie"), ","), "__Host-bffgate=;") {
			t.Fatalf("%s clears the session cookie: %q", p, r.Header.Values("Set-Cookie"))
		}
	}

	// A full copy of the jar works until the bound cookie expires.
	thief := e.copyJar(c)
	if r := e.do(thief, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("copied jar before expiry: %d", r.Status)
	}
	e.clock.Advance(606 * time.Second) // past Max-Age and the 5 s grace
	for _, b := range []*http.Client{thief, c} {
		e.do(b, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "dbsc_refresh_required")
	}
	// The thief asks for a challenge and cannot sign it with the key.
	r = e.do(thief, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", cfg.SessionIdentifier)
	if r.Status != http.StatusForbidden {
		t.Fatalf("refresh without proof: %d %s", r.Status, r.Body)
	}
	nonce, id := challengeOf(t, r.Header)
	if id != cfg.SessionIdentifier {
		t.Fatalf("challenge id = %q, want %q", id, cfg.SessionIdentifier)
	}
	r = e.do(thief, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", id, "Secure-Session-Response", proof(t, ecKey(t), jose.ES256, true, nonce, ""))
	if r.Status == http.StatusOK || boundSetCookie(r.Header) != "" {
		t.Fatalf("refresh with another key: %d, Set-Cookie %q", r.Status, r.Header.Values("Set-Cookie"))
	}
	e.do(thief, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "dbsc_refresh_required")

	// The device refreshes: 403 with a challenge, then its signed answer.
	r = e.do(c, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", id)
	nonce, _ = challengeOf(t, r.Header)
	signed := proof(t, key, jose.ES256, false, nonce, "")
	r = e.do(c, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", id, "Secure-Session-Response", signed)
	if r.Status != http.StatusOK || boundSetCookie(r.Header) == "" {
		t.Fatalf("refresh: %d %s %q", r.Status, r.Body, r.Header.Values("Set-Cookie"))
	}
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("API after refresh: %d %s", r.Status, r.Body)
	}
	// The same proof again: the challenge is used up, a new one offered.
	r = e.do(thief, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", id, "Secure-Session-Response", signed)
	if r.Status != http.StatusForbidden || boundSetCookie(r.Header) != "" {
		t.Fatalf("replayed refresh proof: %d %q", r.Status, r.Header.Values("Set-Cookie"))
	}
	challengeOf(t, r.Header)
	e.do(thief, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "dbsc_refresh_required")

	// After logout the browser is told to end its DBSC session.
	if r := e.do(c, "POST", "/logout", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("logout: %d", r.Status)
	}
	r = e.do(c, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", id)
	if r.Status != http.StatusOK || r.JSON(t)["continue"] != false {
		t.Fatalf("refresh after logout: %d %s", r.Status, r.Body)
	}
}

// TestDBSCRegistrationRejects: proofs that must not register a key.
func TestDBSCRegistrationRejects(t *testing.T) {
	e := newDBSCEnv(t)
	c := e.browser()
	o := e.loginOffer(c)
	key := ecKey(t)
	pub := jose.JSONWebKey{Key: key.Public()}
	pubJSON, _ := pub.MarshalJSON()
	b64 := base64.RawURLEncoding.EncodeToString
	unsigned := func(header map[string]any) string {
		h, _ := json.Marshal(header)
		p, _ := json.Marshal(map[string]string{"jti": o.challenge, "authorization": o.authorization})
		return b64(h) + "." + b64(p) + "."
	}
	otherKey := ecKey(t)
	wrongKey := flowtest.SignDBSC(t, jose.SigningKey{Algorithm: jose.ES256, Key: otherKey},
		(&jose.SignerOptions{}).WithType("dbsc+jwt").WithHeader("jwk", pub), o.challenge, o.authorization)
	hs256 := flowtest.SignDBSC(t, jose.SigningKey{Algorithm: jose.HS256, Key: pubJSON},
		(&jose.SignerOptions{}).WithType("dbsc+jwt").WithHeader("jwk", pub), o.challenge, o.authorization)
	private := flowtest.SignDBSC(t, jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("dbsc+jwt").WithHeader("jwk", jose.JSONWebKey{Key: key}), o.challenge, o.authorization)
	big := flowtest.SignDBSC(t, jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dbsc+jwt").WithHeader("x", strings.Repeat("a", 5000)), o.challenge, o.authorization)
	for _, tc := range []struct{ name, tok string }{
		{"signed by another key than its jwk", wrongKey},
		{"HS256 with the public key as secret", hs256},
		{"alg none", unsigned(map[string]any{"alg": "none", "typ": "dbsc+jwt", "jwk": pub})},
		{"no typ", flowtest.SignDBSC(t, jose.SigningKey{Algorithm: jose.ES256, Key: key}, &jose.SignerOptions{EmbedJWK: true}, o.challenge, o.authorization)},
		{"typ JWT", flowtest.SignDBSC(t, jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{EmbedJWK: true}).WithType("JWT"), o.challenge, o.authorization)},
		{"no jwk", proof(t, key, jose.ES256, false, o.challenge, o.authorization)},
		{"a private jwk", private},
		{"RSA under 2048 bits", proof(t, rsaKey(t, 1024), jose.RS256, true, o.challenge, o.authorization)},
		{"ES384", proof(t, must384(t), jose.ES384, true, o.challenge, o.authorization)},
		{"a 5 KB header", big},
		{"over 8 KiB", proof(t, key, jose.ES256, true, o.challenge, o.authorization) + strings.Repeat("A", 9000)},
		{"garbage", "not.a.jwt"},
		{"JSON serialization", `{"payload":"e30","signatures":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.register(c, tc.tok)
			r.WantError(t, http.StatusBadRequest, "invalid_request")
			if boundSetCookie(r.Header) != "" {
				t.Fatal("a bound cookie for a refused proof")
			}
		})
	}
	if s := e.sessionOf(c); s.DBSC != "" {
		t.Fatalf("refused proofs registered a key: %q", s.DBSC)
	}
	// None of those used the challenge up: a stale one is refused...
	e.clock.Advance(3 * time.Minute)
	e.register(c, proof(t, key, jose.ES256, true, o.challenge, o.authorization)).WantError(t, http.StatusBadRequest, "invalid_request")
	e.clock.Advance(-3 * time.Minute)
	// ... and, refused once, it is gone.
	e.register(c, proof(t, key, jose.ES256, true, o.challenge, o.authorization)).WantError(t, http.StatusBadRequest, "invalid_request")

	// A wrong authorization uses the challenge up too.
	o = e.loginOffer(c)
	e.register(c, proof(t, key, jose.ES256, true, o.challenge, "other")).WantError(t, http.StatusBadRequest, "invalid_request")
	e.register(c, proof(t, key, jose.ES256, true, o.challenge, o.authorization)).WantError(t, http.StatusBadRequest, "invalid_request")

	// Another session's challenge is refused.
	c2 := e.browser()
	o2 := e.loginOffer(c2)
	o = e.loginOffer(c)
	e.register(c, proof(t, key, jose.ES256, true, o2.challenge, o2.authorization)).WantError(t, http.StatusBadRequest, "invalid_request")

	// An RS256 key registers, once; its challenge cannot be replayed.
	rk := rsaKey(t, 2048)
	tok := proof(t, rk, jose.RS256, true, o.challenge, o.authorization)
	if r := e.register(c, tok); r.Status != http.StatusOK || boundSetCookie(r.Header) == "" {
		t.Fatalf("RS256 registration: %d %s", r.Status, r.Body)
	}
	if r := e.register(c, tok); r.Status == http.StatusOK {
		t.Fatal("a replayed registration succeeded")
	}
	c3 := e.browser()
	e.loginOffer(c3)
	e.register(c3, tok).WantError(t, http.StatusBadRequest, "invalid_request")

	// Chromium registers without the session cookie (the callback ends a
	// cross-site navigation): the challenge names the session, once.
	c4 := e.browser()
	o = e.loginOffer(c4)
	tok = proof(t, key, jose.ES256, true, o.challenge, o.authorization)
	if r := e.register(e.browser(), tok); r.Status != http.StatusOK {
		t.Fatalf("registration without the session cookie: %d %s", r.Status, r.Body)
	}
	if s := e.sessionOf(c4); s.DBSC == "" {
		t.Fatal("the registration without a cookie did not register the challenge's session")
	}
	e.register(e.browser(), tok).WantError(t, http.StatusBadRequest, "invalid_request")
	if r := e.do(c, "GET", "/dbsc/register"); r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("GET register: %d", r.Status)
	}
}

func must384(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// registered logs a browser in and registers an ES256 key, returning the
// key and the DBSC session identifier.
func (e *env) registered(c *http.Client) (*ecdsa.PrivateKey, string) {
	e.t.Helper()
	o := e.loginOffer(c)
	key := ecKey(e.t)
	r := e.register(c, proof(e.t, key, jose.ES256, true, o.challenge, o.authorization))
	if r.Status != http.StatusOK {
		e.t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	var cfg struct {
		ID string `json:"session_identifier"`
	}
	_ = json.Unmarshal(r.Body, &cfg)
	return key, cfg.ID
}

// TestDBSCRefreshRejects: refresh proofs that must not renew the bound
// cookie, and bound cookies that must not be accepted.
func TestDBSCRefreshRejects(t *testing.T) {
	e := newDBSCEnv(t)
	c := e.browser()
	key, id := e.registered(c)
	challenge := func() string {
		r := e.do(c, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", id)
		n, _ := challengeOf(t, r.Header)
		return n
	}
	refresh := func(tok string) *flowtest.Response {
		return e.do(c, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", id, "Secure-Session-Response", tok)
	}
	pub := jose.JSONWebKey{Key: key.Public()}
	pubJSON, _ := pub.MarshalJSON()
	n := challenge()
	for _, tc := range []struct {
		name string
		tok  string
	}{
		{"another key", proof(t, ecKey(t), jose.ES256, false, n, "")},
		{"another key embedded", proof(t, ecKey(t), jose.ES256, true, n, "")},
		{"HS256 with the registered public key as secret", flowtest.SignDBSC(t, jose.SigningKey{Algorithm: jose.HS256, Key: pubJSON}, (&jose.SignerOptions{}).WithType("dbsc+jwt"), n, "")},
		{"RS256 for an ES256 key", proof(t, rsaKey(t, 2048), jose.RS256, true, n, "")},
		{"typ JWT", flowtest.SignDBSC(t, jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"), n, "")},
		{"no jti", proof(t, key, jose.ES256, false, "", "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := refresh(tc.tok)
			if r.Status == http.StatusOK || boundSetCookie(r.Header) != "" {
				t.Fatalf("status %d, Set-Cookie %q", r.Status, r.Header.Values("Set-Cookie"))
			}
		})
	}
	// A stale challenge: a new one instead of a cookie.
	e.clock.Advance(3 * time.Minute)
	if r := refresh(proof(t, key, jose.ES256, false, n, "")); r.Status != http.StatusForbidden || boundSetCookie(r.Header) != "" {
		t.Fatalf("stale challenge: %d %q", r.Status, r.Header.Values("Set-Cookie"))
	}
	// A challenge made up by the client.
	if r := refresh(proof(t, key, jose.ES256, false, "made-up", "")); r.Status != http.StatusForbidden || boundSetCookie(r.Header) != "" {
		t.Fatalf("unknown challenge: %d", r.Status)
	}
	// Another DBSC session identifier: the browser is told to stop.
	r := e.do(c, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", "other")
	if r.Status != http.StatusOK || r.JSON(t)["continue"] != false {
		t.Fatalf("refresh for another identifier: %d %s", r.Status, r.Body)
	}

	// A refresh without the session cookie (the browser's refresh for a
	// request from another site): the identifier names the session.
	nc := e.browser()
	r = e.do(nc, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", id)
	n2, _ := challengeOf(t, r.Header)
	r = e.do(nc, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", id, "Secure-Session-Response", proof(t, key, jose.ES256, false, n2, ""))
	if r.Status != http.StatusOK || boundSetCookie(r.Header) == "" {
		t.Fatalf("refresh without the session cookie: %d %s", r.Status, r.Body)
	}
	// A forged identifier, or another session's cookie with this one.
	forged := []byte(id)
	forged[10] ^= 1
	c5 := e.browser()
	e.loginOffer(c5)
	for name, b := range map[string]*http.Client{"a forged identifier": nc, "another session's cookie": c5} {
		sid := id
		if b == nc {
			sid = string(forged)
		}
		r := e.do(b, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", sid)
		if r.Status != http.StatusOK || r.JSON(t)["continue"] != false {
			t.Fatalf("refresh with %s: %d %s", name, r.Status, r.Body)
		}
	}

	// Bound cookies: forged, of another session, expired.
	if r := refresh(proof(t, key, jose.ES256, false, challenge(), "")); r.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	bound := flowtest.Cookie(c, e.bff.URL, boundName)
	c2 := e.browser()
	e.registered(c2)
	other := flowtest.Cookie(c2, e.bff.URL, boundName)
	raw, _ := base64.RawURLEncoding.DecodeString(bound)
	raw[len(raw)-1] ^= 1
	later, _ := base64.RawURLEncoding.DecodeString(bound)
	later[7]++ // a later expiry under the same MAC
	for name, v := range map[string]string{
		"a flipped MAC bit":   base64.RawURLEncoding.EncodeToString(raw),
		"a later expiry":      base64.RawURLEncoding.EncodeToString(later),
		"another session's":   other,
		"empty":               "",
		"too long":            bound + "A",
		"the session cookie":  e.sessionCookie(c),
		"padded base64":       bound + "==",
		"not base64":          strings.Repeat("!", len(bound)),
		"session's own again": bound[:len(bound)-2] + "AA",
	} {
		u, _ := url.Parse(e.bff.URL)
		b := e.browser()
		b.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-bffgate", Value: e.sessionCookie(c)}, {Name: boundName, Value: v}})
		r := e.do(b, "GET", "/api/x", "X-CSRF", "1")
		if r.Status != http.StatusUnauthorized {
			t.Errorf("bound cookie %s: status %d, want 401", name, r.Status)
		}
	}
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("the real bound cookie: %d", r.Status)
	}
	e.clock.Advance(604 * time.Second) // within the grace: still taken
	if r := e.do(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("the bound cookie within the grace: %d", r.Status)
	}
	e.clock.Advance(2 * time.Second)
	e.do(c, "GET", "/api/x", "X-CSRF", "1").WantError(t, http.StatusUnauthorized, "dbsc_refresh_required")
}

// TestDBSCUnregistered: with DBSC on, a browser that never registers is
// served as before; with it off, no offer is made and its paths are API
// paths.
func TestDBSCUnregistered(t *testing.T) {
	e := newDBSCEnv(t)
	c := e.browser()
	e.loginOffer(c)
	for _, p := range []string{"/api/x", "/session"} {
		if r := e.do(c, "GET", p, "X-CSRF", "1"); r.Status != http.StatusOK {
			t.Fatalf("%s unregistered: %d %s", p, r.Status, r.Body)
		}
	}
	r := e.do(c, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", "x")
	if r.Status != http.StatusOK || r.JSON(t)["continue"] != false {
		t.Fatalf("refresh of an unregistered session: %d %s", r.Status, r.Body)
	}

	off := newEnv(t, nil)
	c = off.browser()
	r = off.do(c, "GET", off.authorize(c, off.startLogin(c, ""), op.AliceUser, op.AlicePassword))
	if r.Status != http.StatusFound || r.Header.Get("Secure-Session-Registration") != "" {
		t.Fatalf("callback with DBSC off: %d, offer %q", r.Status, r.Header.Get("Secure-Session-Registration"))
	}
	before := off.up.Count()
	if r := off.do(c, "POST", "/dbsc/register", "X-CSRF", "1"); r.Status != http.StatusOK || off.up.Count() != before+1 {
		t.Fatalf("/dbsc/register with DBSC off: %d, want an API request upstream", r.Status)
	}
}

func TestDBSCConfig(t *testing.T) {
	base := bff.Config{Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s",
		RedirectURL: "https://app.example/oauth/callback", CookieKeys: []string{cookieKey}}
	for _, tc := range []struct {
		name, field string
		edit        func(d *bff.DBSC)
	}{
		{"ttl past the session", "dbsc.bound_cookie_ttl", func(d *bff.DBSC) { d.BoundCookieTTL = 86401 }},
		{"negative ttl", "dbsc.bound_cookie_ttl", func(d *bff.DBSC) { d.BoundCookieTTL = -1 }},
		{"a BFF path", "dbsc.registration_path", func(d *bff.DBSC) { d.RegistrationPath = "/login" }},
		{"the same path twice", "dbsc.refresh_path", func(d *bff.DBSC) { d.RefreshPath = "/dbsc/register" }},
		{"not a path", "dbsc.refresh_path", func(d *bff.DBSC) { d.RefreshPath = "refresh" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.DBSC.Enabled = true
			tc.edit(&cfg.DBSC)
			_, err := bff.New(cfg)
			var ce *bff.ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field {
				t.Fatalf("err = %v, want a ConfigError for %s", err, tc.field)
			}
		})
	}
	if d := base.WithDefaults().DBSC; d.Enabled || d.BoundCookieTTL != 600 || d.RegistrationPath != "/dbsc/register" || d.RefreshPath != "/dbsc/refresh" {
		t.Fatalf("defaults = %+v", d)
	}
}

// TestDBSCRedisNodes: two gateway nodes sharing Redis share DBSC's
// challenges (a challenge made on one is answered on the other) and its
// bound cookies, and a challenge raced on both is used once.
func TestDBSCRedisNodes(t *testing.T) {
	rc := redisstore.Config{URL: redistest.URL(t), KeyPrefix: uniquePrefix(t)}
	var cfg bff.Config
	a := redisEnv(t, rc, func(c *bff.Config) { c.DBSC.Enabled = true; cfg = *c })
	cfg.Now = nil
	engB, err := bff.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engB.Close() })
	target, _ := url.Parse(a.upURL)
	nodeB := httptest.NewServer(engB.Middleware(httputil.NewSingleHostReverseProxy(target)))
	t.Cleanup(nodeB.Close)
	onB := func(c *http.Client, method, path string, header ...string) *flowtest.Response {
		return flowtest.Do(t, c, method, nodeB.URL+path, header...)
	}

	c := a.browser() // loopback cookies go to every port: both nodes
	o := a.loginOffer(c)
	key := ecKey(t)
	r := onB(c, "POST", "/dbsc/register", "Secure-Session-Response", proof(t, key, jose.ES256, true, o.challenge, o.authorization))
	if r.Status != http.StatusOK {
		t.Fatalf("registration on node B of node A's challenge: %d %s", r.Status, r.Body)
	}
	var sc struct {
		ID string `json:"session_identifier"`
	}
	_ = json.Unmarshal(r.Body, &sc)
	a.apiOK(c)
	if r := onB(c, "GET", "/api/x", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("API on node B: %d", r.Status)
	}

	// One challenge, its proof sent eight times at once to both nodes:
	// one bound cookie.
	r = a.do(c, "POST", "/dbsc/refresh", "Sec-Secure-Session-Id", sc.ID)
	n, _ := challengeOf(t, r.Header)
	tok := proof(t, key, jose.ES256, false, n, "")
	var wg sync.WaitGroup
	cookies := make(chan string, 8)
	for i := range 8 {
		wg.Go(func() {
			base := a.bff.URL
			if i%2 == 1 {
				base = nodeB.URL
			}
			req, _ := http.NewRequest("POST", base+"/dbsc/refresh", nil)
			req.Header.Set("Sec-Secure-Session-Id", sc.ID)
			req.Header.Set("Secure-Session-Response", tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if bc := boundSetCookie(resp.Header); bc != "" {
				cookies <- bc
			}
		})
	}
	wg.Wait()
	close(cookies)
	if got := len(cookies); got != 1 {
		t.Fatalf("%d of 8 racing refreshes with one challenge got a bound cookie, want 1", got)
	}
}
