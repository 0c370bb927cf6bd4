package bff_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/tests/flowtest"
	"github.com/bffgate/bffgate/tests/op"
)

// dpopChecker is a resource server that takes DPoP-bound tokens only (RFC
// 9449 §7): the proof's signature with its own embedded key, typ, htm,
// htu (this server's URL of the request), ath, a recent iat and an unseen
// jti, and the token's binding (cnf.jkt, asked of the OP by introspection)
// to that key. It answers 401 with the reason otherwise.
type dpopChecker struct {
	op  *op.Server
	now func() time.Time
	srv *httptest.Server

	mu     sync.Mutex // guards seen, proofs
	seen   map[string]bool
	proofs []string // accepted proofs, for replays
}

func newDPoPChecker(t *testing.T, s *op.Server, now func() time.Time) *dpopChecker {
	d := &dpopChecker{op: s, now: now, seen: map[string]bool{}}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := d.check(r); reason != "" {
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_dpop_proof"`)
			http.Error(w, reason, http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *dpopChecker) check(r *http.Request) string {
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
	proofs := r.Header.Values("DPoP")
	if !ok || len(proofs) != 1 {
		return "want Authorization: DPoP and one DPoP header"
	}
	jws, err := jose.ParseSigned(proofs[0], []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return "the proof is not a JWS"
	}
	h := jws.Signatures[0].Protected
	if h.ExtraHeaders["typ"] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		return "the proof's header lacks typ dpop+jwt or a public jwk"
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		return "the proof's signature does not verify with its jwk"
	}
	var c struct {
		JTI, HTM, HTU, ATH string
		IAT                int64
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "the proof's claims are malformed"
	}
	sum := sha256.Sum256([]byte(at))
	switch {
	case c.HTM != r.Method:
		return "htm " + c.HTM + " is not " + r.Method
	case c.HTU != d.srv.URL+r.URL.Path:
		return "htu " + c.HTU + " is not this URL"
	case c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]):
		return "ath is not the token's hash"
	case c.IAT < d.now().Add(-time.Minute).Unix() || c.IAT > d.now().Add(time.Minute).Unix():
		return "iat is not recent"
	}
	d.mu.Lock()
	replay := d.seen[c.JTI]
	d.seen[c.JTI] = true
	d.mu.Unlock()
	if replay || c.JTI == "" {
		return "the proof's jti was seen before (replay)"
	}
	in, err := d.op.Introspect(context.Background(), at)
	cnf, _ := in["cnf"].(map[string]any)
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	if err != nil || in["active"] != true || cnf["jkt"] != base64.RawURLEncoding.EncodeToString(tp) {
		return "the token is not active or not bound to the proof's key"
	}
	d.mu.Lock()
	d.proofs = append(d.proofs, proofs[0])
	d.mu.Unlock()
	return ""
}

// dpopEnv is an env with DPoP on, whose OP gives this client DPoP-bound
// tokens only and, with nonce, requires its DPoP-Nonce. The BFF forwards
// to a dpopChecker through a route that asks for proofs (for htu, the URL
// in dpopURL, or the checker's when empty).
func dpopEnv(t *testing.T, nonce bool, dpopURL string) (*env, *dpopChecker) {
	t.Helper()
	e := newEnvOP(t, func(o *op.Options) { o.DPoPBound, o.DPoPNonce = true, nonce },
		func(c *bff.Config, _ *op.Server) { c.DPoP = true })
	d := newDPoPChecker(t, e.op, e.clock.Now)
	if dpopURL == "" {
		dpopURL = d.srv.URL
	}
	target, _ := url.Parse(d.srv.URL)
	e.handler = routed(t, e.eng, bff.Route{DPoPURL: dpopURL}, target)
	return e, d
}

// routed is bffgate serve's forwarding in small: HandleRoute, then a
// reverse proxy with the engine's header edits.
func routed(t *testing.T, eng *bff.Engine, rt bff.Route, target *url.URL) http.Handler {
	if err := eng.CheckRoute("routes[0]", rt); err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := eng.HandleHTTPRoute(r, rt)
		if !res.Forward() {
			res.Write(w)
			return
		}
		res.ApplyTo(r.Header)
		proxy.ServeHTTP(w, r)
	})
}

