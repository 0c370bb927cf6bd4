package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// Recording is what login.mjs writes (see there).
type Recording struct {
	File           string   `json:"-"` // where Run read it
	Mode           string   `json:"mode"`
	URL            string   `json:"url"`
	Chromium       string   `json:"chromium"`
	Steps          []string `json:"steps"`
	SessionCookies []string `json:"sessionCookies"`
	// Responses are what page.on('response') saw; Intercepted are the
	// responses whose bodies login.mjs read before the page could move on
	// (no resource type recorded).
	Responses   []Response `json:"responses"`
	Intercepted []Response `json:"intercepted"`
	Requests    []struct {
		URL          string            `json:"url"`
		Method       string            `json:"method"`
		ResourceType string            `json:"resourceType"`
		Headers      map[string]string `json:"headers"`
		PostData     *string           `json:"postData"`
	} `json:"requests"`
	Storage []struct {
		When           string            `json:"when"`
		URL            string            `json:"url"`
		LocalStorage   map[string]string `json:"localStorage"`
		SessionStorage map[string]string `json:"sessionStorage"`
		DocumentCookie string            `json:"documentCookie"`
		Cookies        []struct {
			Name   string `json:"name"`
			Value  string `json:"value"`
			Domain string `json:"domain"`
		} `json:"cookies"`
	} `json:"storage"`
	Unsettled int     `json:"unsettled"`
	Error     *string `json:"error"`
}

// Header is one HTTP header line.
// Response is one response the browser received, as login.mjs recorded it.
type Response struct {
	URL          string   `json:"url"`
	Status       int      `json:"status"`
	Method       string   `json:"method"`
	ResourceType string   `json:"resourceType"`
	Headers      []Header `json:"headers"`
	Body         *string  `json:"body"`
	BodyError    *string  `json:"bodyError"`
}

type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Place is one piece of text the browser received, sent or kept.
type Place struct {
	Kind   string // "response header", "response body", "request URL", "request header", "request body", "page storage", "cookie jar"
	Origin string // of the URL
	Method string
	Path   string
	Header string // lower case, for headers
	Text   string
}

func (p Place) String() string {
	s := fmt.Sprintf("%s of %s %s%s", p.Kind, p.Method, p.Origin, p.Path)
	if p.Header != "" {
		s += " (" + p.Header + ")"
	}
	return s
}

// Places flattens rec into every piece of text it holds.
func Places(rec *Recording) []Place {
	var out []Place
	at := func(kind, method, rawURL string) Place {
		p := Place{Kind: kind, Method: method, Path: rawURL}
		if u, err := url.Parse(rawURL); err == nil {
			p.Origin, p.Path = u.Scheme+"://"+u.Host, u.EscapedPath()
		}
		return p
	}
	for _, r := range slices.Concat(rec.Responses, rec.Intercepted) {
		for _, h := range r.Headers {
			p := at("response header", r.Method, r.URL)
			p.Header, p.Text = strings.ToLower(h.Name), h.Value
			out = append(out, p)
		}
		if r.Body != nil {
			p := at("response body", r.Method, r.URL)
			p.Text = *r.Body
			out = append(out, p)
		}
	}
	for _, r := range rec.Requests {
		p := at("request URL", r.Method, r.URL)
		p.Text = r.URL
		out = append(out, p)
		for name, v := range r.Headers {
			p := at("request header", r.Method, r.URL)
			p.Header, p.Text = strings.ToLower(name), v
			out = append(out, p)
		}
		if r.PostData != nil {
			p := at("request body", r.Method, r.URL)
			p.Text = *r.PostData
			out = append(out, p)
		}
	}
	for _, s := range rec.Storage {
		for kind, m := range map[string]map[string]string{"localStorage": s.LocalStorage, "sessionStorage": s.SessionStorage} {
			for k, v := range m {
				p := at("page storage", "", s.URL)
				p.Header, p.Text = kind, k+"="+v
				out = append(out, p)
			}
		}
		p := at("page storage", "", s.URL)
		p.Header, p.Text = "document.cookie", s.DocumentCookie
		out = append(out, p)
		for _, c := range s.Cookies {
			p := Place{Kind: "cookie jar", Origin: c.Domain, Header: c.Name, Text: c.Name + "=" + c.Value}
			out = append(out, p)
		}
	}
	return out
}

// SessionCookies returns the session cookie values the browser held: the
// one it showed login.mjs, and every value a Set-Cookie from origin gave
// it.
func SessionCookies(rec *Recording, ps []Place, origin string) []string {
	var ids []string
	add := func(v string) {
		if v != "" && !slices.Contains(ids, v) {
			ids = append(ids, v)
		}
	}
	for _, v := range rec.SessionCookies {
		add(v)
	}
	for _, p := range ps {
		if p.Kind == "response header" && p.Header == "set-cookie" && p.Origin == origin {
			if v, ok := strings.CutPrefix(p.Text, SessionCookie+"="); ok {
				v, _, _ = strings.Cut(v, ";")
				add(v)
			}
		}
	}
	return ids
}

