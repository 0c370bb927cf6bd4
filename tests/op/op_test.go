package op

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	redirectURI   = "http://127.0.0.1:3000/oauth/callback"
	postLogoutURI = "http://127.0.0.1:3000/logout/callback"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func randomString(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// pkce returns a code verifier and its S256 challenge.
func pkce(t *testing.T) (verifier, challenge string) {
	verifier = randomString(t)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

type authRequest struct {
	scope, state, nonce, challenge string
}

// authURL builds the authorization request by hand (no x/oauth2 here).
func authURL(s *Server, r authRequest) string {
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {s.ClientID},
		"redirect_uri":  {redirectURI},
		"scope":         {r.scope},
		"state":         {r.state},
		"nonce":         {r.nonce},
	}
	if r.challenge != "" {
		q.Set("code_challenge", r.challenge)
		q.Set("code_challenge_method", "S256")
	}
	return s.Issuer + "/auth?" + q.Encode()
}

// tokenCall posts a token-endpoint request with client_secret_basic (or
// client_secret_post if post is true) and returns the status and JSON body.
func tokenCall(t *testing.T, ctx context.Context, s *Server, form url.Values, post bool) (int, map[string]any) {
	t.Helper()
	if post {
		form.Set("client_id", s.ClientID)
		form.Set("client_secret", s.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoints.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if !post {
		req.SetBasicAuth(url.QueryEscape(s.ClientID), url.QueryEscape(s.ClientSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("token endpoint: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("token endpoint: HTTP %d, not JSON: %v: %s", resp.StatusCode, err, body)
	}
	return resp.StatusCode, out
}

type tokens struct {
	access, id, refresh, scope string
	idClaims                   map[string]any
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// login runs a whole code flow for user and returns the tokens.
func login(t *testing.T, ctx context.Context, s *Server, client *http.Client, user, password string) tokens {
	t.Helper()
	verifier, challenge := pkce(t)
	state, nonce := randomString(t), randomString(t)
	cb, err := s.Login(ctx, client, authURL(s, authRequest{
		scope: "openid profile email offline_access", state: state, nonce: nonce, challenge: challenge,
	}), user, password)
	if err != nil {
		t.Fatalf("Login(%s): %v", user, err)
	}
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != redirectURI {
		t.Fatalf("Login returned %q, want the redirect URI %q", got, redirectURI)
	}
	q := cb.Query()
	if got := q.Get("state"); got != state {
		t.Errorf("state = %q, want %q", got, state)
	}
	if got := q.Get("iss"); got != s.Issuer {
		t.Errorf("iss (RFC 9207) = %q, want %q", got, s.Issuer)
	}
	code := q.Get("code")
	if code == "" {
		t.Fatalf("no code in %s", cb.Redacted())
	}

	status, body := tokenCall(t, ctx, s, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
	}, false)
	if status != http.StatusOK {
		t.Fatalf("code exchange: HTTP %d: %v", status, body)
	}
	tk := tokens{access: str(body, "access_token"), id: str(body, "id_token"), refresh: str(body, "refresh_token"), scope: str(body, "scope")}
	if tk.access == "" || tk.id == "" || tk.refresh == "" {
		t.Fatalf("code exchange: want access_token, id_token and refresh_token, got keys %v", keys(body))
	}
	if got := str(body, "token_type"); got != "Bearer" {
		t.Errorf("token_type = %q, want Bearer", got)
	}
	tk.idClaims, err = DecodeJWTPayload(tk.id)
	if err != nil {
		t.Fatal(err)
	}
	if got := str(tk.idClaims, "nonce"); got != nonce {
		t.Errorf("ID token nonce = %q, want %q", got, nonce)
	}
	return tk
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func newClient() *http.Client {
	return &http.Client{Jar: NewJar(), Timeout: 10 * time.Second}
}

func wantStats(t *testing.T, ctx context.Context, s *Server, grants, grantErrors map[string]int, backchannel int) {
	t.Helper()
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for gt, want := range grants {
		if got := st.Grants[gt]; got != want {
			t.Errorf("Stats.Grants[%s] = %d, want %d", gt, got, want)
		}
	}
	for gt, want := range grantErrors {
		if got := st.GrantErrors[gt]; got != want {
			t.Errorf("Stats.GrantErrors[%s] = %d, want %d", gt, got, want)
		}
	}
	if st.Backchannel != backchannel {
		t.Errorf("Stats.Backchannel = %d, want %d", st.Backchannel, backchannel)
	}
}

func TestDiscovery(t *testing.T) {
	s := StartT(t, Options{RedirectURIs: []string{redirectURI}})
	ctx := testContext(t)

	if !strings.HasPrefix(s.Issuer, "http://127.0.0.1:") || strings.HasSuffix(s.Issuer, "/") {
		t.Errorf("Issuer = %q, want http://127.0.0.1:<port> without trailing slash", s.Issuer)
	}
	if s.ClientID != "bffgate" || s.ClientSecret != "bffgate-secret" {
		t.Errorf("client = %q/%q, want the defaults bffgate/bffgate-secret", s.ClientID, s.ClientSecret)
	}

	var d map[string]any
	if err := s.getJSON(ctx, s.Issuer+"/.well-known/openid-configuration", &d); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"issuer":                 s.Issuer,
		"authorization_endpoint": s.Issuer + "/auth",
		"token_endpoint":         s.Issuer + "/token",
		"end_session_endpoint":   s.Issuer + "/session/end",
		"introspection_endpoint": s.Issuer + "/token/introspection",
		"revocation_endpoint":    s.Issuer + "/token/revocation",
		"jwks_uri":               s.Issuer + "/jwks",
	} {
		if got := str(d, k); got != want {
			t.Errorf("discovery %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"authorization_response_iss_parameter_supported", "backchannel_logout_supported", "backchannel_logout_session_supported"} {
		if got, _ := d[k].(bool); !got {
			t.Errorf("discovery %s = %v, want true", k, d[k])
		}
	}
	list := func(k string) []string {
		var out []string
		raw, _ := d[k].([]any)
		for _, v := range raw {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	for k, want := range map[string][]string{
		"grant_types_supported":                 {GrantAuthorizationCode, GrantRefreshToken, GrantTokenExchange},
		"code_challenge_methods_supported":      {"S256"},
		"response_types_supported":              {"code"},
		"scopes_supported":                      {"openid", "offline_access", "profile", "email"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post"},
	} {
		got := list(k)
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("discovery %s = %v, want it to contain %q", k, got, w)
			}
		}
	}
	if got := list("code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v, want [S256] only", got)
	}
}

// TestCodeFlowRefresh: login, code exchange, ID token claims, refresh token
// rotation and reuse detection, counted by Stats.
func TestCodeFlowRefresh(t *testing.T) {
	bcl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(bcl.Close)
	s := StartT(t, Options{
		RedirectURIs:         []string{redirectURI},
		BackchannelLogoutURI: bcl.URL + "/backchannel-logout",
		AccessTokenTTL:       90 * time.Second,
	})
	ctx := testContext(t)

	tk := login(t, ctx, s, newClient(), AliceUser, AlicePassword)

	for k, want := range map[string]any{
		"iss": s.Issuer, "aud": "bffgate", "sub": "alice",
		"name": "Alice Example", "given_name": "Alice", "family_name": "Example",
		"preferred_username": "alice", "email": "alice@example.com", "email_verified": true,
	} {
		if got := tk.idClaims[k]; got != want {
			t.Errorf("ID token %s = %v, want %v", k, got, want)
		}
	}
	if sid := str(tk.idClaims, "sid"); sid == "" {
		t.Errorf("ID token has no sid although a back-channel logout URI is registered; claims: %v", keys(tk.idClaims))
	}

	in, err := s.Introspect(ctx, tk.access)
	if err != nil {
		t.Fatal(err)
	}
	if in["active"] != true || in["sub"] != "alice" || in["client_id"] != "bffgate" {
		t.Errorf("introspection = %v, want active for sub alice, client bffgate", in)
	}
	if exp, iat := in["exp"].(float64), in["iat"].(float64); exp-iat != 90 {
		t.Errorf("access token lifetime = %v s, want 90 (AccessTokenTTL)", exp-iat)
	}

	// Refresh rotates the refresh token.
	status, body := tokenCall(t, ctx, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}}, false)
	if status != http.StatusOK {
		t.Fatalf("refresh: HTTP %d: %v", status, body)
	}
	newRefresh := str(body, "refresh_token")
	switch newRefresh {
	case "":
		t.Fatalf("refresh: no refresh_token in the response (keys %v), want a rotated one", keys(body))
	case tk.refresh:
		t.Fatalf("refresh: got the same refresh token back, want it rotated")
	}
	if str(body, "access_token") == "" || str(body, "access_token") == tk.access {
		t.Errorf("refresh: want a new access token")
	}
	if str(body, "id_token") == "" {
		t.Errorf("refresh: want an ID token (openid scope)")
	}

	// The old refresh token is now rejected ...
	status, body = tokenCall(t, ctx, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}}, true)
	if status != http.StatusBadRequest || str(body, "error") != "invalid_grant" {
		t.Errorf("reused refresh token: HTTP %d %v, want 400 invalid_grant", status, body)
	}
	// ... and its reuse revoked the whole grant, the rotated token included.
	status, body = tokenCall(t, ctx, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {newRefresh}}, false)
	if status != http.StatusBadRequest || str(body, "error") != "invalid_grant" {
		t.Errorf("rotated refresh token after reuse of its predecessor: HTTP %d %v, want 400 invalid_grant", status, body)
	}

	wantStats(t, ctx, s,
		map[string]int{GrantAuthorizationCode: 1, GrantRefreshToken: 1, GrantTokenExchange: 0},
		map[string]int{GrantRefreshToken: 2, GrantAuthorizationCode: 0},
		0)
}

func TestSecondLoginReusesOPSession(t *testing.T) {
	s := StartT(t, Options{RedirectURIs: []string{redirectURI}})
	ctx := testContext(t)
	client := newClient()

	first := login(t, ctx, s, client, BobUser, BobPassword)
	if got := str(first.idClaims, "email"); got != "bob@example.com" {
		t.Errorf("ID token email = %q, want bob@example.com", got)
	}
	// The OP session in the jar answers without any form: no password needed.
	second := login(t, ctx, s, client, BobUser, "not-asked-for")
	if got := str(second.idClaims, "sub"); got != "bob" {
		t.Errorf("second login: sub = %q, want bob", got)
	}
	// A fresh jar must log in again.
	_, err := s.Login(ctx, newClient(), authURL(s, authRequest{scope: "openid", state: "s", nonce: "n", challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}), BobUser, "wrong")
	if err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Errorf("login in a fresh jar with a wrong password: err = %v, want a rejection", err)
	}
}

func TestWrongPasswordRejected(t *testing.T) {
	s := StartT(t, Options{RedirectURIs: []string{redirectURI}})
	ctx := testContext(t)
	_, challenge := pkce(t)
	u := authURL(s, authRequest{scope: "openid", state: "st", nonce: "no", challenge: challenge})

	cb, err := s.Login(ctx, newClient(), u, AliceUser, "bob-password")
	if err == nil {
		t.Fatalf("Login with a wrong password returned %v, want an error", cb.Redacted())
	}
	for _, want := range []string{"rejected", `"alice"`, "HTTP 401", "Invalid username or password"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}

	_, err = s.Login(ctx, newClient(), u, "mallory", "mallory-password")
	if err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Errorf("unknown user: err = %v, want a rejection", err)
	}
}

func TestPKCERequired(t *testing.T) {
	s := StartT(t, Options{RedirectURIs: []string{redirectURI}})
	ctx := testContext(t)

	cb, err := s.Login(ctx, newClient(), authURL(s, authRequest{scope: "openid", state: "st", nonce: "no"}), AliceUser, AlicePassword)
	var ae *AuthorizationError
	if !errors.As(err, &ae) {
		t.Fatalf("Login without code_challenge: err = %v, want an *AuthorizationError", err)
	}
	if ae.Code != "invalid_request" || !strings.Contains(ae.Description, "PKCE") {
		t.Errorf("error = %q (%q), want invalid_request about PKCE", ae.Code, ae.Description)
	}
	if cb == nil || !strings.HasPrefix(cb.String(), redirectURI) || cb.Query().Get("code") != "" {
		t.Errorf("want the redirect URI with an error and no code, got %v", cb)
	}
	if got := cb.Query().Get("iss"); got != s.Issuer {
		t.Errorf("error response iss = %q, want %q", got, s.Issuer)
	}
}

func TestTokenExchange(t *testing.T) {
	s := StartT(t, Options{RedirectURIs: []string{redirectURI}, AccessTokenTTL: 10 * time.Minute})
	ctx := testContext(t)
	tk := login(t, ctx, s, newClient(), AliceUser, AlicePassword)
	if tk.scope != "openid profile email" {
		t.Fatalf("subject token scope = %q, want %q", tk.scope, "openid profile email")
	}

	exchange := func(extra url.Values, post bool) (int, map[string]any) {
		form := url.Values{
			"grant_type":         {GrantTokenExchange},
			"subject_token":      {tk.access},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		}
		for k, v := range extra {
			form[k] = v
		}
		return tokenCall(t, ctx, s, form, post)
	}

	// A narrower scope for an audience (client_secret_post this time).
	status, body := exchange(url.Values{"scope": {"openid email"}, "audience": {"https://api.example.test"}}, true)
	if status != http.StatusOK {
		t.Fatalf("token exchange: HTTP %d: %v", status, body)
	}
	for k, want := range map[string]any{
		"issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"token_type":        "Bearer",
		"scope":             "openid email",
		"expires_in":        float64(300), // min(AccessTokenTTL, 300)
	} {
		if got := body[k]; got != want {
			t.Errorf("token exchange %s = %v, want %v", k, got, want)
		}
	}
	exchanged := str(body, "access_token")
	if exchanged == "" || exchanged == tk.access {
		t.Fatalf("token exchange: want a new access token")
	}
	in, err := s.Introspect(ctx, exchanged)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"active": true, "sub": "alice", "client_id": "bffgate",
		"scope": "openid email", "aud": "https://api.example.test",
	} {
		if got := in[k]; got != want {
			t.Errorf("introspection of the exchanged token: %s = %v, want %v", k, got, want)
		}
	}

	// No scope: the subject's scope.
	status, body = exchange(nil, false)
	if status != http.StatusOK || str(body, "scope") != tk.scope {
		t.Errorf("token exchange without scope: HTTP %d %v, want 200 with scope %q", status, body, tk.scope)
	}

	// Broader than the subject token: invalid_scope.
	status, body = exchange(url.Values{"scope": {"openid email admin"}}, false)
	if status != http.StatusBadRequest || str(body, "error") != "invalid_scope" {
		t.Errorf("token exchange with a broader scope: HTTP %d %v, want 400 invalid_scope", status, body)
	}
	// Wrong subject_token_type: invalid_request.
	status, body = exchange(url.Values{"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}}, false)
	if status != http.StatusBadRequest || str(body, "error") != "invalid_request" {
		t.Errorf("token exchange with an id_token type: HTTP %d %v, want 400 invalid_request", status, body)
	}
	// Unknown subject token: invalid_request (RFC 8693 2.2.2).
	status, body = exchange(url.Values{"subject_token": {"not-a-token"}}, false)
	if status != http.StatusBadRequest || str(body, "error") != "invalid_request" {
		t.Errorf("token exchange with an unknown subject token: HTTP %d %v, want 400 invalid_request", status, body)
	}

	wantStats(t, ctx, s,
		map[string]int{GrantAuthorizationCode: 1, GrantRefreshToken: 0, GrantTokenExchange: 2},
		map[string]int{GrantTokenExchange: 3},
		0)
}

// TestLogoutBackchannel: RP-initiated logout with confirmation sends a
// back-channel logout token for the session and revokes its grant.
func TestLogoutBackchannel(t *testing.T) {
	var (
		mu           sync.Mutex
		logoutTokens []string
		contentType  string
	)
	bcl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/backchannel-logout" {
			http.Error(w, "unexpected", http.StatusNotFound)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		logoutTokens = append(logoutTokens, r.PostForm.Get("logout_token"))
		contentType = r.Header.Get("Content-Type")
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(bcl.Close)

	s := StartT(t, Options{
		RedirectURIs:           []string{redirectURI},
		PostLogoutRedirectURIs: []string{postLogoutURI},
		BackchannelLogoutURI:   bcl.URL + "/backchannel-logout",
	})
	ctx := testContext(t)
	client := newClient()
	tk := login(t, ctx, s, client, AliceUser, AlicePassword)
	sid := str(tk.idClaims, "sid")
	if sid == "" {
		t.Fatal("ID token has no sid")
	}

	q := url.Values{
		"id_token_hint":            {tk.id},
		"post_logout_redirect_uri": {postLogoutURI},
		"state":                    {"bye-state"},
	}
	back, err := s.ConfirmLogout(ctx, client, s.endpoints.EndSessionEndpoint+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Scheme + "://" + back.Host + back.Path; got != postLogoutURI {
		t.Errorf("ConfirmLogout returned %q, want %q", got, postLogoutURI)
	}
	if got := back.Query().Get("state"); got != "bye-state" {
		t.Errorf("post-logout state = %q, want bye-state", got)
	}

	mu.Lock()
	gotTokens, gotType := slices.Clone(logoutTokens), contentType
	mu.Unlock()
	if len(gotTokens) != 1 || gotTokens[0] == "" {
		t.Fatalf("back-channel logout: got %d logout_token POSTs, want 1 with a logout_token", len(gotTokens))
	}
	if !strings.HasPrefix(gotType, "application/x-www-form-urlencoded") {
		t.Errorf("back-channel logout Content-Type = %q, want application/x-www-form-urlencoded", gotType)
	}
	claims, err := DecodeJWTPayload(gotTokens[0])
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"iss": s.Issuer, "aud": "bffgate", "sub": "alice", "sid": sid} {
		if got := claims[k]; got != want {
			t.Errorf("logout token %s = %v, want %v", k, got, want)
		}
	}
	events, _ := claims["events"].(map[string]any)
	if _, ok := events["http://schemas.openid.net/event/backchannel-logout"]; !ok {
		t.Errorf("logout token events = %v, want the back-channel logout event", claims["events"])
	}
	if _, ok := claims["nonce"]; ok {
		t.Errorf("logout token has a nonce")
	}

	// Logout revoked the grant: its tokens are dead.
	in, err := s.Introspect(ctx, tk.access)
	if err != nil {
		t.Fatal(err)
	}
	if in["active"] != false {
		t.Errorf("access token after logout: introspection %v, want active false", in)
	}
	status, body := tokenCall(t, ctx, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}}, false)
	if status != http.StatusBadRequest || str(body, "error") != "invalid_grant" {
		t.Errorf("refresh after logout: HTTP %d %v, want 400 invalid_grant", status, body)
	}

	// The OP session is gone: the next login asks for the password again.
	_, err = s.Login(ctx, client, authURL(s, authRequest{scope: "openid", state: "s", nonce: "n", challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}), AliceUser, "wrong")
	if err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Errorf("login after logout with a wrong password: err = %v, want a rejection", err)
	}

	wantStats(t, ctx, s, map[string]int{GrantAuthorizationCode: 1}, map[string]int{GrantRefreshToken: 1}, 1)
}

