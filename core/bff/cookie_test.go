package bff

import (
	"net/http"
	"strings"
	"testing"
)

func TestCookieValue(t *testing.T) {
	tests := []struct {
		name    string
		header  []string
		want    string
		wantHas bool
	}{
		{"none", nil, "", false},
		{"only", []string{"__Host-bffgate=abc"}, "abc", true},
		{"among others", []string{"a=1; __Host-bffgate=abc; b=2"}, "abc", true},
		{"no spaces", []string{"a=1;__Host-bffgate=abc;b=2"}, "abc", true},
		{"quoted", []string{`__Host-bffgate="abc"`}, "abc", true},
		{"first wins", []string{"__Host-bffgate=one; __Host-bffgate=two"}, "one", true},
		{"second header line", []string{"a=1", "__Host-bffgate=abc"}, "abc", true},
		{"prefix of another name", []string{"__Host-bffgate-login-x=abc"}, "", false},
		{"name only", []string{"__Host-bffgate"}, "", false},
		{"empty value", []string{"__Host-bffgate="}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, has := cookieValue(http.Header{"Cookie": tt.header}, "__Host-bffgate")
			if got != tt.want || has != tt.wantHas {
				t.Fatalf("cookieValue = %q, %v; want %q, %v", got, has, tt.want, tt.wantHas)
			}
		})
	}
}

func TestUpstreamCookie(t *testing.T) {
	b := mustNew(t, validConfig())
	tests := []struct {
		name        string
		header      []string
		want        string
		wantChanged bool
	}{
		{"no cookies", nil, "", false},
		{"only others", []string{"a=1; b=2"}, "", false},
		{"only ours", []string{"__Host-bffgate=x"}, "", true},
		{"ours and login", []string{"__Host-bffgate=x; __Host-bffgate-login-abc=y"}, "", true},
		{"mixed", []string{"a=1; __Host-bffgate=x; b=2"}, "a=1; b=2", true},
		{"two lines", []string{"a=1", "__Host-bffgate=x; c=3"}, "a=1; c=3", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := b.upstreamCookie(http.Header{"Cookie": tt.header})
			if got != tt.want || changed != tt.wantChanged {
				t.Fatalf("upstreamCookie = %q, %v; want %q, %v", got, changed, tt.want, tt.wantChanged)
			}
		})
	}
}

func TestSafeReturnTo(t *testing.T) {
	c := validConfig()
	c.AllowedOrigins = []string{"https://spa.example"}
	b := mustNew(t, c)
	tests := []struct {
		in   string
		want string // "" = refused
	}{
		{"/", "/"},
		{"/app?x=1#frag", "/app?x=1#frag"},
		{"https://spa.example/app", "https://spa.example/app"},
		{"https://spa.example", "https://spa.example"},
		{"//evil.example", ""},
		{"//evil.example/path", ""},
		{"/\\evil.example", ""},
		{"\\\\evil.example", ""},
		{"/%2fevil.example", ""},
		{"/%2Fevil.example", ""},
		{"/%5cevil.example", ""},
		{"https:evil.example", ""},
		{"https:/evil.example", ""},
		{"https://evil.example/", ""},
		{"https://spa.example.evil.example/", ""},
		{"https://spa.example@evil.example/", ""},
		{"https://user@spa.example/", ""},
		{"http://spa.example/", ""},
		{"javascript:alert(1)", ""},
		{"data:text/html,x", ""},
		{"/\t/evil.example", ""},
		{"/a\r\nSet-Cookie: x=y", ""},
		{"evil.example", ""},
		{"https://spa.example//evil.example", ""},
		{"https://spa.example/\\evil", ""},
		{"", ""},
		{"/" + strings.Repeat("a", 3000), ""},
	}
	for _, tt := range tests {
		got, ok := b.safeReturnTo(tt.in)
		if tt.want == "" {
			if ok {
				t.Errorf("safeReturnTo(%q) = %q, want refused", tt.in, got)
			}
			continue
		}
		if !ok || got != tt.want {
			t.Errorf("safeReturnTo(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func mustNew(t testing.TB, c Config) *Engine {
	t.Helper()
	b, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzCookieHeader: parsing never panics, finds only cookies really named
// ours, and the upstream header never carries one of ours.
func FuzzCookieHeader(f *testing.F) {
	f.Add("a=1; __Host-bffgate=abc; b=2")
	f.Add(`__Host-bffgate="q"; ;;=; __Host-bffgate-login-x=1`)
	f.Add("\x00=\xff; ===")
	b := mustNew(f, validConfig())
	f.Fuzz(func(t *testing.T, line string) {
		h := http.Header{"Cookie": {line}}
		if v, ok := cookieValue(h, b.cfg.CookieName); ok && strings.Contains(v, ";") {
			t.Fatalf("cookie value %q spans pairs", v)
		}
		up, changed := b.upstreamCookie(h)
		if !changed {
			return
		}
		forEachCookie(http.Header{"Cookie": {up}}, func(n, v string) bool {
			if b.ownCookie(n) {
				t.Fatalf("upstream Cookie %q still has %q", up, n)
			}
			return true
		})
	})
}

// FuzzReturnTo: whatever safeReturnTo accepts is a local path or a URL on
// an allowed origin, as a browser resolves it against this site.
func FuzzReturnTo(f *testing.F) {
	for _, s := range []string{"/", "//evil", "/\\evil", "https://spa.example/x", "https:evil", "/%2f/x"} {
		f.Add(s)
	}
	c := validConfig()
	c.AllowedOrigins = []string{"https://spa.example"}
	b := mustNew(f, c)
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := b.safeReturnTo(in)
		if !ok {
			return
		}
		if isLocalPath(got) {
			return
		}
		if !strings.HasPrefix(got, "https://spa.example") {
			t.Fatalf("safeReturnTo(%q) = %q: neither local nor allowed", in, got)
		}
		rest := strings.TrimPrefix(got, "https://spa.example")
		if rest != "" && rest[0] != '/' && rest[0] != '?' && rest[0] != '#' {
			t.Fatalf("safeReturnTo(%q) = %q: host continues past the allowed origin", in, got)
		}
	})
}