// jkt is the RFC 7638 thumbprint of the session's DPoP key.
func jkt(t *testing.T, raw string) string {
	t.Helper()
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: &k.PublicKey}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// TestDPoP (RFC 9449) against the real OP, which binds tokens to a key
// and requires its nonce: the code exchange without the nonce is answered
// use_dpop_nonce and tried once more with it; the session's tokens are
// bound to the session's own key (kept only in the sealed session); the
// route forwards them with a proof the checking upstream accepts, also
// after a refresh.
func TestDPoP(t *testing.T) {
	e, d := dpopEnv(t, true, "")
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	st, err := e.op.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Grants[op.GrantAuthorizationCode] != 1 || st.GrantErrors[op.GrantAuthorizationCode] != 1 {
		t.Fatalf("code exchanges: %d ok, %d failed; want the nonce challenge, then one success", st.Grants[op.GrantAuthorizationCode], st.GrantErrors[op.GrantAuthorizationCode])
	}
	s := e.sessionOf(c)
	if s.TokenType != "DPoP" || len(s.DPoPKey) != 32 {
		t.Fatalf("session token type %q, key %d bytes; want DPoP and a P-256 key", s.TokenType, len(s.DPoPKey))
	}
	in, err := e.op.Introspect(context.Background(), s.AccessToken)
	if cnf, _ := in["cnf"].(map[string]any); err != nil || cnf["jkt"] != jkt(t, s.DPoPKey) {
		t.Fatalf("introspection %v, %v; want cnf.jkt of the session's key", in, err)
	}
	for _, method := range []string{"GET", "POST"} {
		if r := e.do(c, method, "/api/orders?page=2", "X-CSRF", "1"); r.Status != http.StatusOK {
			t.Fatalf("%s through the DPoP route: %d %s", method, r.Status, r.Body)
		}
	}
	// Another browser logs in: its session has a key of its own.
	c2 := e.browser()
	e.login(c2, op.BobUser, op.BobPassword)
	if e.sessionOf(c2).DPoPKey == s.DPoPKey {
		t.Fatal("two sessions share a DPoP key")
	}
	// The refresh sends a proof with the nonce learnt; the new token is
	// bound to the same key and still accepted.
	e.clock.Advance(45 * time.Second)
	before := e.grants(op.GrantRefreshToken)
	if r := e.do(c, "GET", "/api/orders", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("after refresh: %d %s", r.Status, r.Body)
	}
	if n := e.grants(op.GrantRefreshToken) - before; n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	if next := e.sessionOf(c); next.AccessToken == s.AccessToken || next.DPoPKey != s.DPoPKey {
		t.Fatal("the refresh did not replace the token, or changed the key")
	}
	// A route without a proof sends the token as Bearer: the checking
	// upstream refuses it (RFC 9449 §7.2).
	target, _ := url.Parse(d.srv.URL)
	e.handler = e.eng.Middleware(httputil.NewSingleHostReverseProxy(target))
	if r := e.do(c, "GET", "/api/orders", "X-CSRF", "1"); r.Status != http.StatusUnauthorized {
		t.Fatalf("a DPoP-bound token without a proof: %d, want the upstream's 401", r.Status)
	}
}

// TestDPoPUpstreamRefuses: the checking upstream refuses a proof for
// another URL (htu), one replayed with another method (htm), and one
// replayed as it was (jti): a stolen proof is worth one request to one
// URL with one method, once.
func TestDPoPUpstreamRefuses(t *testing.T) {
	e, d := dpopEnv(t, false, "http://api.elsewhere.example")
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	if r := e.do(c, "GET", "/api/orders", "X-CSRF", "1"); r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "htu") {
		t.Fatalf("a proof for another URL: %d %s, want 401 for htu", r.Status, r.Body)
	}
	target, _ := url.Parse(d.srv.URL)
	e.handler = routed(t, e.eng, bff.Route{DPoPURL: d.srv.URL}, target)
	if r := e.do(c, "GET", "/api/orders", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("the right URL: %d %s", r.Status, r.Body)
	}
	at := e.sessionOf(c).AccessToken
	proof := d.proofs[len(d.proofs)-1]
	for _, tc := range []struct{ method, want string }{{"POST", "htm"}, {"GET", "replay"}} {
		req, _ := http.NewRequest(tc.method, d.srv.URL+"/api/orders", nil)
		req.Header.Set("Authorization", "DPoP "+at)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), tc.want) {
			t.Fatalf("the proof replayed with %s: %d %s, want 401 for %s", tc.method, resp.StatusCode, body, tc.want)
		}
	}
}

