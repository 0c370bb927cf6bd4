package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
)

// TestKongYML checks kong.yml, the declarative config the README's
// `docker run` mounts: it parses, names exactly one bffgate plugin, whose
// config passes Kong's validation against the dumped schema and, with
// Kong's defaults and the environment's secrets, bff.New; and the README
// passes every env:NAME it uses to the plugin server.
func TestKongYML(t *testing.T) {
	raw, err := os.ReadFile("kong.yml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseYAML(string(raw))
	if err != nil {
		t.Fatalf("kong.yml: %v", err)
	}
	if doc["_format_version"] != "3.0" {
		t.Fatalf("kong.yml _format_version = %v, want \"3.0\"", doc["_format_version"])
	}
	var configs []map[string]any
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if v["name"] == "bffgate" {
				if c, ok := v["config"].(map[string]any); ok {
					configs = append(configs, c)
					return
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	if len(configs) != 1 {
		t.Fatalf("kong.yml has %d bffgate plugins with a config, want 1", len(configs))
	}
	config := configs[0]

	names := envNames(config)
	if len(names) == 0 {
		t.Fatal("kong.yml writes its secrets in the file: use env:NAME")
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	run := dockerRun(t, string(readme))
	if !strings.Contains(run, "kong-plugin/kong.yml:/kong/kong.yml") {
		t.Errorf("the README's docker run does not mount kong-plugin/kong.yml:\n%s", run)
	}
	for _, name := range names {
		if !regexp.MustCompile(`KONG_NGINX_MAIN_ENV="[^"]*\b`+name+`\b`).MatchString(run) || !strings.Contains(run, "-e "+name+"=") {
			t.Errorf("the README's docker run does not set %s and pass it on with KONG_NGINX_MAIN_ENV (nginx gives its workers, and so the plugin server, only the variables of its env directives):\n%s", name, run)
		}
		value := "s3cret"
		if strings.Contains(name, "COOKIE_KEY") { // an entry of cookie_keys: a base64 32-byte key
			value = cookieKey
		}
		t.Setenv(name, value)
	}

	if err := kongValidate(dumpedConfig(t), config, ""); err != nil {
		t.Fatalf("Kong would refuse kong.yml's bffgate config: %v", err)
	}
	b, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg bff.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := bff.New(cfg); err != nil {
		t.Fatalf("bff.New on kong.yml's bffgate config as Kong sends it: %v", err)
	}
}

// envNames lists the NAMEs of the "env:NAME" values in a config.
func envNames(v any) []string {
	var names []string
	switch v := v.(type) {
	case string:
		if name, ok := strings.CutPrefix(v, "env:"); ok {
			names = append(names, name)
		}
	case map[string]any:
		for _, c := range v {
			names = append(names, envNames(c)...)
		}
	case []any:
		for _, c := range v {
			names = append(names, envNames(c)...)
		}
	}
	return names
}

// dockerRun returns the README's `docker run` command, continuation
// lines joined.
func dockerRun(t *testing.T, readme string) string {
	t.Helper()
	i := strings.Index(readme, "docker run ")
	if i < 0 {
		t.Fatal("the README has no docker run command")
	}
	end := strings.Index(readme[i:], "\n```")
	if end < 0 {
		t.Fatal("the README's docker run command does not end")
	}
	return strings.ReplaceAll(readme[i:i+end], "\\\n", " ")
}

// parseYAML reads the YAML that kong.yml is written in — block mappings
// and sequences, plain and quoted scalars, flow lists of plain scalars,
// comments — into what encoding/json would make of the same document. It
// refuses anything else, so kong.yml stays within what it checks.
func parseYAML(src string) (map[string]any, error) {
	var lines []yamlLine
	for n, text := range strings.Split(src, "\n") {
		text = stripComment(text)
		if strings.TrimSpace(text) == "" {
			continue
		}
		if strings.Contains(text, "\t") {
			return nil, fmt.Errorf("line %d: a tab", n+1)
		}
		content := strings.TrimLeft(text, " ")
		lines = append(lines, yamlLine{n + 1, len(text) - len(content), content})
	}
	p := &yamlParser{lines: lines}
	v, err := p.block(0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.lines) {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.i].n)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the document is not a mapping")
	}
	return m, nil
}

type yamlLine struct {
	n, indent int
	text      string
}

type yamlParser struct {
	lines []yamlLine
	i     int
}

// block parses the mapping or sequence whose lines are indented exactly
// indent.
func (p *yamlParser) block(indent int) (any, error) {
	if p.i >= len(p.lines) || p.lines[p.i].indent != indent {
		return nil, fmt.Errorf("expected a block indented %d", indent)
	}
	if strings.HasPrefix(p.lines[p.i].text, "- ") {
		var seq []any
		for p.i < len(p.lines) && p.lines[p.i].indent == indent && strings.HasPrefix(p.lines[p.i].text, "- ") {
			l := &p.lines[p.i]
			item := strings.TrimPrefix(l.text, "- ")
			if !isMapEntry(item) {
				p.i++
				v, err := scalar(item, l.n)
				if err != nil {
					return nil, err
				}
				seq = append(seq, v)
				continue
			}
			// "- key: value": a mapping whose first entry shares the dash's line.
			l.indent, l.text = indent+2, item
			v, err := p.block(indent + 2)
			if err != nil {
				return nil, err
			}
			seq = append(seq, v)
		}
		return seq, nil
	}
	m := map[string]any{}
	for p.i < len(p.lines) && p.lines[p.i].indent == indent {
		l := p.lines[p.i]
		if !isMapEntry(l.text) {
			return nil, fmt.Errorf("line %d: %q is not a key: value", l.n, l.text)
		}
		key, rest, _ := strings.Cut(l.text, ":")
		rest = strings.TrimSpace(rest)
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("line %d: %s twice", l.n, key)
		}
		p.i++
		if rest != "" {
			v, err := scalar(rest, l.n)
			if err != nil {
				return nil, err
			}
			m[key] = v
			continue
		}
		if p.i >= len(p.lines) || p.lines[p.i].indent <= indent {
			m[key] = nil
			continue
		}
		v, err := p.block(p.lines[p.i].indent)
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
	return m, nil
}

var mapKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*:( |$)`)

func isMapEntry(s string) bool { return mapKey.MatchString(s) }

// stripComment removes a " #" comment outside quotes.
func stripComment(s string) string {
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return strings.TrimRight(s[:i], " ")
		}
	}
	return s
}

func scalar(s string, line int) (any, error) {
	switch {
	case strings.HasPrefix(s, `"`):
		v, err := strconv.Unquote(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %v", line, s, err)
		}
		return v, nil
	case strings.HasPrefix(s, "'"):
		if len(s) < 2 || !strings.HasSuffix(s, "'") {
			return nil, fmt.Errorf("line %d: unterminated %s", line, s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	case strings.HasPrefix(s, "["):
		if !strings.HasSuffix(s, "]") {
			return nil, fmt.Errorf("line %d: unterminated %s", line, s)
		}
		l := []any{}
		for _, e := range strings.Split(s[1:len(s)-1], ",") {
			if e = strings.TrimSpace(e); e == "" {
				continue
			}
			v, err := scalar(e, line)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case strings.ContainsAny(s[:1], "{&*!|>%@`"):
		return nil, fmt.Errorf("line %d: %s: YAML this parser does not read", line, s)
	case s == "true" || s == "false":
		return s == "true", nil
	case s == "null" || s == "~":
		return nil, nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil && regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`).MatchString(s) {
		return n, nil
	}
	if strings.Contains(s, ": ") {
		return nil, fmt.Errorf("line %d: %s: a mapping where a value was expected", line, s)
	}
	return s, nil
}

// TestParseYAML holds the parser to PyYAML's reading of a document like
// kong.yml (written out as JSON).
func TestParseYAML(t *testing.T) {
	src := `# comment
a: "3.0"
b:
  - name: x   # trailing
    list: [p, "q", 3]
    nested:
      - one
      - 'two'
  - name: y
c: true
d: ~
e: http://h:8080/p#frag
`
	want := `{"a":"3.0","b":[{"list":["p","q",3],"name":"x","nested":["one","two"]},{"name":"y"}],"c":true,"d":null,"e":"http://h:8080/p#frag"}`
	got, err := parseYAML(src)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	if string(b) != want {
		t.Fatalf("parseYAML = %s\nwant        %s", b, want)
	}
	for _, bad := range []string{"a: {b: c}\n", "a:\n\tb: c\n", "a: b\n  c: d\n", "- a\nb: c\n"} {
		if _, err := parseYAML(bad); err == nil {
			t.Errorf("parseYAML(%q) succeeded, want an error", bad)
		}
	}
}

// TestComposeKongYML checks compose/kong/kong.yml, the declarative config
// of the Kong compose stack: every bffgate config in it passes Kong's
// validation against the dumped schema and, as Kong sends it, bff.New;
// the SPA's route at / is public; and the BFF's endpoints and /api/ are on
// a route whose config authenticates. (compose/compose_test.go checks that
// the stack sets and passes on each env:NAME.)
func TestComposeKongYML(t *testing.T) {
	raw, err := os.ReadFile("../compose/kong/kong.yml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseYAML(string(raw))
	if err != nil {
		t.Fatalf("compose/kong/kong.yml: %v", err)
	}
	schema := dumpedConfig(t)
	for _, name := range envNames(doc) {
		value := "s3cret"
		if strings.Contains(name, "COOKIE_KEY") {
			value = cookieKey
		}
		t.Setenv(name, value)
	}
	// route path → whether its bffgate config makes it public
	routes := map[string]bool{}
	services, _ := doc["services"].([]any)
	for _, s := range services {
		rs, _ := s.(map[string]any)["routes"].([]any)
		for _, r := range rs {
			r := r.(map[string]any)
			var configs []map[string]any
			ps, _ := r["plugins"].([]any)
			for _, p := range ps {
				if p := p.(map[string]any); p["name"] == "bffgate" {
					configs = append(configs, p["config"].(map[string]any))
				}
			}
			if len(configs) != 1 {
				t.Fatalf("route %v has %d bffgate plugins, want 1: every route on the BFF's host needs bffgate", r["name"], len(configs))
			}
			config := configs[0]
			if err := kongValidate(schema, config, ""); err != nil {
				t.Fatalf("route %v: Kong would refuse its bffgate config: %v", r["name"], err)
			}
			b, _ := json.Marshal(config)
			var cfg bff.Config
			if err := json.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
			e, err := bff.New(cfg)
			if err != nil {
				t.Fatalf("route %v: bff.New on its bffgate config as Kong sends it: %v", r["name"], err)
			}
			e.Close()
			paths, _ := r["paths"].([]any)
			for _, p := range paths {
				routes[p.(string)] = slices.Contains(cfg.PublicPaths, "/")
			}
		}
	}
	want := map[string]bool{"/": true, "/api/": false}
	p := bff.Config{}.WithDefaults().Paths
	for _, path := range []string{p.Login, p.Callback, p.Session, p.Token, p.Logout, p.BackchannelLogout} {
		want[path] = false
	}
	for path, public := range want {
		if got, ok := routes[path]; !ok || got != public {
			t.Errorf("kong.yml: route path %s: present %v, public %v; want public %v", path, ok, got, public)
		}
	}
	t.Run("a broken config is refused", func(t *testing.T) {
		bad, err := parseYAML(strings.Replace(string(raw), "              issuer:", "              issuer_url:", 1))
		if err != nil {
			t.Fatal(err)
		}
		config := bad["services"].([]any)[0].(map[string]any)["routes"].([]any)[0].(map[string]any)["plugins"].([]any)[0].(map[string]any)["config"].(map[string]any)
		if err := kongValidate(schema, config, ""); err == nil || !strings.HasPrefix(err.Error(), "issuer:") {
			t.Fatalf("Kong's validation of a config without issuer: %v, want issuer: required", err)
		}
	})
}
