// Package bff is bffgate's engine: it makes a gateway the
// Backend-for-Frontend of a browser app (OAuth 2.0 for Browser-Based
// Applications, RFC 10017).
//
// The BFF runs the authorization code flow with PKCE (RFC 7636, S256) as a
// confidential client, keeps every token in a server-side session (package
// session) behind one HttpOnly cookie, refreshes tokens itself, and turns
// the cookie into "Authorization: Bearer" on the way to the APIs. In
// token-mediating mode it also hands the app short-lived access tokens.
//
// The engine is gateway-neutral: an adapter reads a Request, calls
// Handle, and either writes the Result's response or forwards the request
// with the Result's header edits. Middleware is that adapter for net/http:
//
//	b, err := bff.New(bff.Config{
//		Issuer:       "https://idp.example.com",
//		ClientID:     "spa-bff",
//		ClientSecret: "env:BFF_CLIENT_SECRET",
//		RedirectURL:  "https://app.example.com/oauth/callback",
//		CookieKeys:   []string{"env:BFF_COOKIE_KEY"},
//	})
//	if err != nil {
//		log.Fatal(err) // names the field and the fix
//	}
//	api := httputil.NewSingleHostReverseProxy(upstream)
//	log.Fatal(http.ListenAndServe(":8080", b.Middleware(api)))
//
// Endpoints (each path configurable, below an optional prefix): GET /login,
// GET /oauth/callback, GET /session, GET /token, POST /logout,
// GET /logout/callback and POST /backchannel-logout. Every other request is
// an API request: without a valid session it gets 401 JSON, never a
// redirect.
package bff
