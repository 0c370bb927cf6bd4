package serve

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/bffgate/bffgate/core/bff"
	"github.com/bffgate/bffgate/core/session"
	"github.com/bffgate/bffgate/core/session/memstore"
)

// TestRouteResourceAndDPoP: a route's resource and dpop reach the engine.
// A session with a token for resource A (as a refresh with resource
// would have kept) and a DPoP key is put in the store; the resource
// route gets A's token and nothing else, the plain route the session's
// own, and the DPoP route a proof whose htu is the upstream's URL of the
// request (its base path joined with the request's), made with the
// session's key.
func TestRouteResourceAndDPoP(t *testing.T) {
	type seen struct{ auth, dpop, url string }
	var mu sync.Mutex
	got := map[string]seen{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[strings.Split(r.URL.Path, "/")[2]] = seen{r.Header.Get("Authorization"), r.Header.Get("DPoP"), "http://" + r.Host + r.URL.Path}
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	store := memstore.New(time.Now)
	c := testConfig(t, up.URL)
	c.BFF.Store, c.BFF.DPoP = store, true
	c.BFF.Resources = []string{"https://api-a.example"}
	c.Routes = []Route{
		{Path: "/a/", Upstream: up.URL + "/v1", Resource: "https://api-a.example"},
		{Path: "/plain/", Upstream: up.URL + "/v1"},
		{Path: "/dpop/", Upstream: up.URL + "/v1/", DPoP: true},
		{Path: "/guarded/", Upstream: up.URL + "/v1", Resource: "https://api-a.example", Policy: &bff.Policy{Scopes: []string{"admin"}}},
	}
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	raw, _ := key.Bytes()
	id, _ := session.NewID()
	s := &session.Session{Issuer: c.BFF.Issuer, Subject: "alice", Claims: `{}`, AccessToken: "main-token", TokenType: "DPoP",
		Expiry: time.Now().Add(time.Hour), Created: time.Now(), DPoPKey: string(raw)}
	s.SetResource(session.ResourceToken{Resource: "https://api-a.example", AccessToken: "token-for-a", TokenType: "DPoP", Expiry: time.Now().Add(time.Hour)})
	sealed, _ := session.Seal(id, s)
	if err := store.Set(context.Background(), id.StoreKey(), sealed, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/a/x", "/plain/x", "/dpop/x"} {
		req := httptest.NewRequest("POST", path, nil)
		req.Header.Set("Cookie", "__Host-bffgate="+id.String())
		req.Header.Set("X-CSRF", "1")
		req.Header.Set("DPoP", "forged-by-the-client")
		rec := httptest.NewRecorder()
		p.Handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("POST %s: %d %s", path, rec.Code, rec.Body)
		}
	}
	// A route's policy holds on a resource route too: refused before any
	// token goes upstream.
	req := httptest.NewRequest("GET", "/guarded/x", nil)
	req.Header.Set("Cookie", "__Host-bffgate="+id.String())
	req.Header.Set("X-CSRF", "1")
	rec := httptest.NewRecorder()
	p.Handler.ServeHTTP(rec, req)
	mu.Lock()
	defer mu.Unlock()
	if _, reached := got["guarded"]; rec.Code != http.StatusForbidden || reached {
		t.Fatalf("a resource route whose policy the session fails: %d %s (upstream reached: %v), want 403 before the upstream", rec.Code, rec.Body, reached)
	}
	if a := got["a"]; a.auth != "Bearer token-for-a" {
		t.Fatalf("resource route: Authorization %q, want A's token only", a.auth)
	}
	if pl := got["plain"]; pl.auth != "Bearer main-token" {
		t.Fatalf("plain route: Authorization %q, want the session's token", pl.auth)
	}
	d := got["dpop"]
	if d.auth != "DPoP main-token" {
		t.Fatalf("DPoP route: Authorization %q", d.auth)
	}
	jws, err := jose.ParseSigned(d.dpop, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("DPoP route: DPoP header %q: %v", d.dpop, err)
	}
	payload, err := jws.Verify(&key.PublicKey)
	if err != nil {
		t.Fatalf("the proof is not signed with the session's key: %v", err)
	}
	var claims struct{ HTM, HTU string }
	json.Unmarshal(payload, &claims)
	if claims.HTM != "POST" || claims.HTU != d.url || !strings.HasSuffix(claims.HTU, "/v1/dpop/x") {
		t.Fatalf("proof htm %q htu %q; the upstream saw POST %s", claims.HTM, claims.HTU, d.url)
	}
}
