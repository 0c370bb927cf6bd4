package compose

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
)

// realm is what checkRealm reads of a Keycloak realm export.
type realm struct {
	Realm               string        `json:"realm"`
	AccessTokenLifespan int           `json:"accessTokenLifespan"`
	RevokeRefreshToken  bool          `json:"revokeRefreshToken"`
	Clients             []realmClient `json:"clients"`
	Users               []struct {
		Username    string `json:"username"`
		Enabled     bool   `json:"enabled"`
		Credentials []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"credentials"`
	} `json:"users"`
}

// realmClient is a client of the realm export.
type realmClient struct {
	ClientID     string            `json:"clientId"`
	PublicClient bool              `json:"publicClient"`
	Secret       string            `json:"secret"`
	StandardFlow bool              `json:"standardFlowEnabled"`
	RedirectURIs []string          `json:"redirectUris"`
	Attributes   map[string]string `json:"attributes"`
}

// checkRealm lists what the realm lacks for a stack's bffgate config: its
// issuer (the Keycloak service's hostname and the realm), a confidential
// client with the config's secret and PKCE S256 required, the redirect and
// post-logout URIs, a back-channel logout URL at the stack's gateway, two
// users, a short access-token lifetime and refresh-token rotation.
func checkRealm(r realm, cfg map[string]any, c bff.Config, clientSecret string) []error {
	var errs []error
	kc := services(cfg)["keycloak"]
	if issuer := environment(kc)["KC_HOSTNAME"] + "/realms/" + r.Realm; c.Issuer != issuer {
		errs = append(errs, fmt.Errorf("issuer %s, but Keycloak's is %s", c.Issuer, issuer))
	}
	i := slices.IndexFunc(r.Clients, func(x realmClient) bool {
		return x.ClientID == c.ClientID
	})
	if i < 0 {
		return append(errs, fmt.Errorf("the realm has no client %q", c.ClientID))
	}
	cl := r.Clients[i]
	if cl.PublicClient || !cl.StandardFlow {
		errs = append(errs, fmt.Errorf("client %s: want a confidential client with the code flow", cl.ClientID))
	}
	if cl.Secret != clientSecret {
		errs = append(errs, fmt.Errorf("client %s: its secret is not the stack's BFF_CLIENT_SECRET", cl.ClientID))
	}
	if cl.Attributes["pkce.code.challenge.method"] != "S256" {
		errs = append(errs, fmt.Errorf("client %s: PKCE S256 is not required", cl.ClientID))
	}
	if !slices.Contains(cl.RedirectURIs, c.RedirectURL) {
		errs = append(errs, fmt.Errorf("client %s: redirect_url %s is not a redirect URI", cl.ClientID, c.RedirectURL))
	}
	if c.PostLogoutRedirectURL == "" || !slices.Contains(strings.Split(cl.Attributes["post.logout.redirect.uris"], "##"), c.PostLogoutRedirectURL) {
		errs = append(errs, fmt.Errorf("client %s: post_logout_redirect_url %q is not a post-logout redirect URI", cl.ClientID, c.PostLogoutRedirectURL))
	}
	// The back-channel URL names the gateway service and a port it
	// listens on inside the stack, and bffgate's path.
	bc := cl.Attributes["backchannel.logout.url"]
	path := c.WithDefaults().Paths.BackchannelLogout
	if host, port, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(bc, "http://"), path), ":"); !ok || !strings.HasSuffix(bc, path) || services(cfg)[host] == nil || !slices.Contains(containerPorts(services(cfg)[host]), port) {
		errs = append(errs, fmt.Errorf("client %s: back-channel logout URL %q is not http://<gateway service>:<its port>%s", cl.ClientID, bc, path))
	}
	if cl.Attributes["backchannel.logout.session.required"] != "true" {
		errs = append(errs, fmt.Errorf("client %s: the back-channel logout token must carry sid", cl.ClientID))
	}
	if len(r.Users) != 2 {
		errs = append(errs, fmt.Errorf("the realm has %d users, want 2", len(r.Users)))
	}
	if r.AccessTokenLifespan <= 0 || r.AccessTokenLifespan > 300 {
		errs = append(errs, fmt.Errorf("accessTokenLifespan %d: keep it short (≤ 300 s) so that the demo shows refreshes", r.AccessTokenLifespan))
	}
	if !r.RevokeRefreshToken {
		errs = append(errs, errors.New("revokeRefreshToken is off: refresh tokens are not rotated"))
	}
	return errs
}

// containerPorts are the ports a service publishes, inside the container
// (the gateway's listen port; other services of the stack reach it there).
func containerPorts(svc map[string]any) []string {
	var out []string
	ports, _ := svc["ports"].([]any)
	for _, p := range ports {
		switch p := p.(type) {
		case map[string]any:
			out = append(out, fmt.Sprint(p["target"]))
		case string:
			out = append(out, p[strings.LastIndex(p, ":")+1:])
		}
	}
	return out
}

func loadRealm(t *testing.T, cfg map[string]any) realm {
	t.Helper()
	file := source(services(cfg)["keycloak"], "/opt/keycloak/data/import/realm.json")
	if file == "" {
		t.Fatal("keycloak does not mount a realm at /opt/keycloak/data/import/realm.json")
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var r realm
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return r
}

func TestRealmDeclaresTheConfigsURIs(t *testing.T) {
	for _, stack := range stacks {
		t.Run(stack, func(t *testing.T) {
			_, cfg := resolved(t, stack)
			if !slices.Contains(services(cfg)["keycloak"]["command"].([]any), any("--import-realm")) {
				t.Error("keycloak does not import the realm at start (--import-realm)")
			}
			r := loadRealm(t, cfg)
			m := bffgateConfigs(t, cfg)[0]
			for _, c := range m.configs {
				for _, err := range checkRealm(r, cfg, c, m.env["BFF_CLIENT_SECRET"]) {
					t.Error(err)
				}
			}
		})
	}
	t.Run("refusals", func(t *testing.T) {
		_, cfg := resolved(t, "tyk")
		m := bffgateConfigs(t, cfg)[0]
		for _, tt := range []struct {
			name string
			edit func(*realm, *bff.Config)
			want int
		}{
			{"as it is", func(*realm, *bff.Config) {}, 0},
			{"other redirect", func(_ *realm, c *bff.Config) { c.RedirectURL = "http://localhost:9999/oauth/callback" }, 1},
			{"other post-logout", func(_ *realm, c *bff.Config) { c.PostLogoutRedirectURL = "http://localhost:8000/bye" }, 1},
			{"other issuer", func(_ *realm, c *bff.Config) { c.Issuer = "http://localhost:8180/realms/bffgate" }, 1},
			{"no client", func(_ *realm, c *bff.Config) { c.ClientID = "nobody" }, 1},
			{"public client without PKCE", func(r *realm, _ *bff.Config) {
				r.Clients[0].PublicClient = true
				delete(r.Clients[0].Attributes, "pkce.code.challenge.method")
			}, 2},
			{"back-channel at another host", func(r *realm, _ *bff.Config) {
				r.Clients[0].Attributes["backchannel.logout.url"] = "http://kong:8000/backchannel-logout"
			}, 1},
			{"no rotation, long tokens, one user", func(r *realm, _ *bff.Config) {
				r.RevokeRefreshToken, r.AccessTokenLifespan, r.Users = false, 3600, r.Users[:1]
			}, 3},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := loadRealm(t, cfg)
				c := m.configs[0]
				tt.edit(&r, &c)
				if errs := checkRealm(r, cfg, c, m.env["BFF_CLIENT_SECRET"]); len(errs) != tt.want {
					t.Fatalf("checkRealm: %d errors %v, want %d", len(errs), errs, tt.want)
				}
			})
		}
	})
}
