package extauthz

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"

	"github.com/bffgate/bffgate/internal/extauthz/extauthztest"
)

// Envoy, Istio and Kubernetes cannot run here. These tests hold the
// copy-paste files of examples/envoy, examples/istio and
// examples/kubernetes to the code instead: every file parses; the bffgate
// configs they embed load and build as extauthz configs; the header names
// they list are the ones bffgate reads, sets, removes and answers with;
// ports, paths and hosts agree between the files and with bffgate's.

// doc is one parsed YAML document.
type doc = map[string]any

// readYAML parses every document of a file of examples/.
func readYAML(t *testing.T, file string) []doc {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "examples", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []doc
	d := yaml.NewDecoder(f)
	d.SetStrict(true)
	for {
		var v any
		if err := d.Decode(&v); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		m, ok := plain(v).(map[string]any)
		if !ok || len(m) == 0 {
			t.Fatalf("%s: a document is not a mapping", file)
		}
		docs = append(docs, m)
	}
	return docs
}

// plain turns yaml.v2's map[any]any into map[string]any, all the way down.
func plain(v any) any {
	switch v := v.(type) {
	case map[any]any:
		m := map[string]any{}
		for k, e := range v {
			m[fmt.Sprint(k)] = plain(e)
		}
		return m
	case []any:
		for i := range v {
			v[i] = plain(v[i])
		}
	}
	return v
}

// get walks a path of keys (string) and indexes (int); it fails the test
// when the path is not there.
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for i, p := range path {
		switch p := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a mapping at %v", path, path[:i])
			}
			if v, ok = m[p]; !ok {
				t.Fatalf("%v: no %q", path, p)
			}
		case int:
			l, ok := v.([]any)
			if !ok || p >= len(l) {
				t.Fatalf("%v: no item %d", path, p)
			}
			v = l[p]
		}
	}
	return v
}

func str(t *testing.T, v any, path ...any) string {
	t.Helper()
	return fmt.Sprint(get(t, v, path...))
}

