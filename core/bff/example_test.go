package bff_test

import (
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/bffgate/bffgate/core/bff"
)

// A BFF in front of one API with net/http: the browser gets a cookie, the
// API gets a bearer token.
func ExampleEngine_Middleware() {
	b, err := bff.New(bff.Config{
		Issuer:       "https://idp.example.com",
		ClientID:     "spa-bff",
		ClientSecret: "env:BFF_CLIENT_SECRET",
		RedirectURL:  "https://app.example.com/oauth/callback",
		CookieKeys:   []string{"env:BFF_COOKIE_KEY"},
	})
	if err != nil {
		log.Fatal(err) // e.g. "bffgate: config: client_secret: environment variable BFF_CLIENT_SECRET is empty or not set: …"
	}
	api, _ := url.Parse("http://127.0.0.1:9000")
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", b.Middleware(httputil.NewSingleHostReverseProxy(api))))
}

// An adapter for another gateway: read a Request, call Handle, then either
// answer or forward with the header edits.
func ExampleEngine_Handle() {
	b, err := bff.New(bff.Config{
		Issuer: "https://idp.example.com", ClientID: "spa-bff", ClientSecret: "secret",
		RedirectURL: "https://app.example.com/oauth/callback",
		CookieKeys:  []string{"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
	})
	if err != nil {
		log.Fatal(err)
	}
	hook := func(w http.ResponseWriter, r *http.Request) (forward bool) {
		res := b.Handle(r.Context(), bff.NewRequest(r))
		if !res.Forward() {
			res.Write(w) // login redirect, /session JSON, 401, ...
			return false
		}
		res.ApplyTo(r.Header) // Authorization set, session cookie removed
		return true
	}
	_ = hook
}