// The kinds of Secret.
const (
	AccessToken  = "access token"
	RefreshToken = "refresh token"
	IDToken      = "ID token"
)

// Secret is a token the browser must not see, or see only where allowed.
type Secret struct {
	Kind    string // AccessToken, RefreshToken, IDToken
	Value   string
	Needles []string // the token, and parts of it that identify it alone
}

// NewSecret returns the secret of a token of kind.
func NewSecret(kind, value string) Secret {
	s := Secret{Kind: kind, Value: value, Needles: []string{value}}
	if parts := strings.Split(value, "."); len(parts) == 3 {
		// A JWT: its payload and its signature each identify it (its
		// header is the same for all of the provider's ID tokens).
		s.Needles = append(s.Needles, parts[1], parts[2])
	} else if len(value) >= 32 {
		// An opaque token: so does each half of it.
		s.Needles = append(s.Needles, value[:len(value)/2], value[len(value)/2:])
	}
	return s
}

// Secrets collects tokens, each once.
type Secrets struct {
	list []Secret
	seen map[string]bool
}

// Add adds the token value of kind, unless it is empty or known.
func (s *Secrets) Add(kind, value string) {
	if value == "" || s.seen[value] {
		return
	}
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[value] = true
	s.list = append(s.list, NewSecret(kind, value))
}

// List returns the secrets in the order they were added.
func (s *Secrets) List() []Secret { return slices.Clone(s.list) }

// Options are what Check needs to know of the stack.
type Options struct {
	URL  string // the SPA's and the BFF's origin
	Mode string
	// Secrets are the tokens to search for: every access, refresh and ID
	// token the provider gave the BFF for the browser's session(s). Check
	// adds the access tokens GET /token handed out.
	Secrets *Secrets
	// Introspect asks the provider about a token (op.Server.Introspect):
	// after logout every access token must be inactive.
	Introspect func(ctx context.Context, token string) (map[string]any, error)
}

// allowed says where a token may reach the browser
// (tests/browser/README.md, "What may reach the browser").
func allowed(o Options, s Secret, p Place) bool {
	switch s.Kind {
	case AccessToken:
		// Token-mediating mode: /token hands it to the app, which sends
		// it to the API that checks tokens itself.
		return o.Mode == ModeTokenMediating && p.Origin == o.URL &&
			((p.Kind == "response body" && p.Method == "GET" && p.Path == "/token") ||
				(p.Kind == "request header" && p.Header == "authorization" && strings.HasPrefix(p.Path, "/direct/")))
	}
	// The ID token never reaches the browser: RP-initiated logout sends
	// client_id, not id_token_hint (logout_id_token_hint is off). Nor
	// does the refresh token.
	return false
}