func TestConfirmLogoutWithoutRedirect(t *testing.T) {
	s := StartT(t, Options{RedirectURIs: []string{redirectURI}})
	ctx := testContext(t)
	client := newClient()
	login(t, ctx, s, client, BobUser, BobPassword)

	back, err := s.ConfirmLogout(ctx, client, s.endpoints.EndSessionEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	if want := s.Issuer + "/session/end/success"; back.String() != want {
		t.Errorf("ConfirmLogout without post_logout_redirect_uri returned %q, want %q", back, want)
	}
}

func TestNewJarSecureCookiesOnLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "__Host-bffgate", Value: "v1", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
			return
		}
		c, err := r.Cookie("__Host-bffgate")
		if err != nil {
			http.Error(w, "no cookie", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, c.Value)
	}))
	t.Cleanup(srv.Close)

	client := &http.Client{Jar: NewJar()}
	for _, path := range []string{"/set", "/get"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: HTTP %d %s", path, resp.StatusCode, body)
		}
		if path == "/get" && string(body) != "v1" {
			t.Errorf("cookie sent back = %q, want v1", body)
		}
	}

	// Not loopback: Secure cookies stay off plain http.
	u, _ := url.Parse("http://example.test/")
	jar := NewJar()
	jar.SetCookies(&url.URL{Scheme: "https", Host: "example.test", Path: "/"}, []*http.Cookie{{Name: "s", Value: "1", Secure: true}})
	if got := jar.Cookies(u); len(got) != 0 {
		t.Errorf("Secure cookie sent to %s: %v", u, got)
	}
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "app.localhost": true, "127.0.0.2": true, "example.test": false, "10.0.0.1": false} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestParseForms(t *testing.T) {
	doc := `<html><body>
<form id="op.logoutForm" method="post" action="/session/end/confirm"><input type="hidden" name="xsrf" value="a&amp;b"/></form>
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes</button>
<button type="submit" form="op.logoutForm">No</button>
<form method=POST action='/x'><input name=login value=''><input type="password" name="password"><input type="checkbox" name="remember" checked><button>Go</button></form>
</body></html>`
	forms := parseForms(doc)
	if len(forms) != 2 {
		t.Fatalf("got %d forms, want 2", len(forms))
	}
	if got, want := forms[0].values().Encode(), "logout=yes&xsrf=a%26b"; got != want {
		t.Errorf("logout form values = %q, want %q", got, want)
	}
	if forms[0].method != "post" || forms[0].action != "/session/end/confirm" || forms[0].hasPassword {
		t.Errorf("logout form = %+v", forms[0])
	}
	if !forms[1].hasPassword || forms[1].method != "post" || forms[1].action != "/x" {
		t.Errorf("login form = %+v", forms[1])
	}
	if got, want := forms[1].values().Encode(), "login=&password=&remember=on"; got != want {
		t.Errorf("login form values = %q, want %q", got, want)
	}
}

func TestCloseIdempotent(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	resp, err := http.Get(s.Issuer + "/.well-known/openid-configuration")
	if err == nil {
		resp.Body.Close()
		t.Errorf("OP still answers after Close")
	}
}

func TestStartWithoutNodeModules(t *testing.T) {
	s, err := start(t.TempDir(), Options{})
	if err == nil {
		s.Close()
		t.Fatal("start in a directory without node_modules succeeded, want an error")
	}
	for _, want := range []string{"make test-deps", "npm ci --prefix tests/op"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