// TestDPoPReplayAtTheOP: the OP refuses a proof it has seen, so the
// BFF's fresh proof per token request is not a nicety. The proof is made
// here with the session's key (which the test, owning the store, reads).
func TestDPoPReplayAtTheOP(t *testing.T) {
	e, _ := dpopEnv(t, false, "")
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	s := e.sessionOf(c)
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), []byte(s.DPoPKey))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k},
		(&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	var disc struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	resp, err := http.Get(e.op.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	sign := func(jti string) string {
		claims, _ := json.Marshal(map[string]any{"jti": jti, "htm": "POST", "htu": disc.TokenEndpoint, "iat": time.Now().Unix()})
		jws, err := signer.Sign(claims)
		if err != nil {
			t.Fatal(err)
		}
		proof, _ := jws.CompactSerialize()
		return proof
	}
	proof := sign("replayed-once")
	rt := s.RefreshToken
	refresh := func() (int, map[string]any) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		req, _ := http.NewRequest("POST", disc.TokenEndpoint, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(e.op.ClientID, e.op.ClientSecret)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, out := refresh()
	if status != http.StatusOK || out["token_type"] != "DPoP" {
		t.Fatalf("the first use of the proof: %d %v", status, out)
	}
	rt, _ = out["refresh_token"].(string) // rotated; the old one would fail for that reason alone
	status, out = refresh()
	if status != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("the proof again: %d %v, want 400 invalid_grant", status, out)
	}
	// The same request with a fresh proof succeeds: the refusal was the
	// replayed proof's, not the refresh token's.
	proof = sign("fresh")
	if status, out = refresh(); status != http.StatusOK {
		t.Fatalf("a fresh proof after the replay: %d %v", status, out)
	}
}

// TestConfigRoute: Config.Route is the route of every API request of an
// engine that gets none from HandleRoute (a Tyk API's, through Handle):
// its proofs are for dpop_url joined with the path less strip_prefix, the
// URL a gateway that strips the prefix calls. New refuses a route the
// engine cannot serve, naming the field.
func TestConfigRoute(t *testing.T) {
	e := newEnvOP(t, func(o *op.Options) { o.DPoPBound = true }, func(c *bff.Config, _ *op.Server) {
		c.DPoP, c.Route = true, bff.Route{DPoPURL: "https://orders.internal/v1/", StripPrefix: "/api"}
	})
	c := e.browser()
	e.login(c, op.AliceUser, op.AlicePassword)
	if r := e.do(c, "GET", "/api/orders?page=2", "X-CSRF", "1"); r.Status != http.StatusOK {
		t.Fatalf("GET: %d %s", r.Status, r.Body)
	}
	if _, err := flowtest.CheckDPoP(context.Background(), e.op, e.up.Last(t).Header, "GET", "https://orders.internal/v1/orders"); err != nil {
		t.Fatal(err)
	}
	base := func() bff.Config {
		return bff.Config{Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s", RedirectURL: "https://app.example/oauth/callback",
			CookieKeys: []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}}
	}
	for _, tc := range []struct {
		name  string
		edit  func(*bff.Config)
		field string
	}{
		{"unknown resource", func(c *bff.Config) {
			c.Resources, c.Route.Resource = []string{"https://a.example"}, "https://b.example"
		}, "route.resource"},
		{"dpop_url without dpop", func(c *bff.Config) { c.Route.DPoPURL = "https://api.example" }, "route.dpop_url"},
		{"dpop_url with a query", func(c *bff.Config) { c.DPoP, c.Route.DPoPURL = true, "https://api.example/?x=1" }, "route.dpop_url"},
		{"strip_prefix without dpop_url", func(c *bff.Config) { c.Route.StripPrefix = "/api" }, "route.strip_prefix"},
		{"strip_prefix not a path", func(c *bff.Config) {
			c.DPoP, c.Route = true, bff.Route{DPoPURL: "https://api.example", StripPrefix: "api"}
		}, "route.strip_prefix"},
	} {
		c := base()
		tc.edit(&c)
		var ce *bff.ConfigError
		if _, err := bff.New(c); !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: %v, want a config error at %s", tc.name, err, tc.field)
		}
	}
}