// Check searches ps, the places of rec, for o's tokens, checks the
// recording is complete (so the search saw what it should), and that the
// provider revoked the access tokens at logout.
func Check(t testing.TB, rec *Recording, ps []Place, o Options) {
	if rec.Mode != o.Mode || rec.URL != o.URL {
		t.Fatalf("the recording is of %s at %s, want %s at %s", rec.Mode, rec.URL, o.Mode, o.URL)
	}
	t.Logf("Chromium %s; %d responses, %d response bodies intercepted, %d requests", rec.Chromium, len(rec.Responses), len(rec.Intercepted), len(rec.Requests))
	count := map[string]int{}
	for _, s := range o.Secrets.List() {
		count[s.Kind]++
	}
	for _, kind := range []string{AccessToken, RefreshToken, IDToken} {
		if count[kind] == 0 {
			t.Errorf("the session never held a %s: nothing to search for", kind)
		}
	}
	// In token-mediating mode the browser gets an access token from /token:
	// it may be the session's own or an exchanged one; search for it too.
	var handedOut []string
	for _, p := range ps {
		if p.Kind == "response body" && p.Origin == o.URL && p.Method == "GET" && p.Path == "/token" {
			var body map[string]any
			if json.Unmarshal([]byte(p.Text), &body) == nil {
				if v, ok := body["access_token"].(string); ok {
					handedOut = append(handedOut, v)
					o.Secrets.Add(AccessToken, v)
				}
				for _, f := range []string{"refresh_token", "id_token"} {
					if _, ok := body[f]; ok {
						t.Errorf("GET /token answered with a %s field", f)
					}
				}
			}
		}
	}
	for _, r := range rec.Responses {
		if strings.HasPrefix(r.URL, o.URL+"/token") && r.Status == 200 {
			cc := ""
			for _, h := range r.Headers {
				if strings.EqualFold(h.Name, "cache-control") {
					cc = h.Value
				}
			}
			if !strings.Contains(cc, "no-store") {
				t.Errorf("GET /token handed out a token with Cache-Control %q, want no-store", cc)
			}
		}
	}
	secrets := o.Secrets.List()
	count = map[string]int{}
	for _, s := range secrets {
		count[s.Kind]++
	}
	t.Logf("searching for %d access, %d refresh and %d ID tokens (%d needles) in %d places",
		count[AccessToken], count[RefreshToken], count[IDToken], needles(secrets), len(ps))

	found := map[string]int{}
	leaks := map[string]bool{}
	for _, s := range secrets {
		for _, p := range ps {
			for _, n := range s.Needles {
				if !strings.Contains(p.Text, n) {
					continue
				}
				if allowed(o, s, p) {
					found[s.Kind+" in "+p.Kind+" of "+p.Method+" "+p.Path]++
				} else {
					what := "the " + s.Kind
					if n != s.Value {
						what = "part of the " + s.Kind
					}
					if msg := fmt.Sprintf("LEAK: %s is in the %s", what, p); !leaks[msg] {
						leaks[msg] = true
						t.Error(msg)
					}
				}
				break
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(found)) {
		t.Logf("allowed: %s (%d times)", k, found[k])
	}
	if o.Mode == ModeTokenMediating {
		if len(handedOut) == 0 {
			t.Error("token-mediating mode: no GET /token response body with an access_token was recorded")
		}
		if found[AccessToken+" in request header of GET /direct/whoami"] == 0 {
			t.Error("token-mediating mode: the access token from /token was not found in the Authorization header to /direct/whoami")
		}
	}
	checkComplete(t, o, rec, ps)

	// The provider revoked the tokens at logout.
	if o.Introspect == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range secrets {
		if s.Kind != AccessToken {
			continue
		}
		info, err := o.Introspect(ctx, s.Value)
		if err != nil {
			t.Errorf("introspect: %v", err)
		} else if info["active"] != false {
			t.Errorf("after logout the provider still says an access token is active: %v", info["active"])
		}
	}
}

func needles(ss []Secret) int {
	n := 0
	for _, s := range ss {
		n += len(s.Needles)
	}
	return n
}

// checkComplete checks that the search saw what it should: every response
// body, Set-Cookie headers, and the BFF's JSON.
func checkComplete(t testing.TB, o Options, rec *Recording, ps []Place) {
	if rec.Error != nil {
		t.Errorf("the recording has an error: %s", *rec.Error)
	}
	if rec.Unsettled != 0 {
		t.Errorf("login.mjs ended with %d requests or responses not yet recorded", rec.Unsettled)
	}
	intercepted := map[string]bool{}
	for _, r := range rec.Intercepted {
		if r.Body != nil {
			intercepted[r.Method+" "+r.URL] = true
		} else if r.BodyError == nil || *r.BodyError != "redirect" {
			t.Errorf("the body of %s %s (HTTP %d) was not intercepted: %v", r.Method, r.URL, r.Status, deref(r.BodyError))
		}
	}
	for _, r := range rec.Responses {
		if r.Body != nil || (r.Status >= 300 && r.Status < 400) || intercepted[r.Method+" "+r.URL] {
			continue
		}
		t.Errorf("the body of %s %s (HTTP %d) was read neither from Playwright (%s) nor by interception", r.Method, r.URL, r.Status, deref(r.BodyError))
	}
	must := map[string]bool{
		"a Set-Cookie header with the session cookie":        false,
		"the /session body with the user's name":             false,
		"the POST /logout body (read before the navigation)": false,
	}
	for _, p := range ps {
		switch {
		case p.Kind == "response header" && p.Header == "set-cookie" && strings.HasPrefix(p.Text, SessionCookie+"="+firstOr(rec.SessionCookies)):
			must["a Set-Cookie header with the session cookie"] = true
		case p.Kind == "response body" && p.Origin == o.URL && p.Path == "/session" && strings.Contains(p.Text, "Alice Example"):
			must["the /session body with the user's name"] = true
		case p.Kind == "response body" && p.Origin == o.URL && p.Method == "POST" && p.Path == "/logout" && strings.Contains(p.Text, "logoutUrl"):
			must["the POST /logout body (read before the navigation)"] = true
		}
	}
	for what, ok := range must {
		if !ok {
			t.Errorf("the recording lacks %s: the search would miss things", what)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "no reason given"
	}
	return *s
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return "\x00"
	}
	return s[0]
}
