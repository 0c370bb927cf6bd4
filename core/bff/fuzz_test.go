package bff

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzHandle throws hostile requests at the engine: it never panics, every
// answer is a well-formed response (JSON for errors), and it forwards only
// requests that carry the one valid session cookie and the CSRF header.
func FuzzHandle(f *testing.F) {
	c := validConfig()
	c.Issuer = "http://127.0.0.1:1" // nothing listens: provider calls fail fast
	c.HTTPTimeout = 1
	e, good := authenticated(f, c)
	valid := good.Header.Get("Cookie")
	f.Add("GET", "/api/x", "a=1", valid, "1", "")
	f.Add("POST", "/logout", "", valid, "1", "https://evil.example")
	f.Add("GET", "/oauth/callback", "state=x&code=y&iss=z", "", "", "")
	f.Add("OPTIONS", "/api", "", "", "", "null")
	f.Add("GET", "/login", "returnTo=%2F%2Fevil&prompt=login", "__Host-bffgate-login-x=y", "", "")
	f.Add("POST", "/backchannel-logout", "", "", "", "")
	f.Add("GET", "/session", "", "__Host-bffgate=\x00", "", "")
	f.Fuzz(func(t *testing.T, method, path, query, cookie, csrf, origin string) {
		h := http.Header{"Cookie": {cookie}, "X-Csrf": {csrf}, "Content-Type": {"application/x-www-form-urlencoded"}}
		if origin != "" {
			h["Origin"] = []string{origin}
		}
		req := &Request{Method: method, Host: "app.example", Path: path, RawQuery: query, Header: h,
			Body: strings.NewReader("logout_token=" + query)}
		res := e.Handle(context.Background(), req)
		if res.Forward() {
			if !strings.Contains(cookie, strings.TrimPrefix(valid, "theme=dark; ")) || csrf != "1" {
				t.Fatalf("forwarded %s %s with cookie %q csrf %q", method, path, cookie, csrf)
			}
			if !strings.HasPrefix(res.Set.Get("Authorization"), "Bearer ") {
				t.Fatal("forwarded without a bearer token")
			}
			return
		}
		if res.Status < 200 || res.Status > 599 {
			t.Fatalf("status %d", res.Status)
		}
		if res.Status >= 400 {
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(res.Body, &body); err != nil || body.Error == "" {
				t.Fatalf("%d answer without a JSON error code: %q", res.Status, res.Body)
			}
		}
	})
}