func strs(t *testing.T, v any, path ...any) []string {
	t.Helper()
	l, ok := get(t, v, path...).([]any)
	if !ok {
		t.Fatalf("%v: not a list", path)
	}
	var out []string
	for _, e := range l {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

func byKind(t *testing.T, docs []doc, kind, name string) doc {
	t.Helper()
	for _, d := range docs {
		if d["kind"] == kind && str(t, d, "metadata", "name") == name {
			return d
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

func findNamed(t *testing.T, v any, name string, path ...any) map[string]any {
	t.Helper()
	for _, e := range get(t, v, path...).([]any) {
		if m, ok := e.(map[string]any); ok && m["name"] == name {
			return m
		}
	}
	t.Fatalf("%v: nothing named %q", path, name)
	return nil
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// embedded loads a bffgate config held in a ConfigMap as a file and builds
// it, with every "env:NAME" it names set.
func embedded(t *testing.T, cm doc, env []string) (*Config, *Server) {
	t.Helper()
	text := str(t, cm, "data", "extauthz.json")
	for _, m := range regexp.MustCompile(`"env:([A-Z_]+)"`).FindAllStringSubmatch(text, -1) {
		if !slices.Contains(env, m[1]) {
			t.Errorf("the config reads %s, which the container's env does not set", m[1])
		}
	}
	for _, name := range env {
		switch {
		case strings.HasSuffix(name, "COOKIE_KEY"):
			t.Setenv(name, testKey)
		case strings.HasSuffix(name, "REDIS_URL"):
			t.Setenv(name, "redis://127.0.0.1:6379/0") // the tests' real Redis
		default:
			t.Setenv(name, "a-secret-of-enough-length")
		}
	}
	file := filepath.Join(t.TempDir(), "extauthz.json")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file)
	if err != nil {
		t.Fatalf("the embedded config: %v", err)
	}
	s, err := New(c)
	if err != nil {
		t.Fatalf("the embedded config: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return c, s
}

func containerEnv(t *testing.T, container any) []string {
	var env []string
	for _, e := range get(t, container, "env").([]any) {
		env = append(env, str(t, e, "name"))
	}
	return env
}

// flagValue is the value after flag in a container's args.
func flagValue(t *testing.T, container any, flag string) string {
	t.Helper()
	args := strs(t, container, "args")
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("args %v lack %s", args, flag)
	}
	return args[i+1]
}

func lower(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, strings.ToLower(n))
	}
	return out
}

// bffPathList is every path of the BFF's own endpoints (the defaults).
func bffPathList(t *testing.T, c *Config, s *Server) []string {
	t.Helper()
	p := reflect.ValueOf(c.Apps[0].BFF.WithDefaults().Paths)
	var out []string
	for i := range p.NumField() {
		path := p.Field(i).String()
		if !s.apps[0].bff.Owns(path) {
			t.Fatalf("the engine does not own its path %s", path)
		}
		out = append(out, path)
	}
	return out
}

// checkRouteRegex checks a regex that routes the BFF's endpoints to
// bffgate: it matches each of them whole, and no API path.
func checkRouteRegex(t *testing.T, re string, paths []string) {
	t.Helper()
	r := regexp.MustCompile("^(?:" + re + ")$")           // Envoy and Istio match the whole path
	for _, p := range append(paths, "/sessions/AbC-_0") { // and DELETE /sessions/{id}
		if !r.MatchString(p) {
			t.Errorf("the route %q misses the BFF endpoint %s", re, p)
		}
	}
	for _, p := range []string{"/api/orders", "/", "/login/x", "/sessionsx", "/sessions/", "/sessions/a/b", "/tokens"} {
		if r.MatchString(p) {
			t.Errorf("the route %q sends %s to bffgate", re, p)
		}
	}
}

func TestExampleKubernetes(t *testing.T) {
	docs := readYAML(t, "kubernetes/bffgate-extauthz.yaml")
	dep := byKind(t, docs, "Deployment", "bffgate-extauthz")
	svc := byKind(t, docs, "Service", "bffgate-extauthz")
	ctr := get(t, dep, "spec", "template", "spec", "containers", 0)
	c, s := embedded(t, byKind(t, docs, "ConfigMap", "bffgate-extauthz"), containerEnv(t, ctr))
	if c.Secret == "" {
		t.Error("the Kubernetes config has no secret: bffgate is reached over the pod network")
	}
	if v := flagValue(t, ctr, "-config"); filepath.Dir(v) != str(t, ctr, "volumeMounts", 0, "mountPath") || filepath.Base(v) != "extauthz.json" {
		t.Errorf("-config %s is not the mounted ConfigMap's extauthz.json", v)
	}
	ports := map[string]string{}
	for _, p := range get(t, ctr, "ports").([]any) {
		ports[str(t, p, "name")] = str(t, p, "containerPort")
	}
	want := map[string]string{"http": portOf(t, c.Listen), "grpc": portOf(t, flagValue(t, ctr, "-grpc")), "admin": portOf(t, c.AdminListen)}
	if !reflect.DeepEqual(ports, want) {
		t.Errorf("container ports %v, want %v (from the config and -grpc)", ports, want)
	}
	for _, p := range get(t, svc, "spec", "ports").([]any) {
		name := str(t, p, "name")
		if str(t, p, "targetPort") != name || str(t, p, "port") != ports[name] || name == "admin" {
			t.Errorf("Service port %v does not match the container's %s", p, name)
		}
	}
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		if str(t, ctr, probe, "httpGet", "path") != path || str(t, ctr, probe, "httpGet", "port") != "admin" {
			t.Errorf("%s is not %s on the admin port", probe, path)
		}
		rec := httptest.NewRecorder()
		s.Admin().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code == http.StatusNotFound {
			t.Errorf("the admin listener does not serve %s", path)
		}
	}
	if str(t, dep, "spec", "template", "metadata", "annotations", "prometheus.io/port") != ports["admin"] {
		t.Error("the Prometheus annotation does not name the admin port")
	}
}

// denialHeaders are the headers of what bffgate answers itself, through
// a real nginx-less stack with the real test OP: login's 302, /session's
// 401, an API request's 401 and 403, an unsafe path's 400, /token's 404,
// logout without CSRF.
func denialHeaders(t *testing.T) []string {
	s := newStack(t, extauthztest.FreePort(t))
	seen := map[string]bool{}
	add := func(h http.Header) {
		for name := range h {
			seen[strings.ToLower(name)] = true
		}
	}
	nginxSub := func(method, uri string, h ...string) {
		r := s.do(http.DefaultClient, "GET", s.authz.URL+PathNginx, "", append([]string{DefaultSecretHeader, testSecret, "X-Original-Method", method, "X-Original-Uri", uri}, h...)...)
		add(r.Header)
	}
	direct := func(method, path string, h ...string) int {
		r := s.do(noRedirect, method, s.authz.URL+path, "", append([]string{DefaultSecretHeader, testSecret}, h...)...)
		add(r.Header)
		return r.Status
	}
	if st := direct("GET", "/login?returnTo=%2F"); st != http.StatusFound {
		t.Fatalf("/login: %d", st)
	}
	direct("GET", "/session")
	direct("GET", "/token")
	direct("POST", "/logout")
	nginxSub("GET", "/api/orders", "X-CSRF", "1")
	nginxSub("GET", "/api/orders")
	nginxSub("GET", "/api/%2e%2e/x", "X-CSRF", "1")
	for _, h := range []string{"date", "content-length", "x-request-id"} {
		delete(seen, h) // the transport's, and the access log's (not needed by the browser)
	}
	if !seen["set-cookie"] || !seen["location"] {
		t.Fatalf("the denials lack Set-Cookie or Location: %v", seen)
	}
	var out []string
	for h := range seen {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// engineReads are the request headers the engine reads (core/bff: cookies,
// origin.go, login.go, logout.go), besides the CSRF header and the
// identity headers of the config.
var engineReads = []string{"cookie", "origin", "accept", "content-type", "sec-fetch-mode", "sec-fetch-site", "upgrade",
	"access-control-request-method", "access-control-request-headers"}

func TestExampleIstio(t *testing.T) {
	k8s := readYAML(t, "kubernetes/bffgate-extauthz.yaml")
	svc := byKind(t, k8s, "Service", "bffgate-extauthz")
	ctr := get(t, byKind(t, k8s, "Deployment", "bffgate-extauthz"), "spec", "template", "spec", "containers", 0)
	c, s := embedded(t, byKind(t, k8s, "ConfigMap", "bffgate-extauthz"), containerEnv(t, ctr))
	svcHost := str(t, svc, "metadata", "name") + "." + str(t, svc, "metadata", "namespace") + ".svc.cluster.local"
	svcPort := func(name string) string { return str(t, findNamed(t, svc, name, "spec", "ports"), "port") }
	a := s.apps[0]
	managed := lower(a.managed)
	secretKey := strings.ToLower(DefaultSecretHeader)
	if c.SecretHeader != "" {
		secretKey = strings.ToLower(c.SecretHeader)
	}
	paths := bffPathList(t, c, s)

	mesh := readYAML(t, "istio/mesh-config.yaml")[0]
	httpP := get(t, findNamed(t, mesh, "bffgate-http", "meshConfig", "extensionProviders"), "envoyExtAuthzHttp")
	t.Run("http provider", func(t *testing.T) {
		if str(t, httpP, "service") != svcHost || str(t, httpP, "port") != svcPort("http") {
			t.Errorf("bffgate-http is %s:%s, want the Service %s:%s", str(t, httpP, "service"), str(t, httpP, "port"), svcHost, svcPort("http"))
		}
		if str(t, httpP, "pathPrefix") != PathEnvoy || str(t, httpP, "failOpen") != "false" || str(t, httpP, "timeout") == "" {
			t.Errorf("pathPrefix %s, failOpen %s", str(t, httpP, "pathPrefix"), str(t, httpP, "failOpen"))
		}
		if _, ok := get(t, httpP, "includeAdditionalHeadersInCheck").(map[string]any)[secretKey]; !ok {
			t.Errorf("includeAdditionalHeadersInCheck lacks the shared secret's %s", secretKey)
		}
		if got := strs(t, httpP, "headersToUpstreamOnAllow"); !reflect.DeepEqual(got, managed) {
			t.Errorf("headersToUpstreamOnAllow = %v, want the headers bffgate sets %v", got, managed)
		}
		in := strs(t, httpP, "includeRequestHeadersInCheck")
		need := append(slices.Clone(engineReads), strings.ToLower(c.Apps[0].BFF.WithDefaults().CSRFHeader), "authorization")
		for _, h := range a.identity {
			need = append(need, strings.ToLower(h), strings.ToLower(strings.ReplaceAll(h, "-", "_")))
		}
		for _, h := range need {
			if !slices.Contains(in, h) {
				t.Errorf("includeRequestHeadersInCheck lacks %s, which bffgate reads", h)
			}
		}
		deny := strs(t, httpP, "headersToDownstreamOnDeny")
		for _, h := range denialHeaders(t) {
			if h != "location" && !slices.Contains(deny, h) { // Istio adds Location itself
				t.Errorf("headersToDownstreamOnDeny lacks %s, which bffgate's denials carry", h)
			}
		}
		for _, h := range strs(t, httpP, "headersToDownstreamOnAllow") {
			if slices.Contains(managed, h) || strings.HasPrefix(h, "x-envoy") || strings.Contains(h, "*") {
				t.Errorf("headersToDownstreamOnAllow has %s: the browser would get what bffgate sends upstream", h)
			}
		}
	})

	pol := readYAML(t, "istio/policies-http.yaml")
	t.Run("http policies", func(t *testing.T) {
		custom := byKind(t, pol, "AuthorizationPolicy", "bffgate")
		if str(t, custom, "spec", "action") != "CUSTOM" || str(t, custom, "spec", "provider", "name") != "bffgate-http" {
			t.Error("the gateway's policy is not CUSTOM with bffgate-http")
		}
		if got, want := strs(t, custom, "spec", "rules", 0, "to", 0, "operation", "notPaths"), append(paths, "/sessions/*"); !reflect.DeepEqual(got, want) {
			t.Errorf("notPaths = %v, want the BFF's endpoints %v", got, want)
		}
		if got := strs(t, custom, "spec", "rules", 0, "to", 0, "operation", "hosts"); !reflect.DeepEqual(got, c.Apps[0].Hosts) {
			t.Errorf("hosts = %v, want the app's %v", got, c.Apps[0].Hosts)
		}
		vs := byKind(t, pol, "VirtualService", "app")
		route := get(t, vs, "spec", "http", 0)
		checkRouteRegex(t, str(t, route, "match", 0, "uri", "regex"), paths)
		if str(t, route, "route", 0, "destination", "host") != svcHost || str(t, route, "route", 0, "destination", "port", "number") != svcPort("http") {
			t.Error("the BFF endpoints' route does not go to bffgate's Service")
		}
		if _, ok := get(t, route, "headers", "request", "set").(map[string]any)[secretKey]; !ok {
			t.Errorf("the BFF endpoints' route does not set %s", secretKey)
		}
		guard := byKind(t, pol, "AuthorizationPolicy", "bffgate-extauthz")
		if got := strs(t, guard, "spec", "rules", 0, "to", 0, "operation", "ports"); !reflect.DeepEqual(got, []string{svcPort("http"), svcPort("grpc")}) {
			t.Errorf("bffgate's own policy covers ports %v", got)
		}
		ra := byKind(t, pol, "RequestAuthentication", "api")
		iss := str(t, ra, "spec", "jwtRules", 0, "issuer")
		if iss != c.Apps[0].BFF.Issuer || !strings.HasPrefix(str(t, ra, "spec", "jwtRules", 0, "jwksUri"), iss+"/") {
			t.Errorf("RequestAuthentication trusts %s, bffgate's provider is %s", iss, c.Apps[0].BFF.Issuer)
		}
		allow := byKind(t, pol, "AuthorizationPolicy", "api-requires-jwt")
		if got := strs(t, allow, "spec", "rules", 0, "from", 0, "source", "requestPrincipals"); !reflect.DeepEqual(got, []string{iss + "/*"}) {
			t.Errorf("requestPrincipals = %v", got)
		}
	})

	t.Run("grpc provider in the gateway", func(t *testing.T) {
		grpcP := get(t, findNamed(t, mesh, "bffgate-grpc", "meshConfig", "extensionProviders"), "envoyExtAuthzGrpc")
		local := readYAML(t, "istio/grpc-in-gateway.yaml")
		se := byKind(t, local, "ServiceEntry", "bffgate-extauthz-local")
		if str(t, grpcP, "service") != str(t, se, "spec", "hosts", 0) || str(t, grpcP, "port") != str(t, se, "spec", "ports", 0, "number") {
			t.Error("bffgate-grpc does not name the ServiceEntry")
		}
		if str(t, se, "spec", "endpoints", 0, "address") != "127.0.0.1" {
			t.Error("the ServiceEntry is not loopback")
		}
		body := get(t, grpcP, "includeRequestBodyInCheck")
		if str(t, body, "packAsBytes") != "true" || str(t, body, "maxRequestBytes") == "0" || str(t, grpcP, "failOpen") != "false" || str(t, grpcP, "timeout") == "" {
			t.Errorf("bffgate-grpc: %v", grpcP)
		}
		custom := byKind(t, local, "AuthorizationPolicy", "bffgate")
		if str(t, custom, "spec", "action") != "CUSTOM" || str(t, custom, "spec", "provider", "name") != "bffgate-grpc" {
			t.Error("the gateway's gRPC policy is not CUSTOM with bffgate-grpc")
		}
		patch := readYAML(t, "istio/gateway-patch.yaml")[0]
		pc := get(t, patch, "spec", "template", "spec", "containers", 0)
		grpcAddr := flagValue(t, pc, "-grpc")
		lc, ls := embedded(t, byKind(t, local, "ConfigMap", "bffgate-extauthz-local"), containerEnv(t, pc))
		if lc.Secret != "" {
			t.Error("the gateway-local config has a secret, which Istio cannot send over gRPC")
		}
		for _, addr := range []string{lc.Listen, grpcAddr} {
			if err := ls.MayListen(addr); err != nil {
				t.Errorf("the gateway-local container: %v", err)
			}
		}
		if portOf(t, grpcAddr) != str(t, se, "spec", "ports", 0, "number") {
			t.Errorf("-grpc %s is not the ServiceEntry's port", grpcAddr)
		}
		if str(t, get(t, patch, "spec", "template", "spec", "volumes", 0), "configMap", "name") != "bffgate-extauthz-local" {
			t.Error("the patch does not mount the gateway-local config")
		}
		if str(t, pc, "readinessProbe", "httpGet", "path") != "/readyz" || portOf(t, lc.AdminListen) != str(t, pc, "ports", 0, "containerPort") {
			t.Error("the patch's probes are not on the admin listener")
		}
	})
}

func TestExampleEnvoy(t *testing.T) {
	c, s := embedded(t, byKind(t, readYAML(t, "kubernetes/bffgate-extauthz.yaml"), "ConfigMap", "bffgate-extauthz"),
		[]string{"BFFGATE_SECRET", "BFFGATE_CLIENT_SECRET", "BFFGATE_COOKIE_KEY", "BFFGATE_REDIS_URL"})
	managed := lower(s.apps[0].managed)
	paths := bffPathList(t, c, s)
	hcm := func(d doc) any {
		return get(t, d, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config")
	}
	cluster := func(d doc, name string) string {
		c := findNamed(t, d, name, "static_resources", "clusters")
		return str(t, c, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address", "socket_address", "port_value")
	}
	common := func(t *testing.T, f any) {
		if str(t, f, "transport_api_version") != "V3" || str(t, f, "failure_mode_allow") != "false" {
			t.Errorf("ext_authz: transport_api_version %s, failure_mode_allow %s", str(t, f, "transport_api_version"), str(t, f, "failure_mode_allow"))
		}
	}
	t.Run("grpc", func(t *testing.T) {
		d := readYAML(t, "envoy/envoy-grpc.yaml")[0]
		f := get(t, findNamed(t, hcm(d), "envoy.filters.http.ext_authz", "http_filters"), "typed_config")
		common(t, f)
		if str(t, f, "grpc_service", "timeout") == "" || str(t, f, "grpc_service", "envoy_grpc", "cluster_name") != "bffgate-grpc" {
			t.Error("grpc_service: no timeout or not the bffgate-grpc cluster")
		}
		if str(t, f, "with_request_body", "pack_as_bytes") != "true" || str(t, f, "with_request_body", "max_request_bytes") == "0" {
			t.Error("with_request_body: back-channel logout needs the body")
		}
		if cluster(d, "bffgate-grpc") != "9192" { // bffgate-extauthz's -grpc default
			t.Errorf("the bffgate-grpc cluster is on port %s", cluster(d, "bffgate-grpc"))
		}
	})
	t.Run("http", func(t *testing.T) {
		d := readYAML(t, "envoy/envoy-http.yaml")[0]
		f := get(t, findNamed(t, hcm(d), "envoy.filters.http.ext_authz", "http_filters"), "typed_config")
		common(t, f)
		hs := get(t, f, "http_service")
		if str(t, hs, "path_prefix") != PathEnvoy || str(t, hs, "server_uri", "timeout") == "" {
			t.Error("http_service: path_prefix or timeout")
		}
		if got := str(t, hs, "authorization_request", "headers_to_add", 0, "key"); got != strings.ToLower(DefaultSecretHeader) {
			t.Errorf("the check request carries %s, want the secret's header", got)
		}
		var up []string
		for _, p := range get(t, hs, "authorization_response", "allowed_upstream_headers", "patterns").([]any) {
			up = append(up, str(t, p, "exact"))
		}
		if !reflect.DeepEqual(up, managed) {
			t.Errorf("allowed_upstream_headers = %v, want the headers bffgate sets %v", up, managed)
		}
		if _, ok := get(t, hs, "authorization_response").(map[string]any)["allowed_client_headers"]; ok {
			t.Error("allowed_client_headers would cut bffgate's denial headers")
		}
		if cluster(d, "bffgate") != portOf(t, DefaultListen) {
			t.Errorf("the bffgate cluster is on port %s", cluster(d, "bffgate"))
		}
		route := get(t, hcm(d), "route_config", "virtual_hosts", 0, "routes", 0)
		checkRouteRegex(t, str(t, route, "match", "safe_regex", "regex"), paths)
		if str(t, route, "route", "cluster") != "bffgate" || str(t, route, "request_headers_to_add", 0, "header", "key") != strings.ToLower(DefaultSecretHeader) ||
			str(t, route, "typed_per_filter_config", "envoy.filters.http.ext_authz", "disabled") != "true" {
			t.Error("the BFF endpoints' route: not to bffgate, without the secret, or with ext_authz on")
		}
	})
}
