package bff

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Security profiles (Config.Profile).
const (
	// ProfileFAPI2 is the FAPI 2.0 Security Profile's client: pushed
	// authorization requests, PKCE S256, the iss of RFC 9207 required,
	// private_key_jwt (PS256 or ES256) or tls_client_auth, and
	// sender-constrained tokens (DPoP, or certificate-bound with
	// tls_client_auth), with no fallback to a weaker method.
	ProfileFAPI2 = "fapi2"
)

// profileDefaults fills in the defaults a profile changes, before the
// general ones: PAR required, and the client authentication method the
// configured credentials imply.
func (c *Config) profileDefaults() {
	if c.Profile != ProfileFAPI2 {
		return
	}
	if c.PushedAuthorization == "" {
		c.PushedAuthorization = PARRequired
	}
	if c.ClientAuthMethod == "" {
		switch {
		case len(c.ClientKeys) > 0:
			c.ClientAuthMethod = AuthPrivateKeyJWT
		case c.TLSClientCert != "":
			c.ClientAuthMethod = AuthTLSClient
		}
	}
}

// validateFAPI checks client authentication, DPoP and the profile: each
// contradiction names the field that contradicts.
func (c *Config) validateFAPI() error {
	for i, r := range c.Resources {
		if u, err := url.Parse(r); err != nil || !u.IsAbs() || u.Fragment != "" || u.Host == "" {
			return cfgErr(fmt.Sprintf("resources[%d]", i), "%q is not an absolute URI without a fragment (RFC 8707), e.g. https://api.example.com", r)
		}
	}
	methods := []string{AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT, AuthTLSClient}
	if !slices.Contains(methods, c.ClientAuthMethod) {
		return cfgErr("client_auth_method", "%q: use %q, %q, %q or %q", c.ClientAuthMethod, methods[0], methods[1], methods[2], methods[3])
	}
	if c.DPoP && c.Mode == ModeTokenMediating {
		return cfgErr("dpop", "cannot go with mode %q: a DPoP-bound token is useless to the browser without its key, which never leaves the BFF; use mode %q, or turn dpop off", ModeTokenMediating, ModeBFF)
	}
	switch c.Profile {
	case "":
		return nil
	case ProfileFAPI2:
	default:
		return cfgErr("profile", "%q is not a profile: use %q or leave it empty", c.Profile, ProfileFAPI2)
	}
	const why = "contradicts profile fapi2"
	if c.PushedAuthorization != PARRequired {
		return cfgErr("pushed_authorization", "%q %s, which requires pushed authorization requests: use %q or leave it empty", c.PushedAuthorization, why, PARRequired)
	}
	if c.ClientAuthMethod != AuthPrivateKeyJWT && c.ClientAuthMethod != AuthTLSClient {
		return cfgErr("client_auth_method", "%q %s, which allows only %q or %q: set client_keys or tls_client_cert", c.ClientAuthMethod, why, AuthPrivateKeyJWT, AuthTLSClient)
	}
	if c.ClientAuthMethod == AuthPrivateKeyJWT && c.ClientKeyAlg != "" && c.ClientKeyAlg != "PS256" && c.ClientKeyAlg != "ES256" {
		return cfgErr("client_key_alg", "%q %s, which allows PS256 or ES256", c.ClientKeyAlg, why)
	}
	if !c.DPoP && c.ClientAuthMethod != AuthTLSClient {
		return cfgErr("dpop", "is off, which %s: its tokens must be sender-constrained; turn dpop on, or use tls_client_auth for certificate-bound tokens", why)
	}
	if c.Mode != ModeBFF {
		return cfgErr("mode", "%q %s: the browser cannot hold sender-constrained tokens; use %q", c.Mode, why, ModeBFF)
	}
	return nil
}

// errProfile is a provider that cannot serve the configured profile.
var errProfile = errors.New("the identity provider does not support what profile fapi2 requires")

// checkProfile holds the discovered provider to the profile: under fapi2
// it must take pushed authorization requests, and issue the
// sender-constrained tokens the config asks for (DPoP with ES256, or
// certificate-bound ones for tls_client_auth). A provider that cannot is
// refused rather than used with weaker tokens.
func (b *Engine) checkProfile(op *oidc.Provider) error {
	if b.cfg.Profile != ProfileFAPI2 {
		return nil
	}
	var meta struct {
		PAR       string   `json:"pushed_authorization_request_endpoint"`
		DPoPAlgs  []string `json:"dpop_signing_alg_values_supported"`
		CertBound bool     `json:"tls_client_certificate_bound_access_tokens"`
	}
	if err := op.Claims(&meta); err != nil {
		return err
	}
	var missing string
	switch {
	case meta.PAR == "":
		missing = "pushed_authorization_request_endpoint"
	case b.cfg.DPoP && !slices.Contains(meta.DPoPAlgs, "ES256"):
		missing = "ES256 in dpop_signing_alg_values_supported"
	case !b.cfg.DPoP && !meta.CertBound:
		missing = "tls_client_certificate_bound_access_tokens"
	default:
		return nil
	}
	b.logLimited(slog.LevelError, "bffgate: profile fapi2: the provider's discovery document lacks "+missing, "issuer", b.cfg.Issuer)
	return fmt.Errorf("%w: its discovery document lacks %s", errProfile, missing)
}
