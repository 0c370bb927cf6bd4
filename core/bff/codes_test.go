package bff_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bffgate/bffgate/core/bff"
)

// TestCodesDocumented holds the error table of docs/config.md to the
// engine's list of codes: a code added, renamed or dropped on one side
// fails here.
func TestCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "## Errors bffgate answers")
	if !ok {
		t.Fatal(`docs/config.md has no "## Errors bffgate answers" section`)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	var documented []string
	row := regexp.MustCompile(`(?m)^\| [0-9 /]+ \| (.+?) \|`)
	code := regexp.MustCompile("`([a-z_]+)`")
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		for _, c := range code.FindAllStringSubmatch(m[1], -1) {
			documented = append(documented, c[1])
		}
	}
	var engine []string
	for _, c := range bff.Codes {
		engine = append(engine, string(c))
	}
	slices.Sort(documented)
	slices.Sort(engine)
	if !slices.Equal(slices.Compact(documented), engine) {
		t.Fatalf("docs/config.md's error table lists\n%v\nthe engine answers\n%v", documented, engine)
	}
}

// TestCodesInJSClient holds the JS client's BffErrorCode type to the
// engine's list.
func TestCodesInJSClient(t *testing.T) {
	src, err := os.ReadFile("../../sdk-js/src/codes.ts")
	if err != nil {
		t.Fatal(err)
	}
	var client []string
	for _, m := range regexp.MustCompile(`(?m)^\s*\| '([a-z_]+)'`).FindAllStringSubmatch(string(src), -1) {
		client = append(client, m[1])
	}
	var engine []string
	for _, c := range bff.Codes {
		engine = append(engine, string(c))
	}
	slices.Sort(client)
	slices.Sort(engine)
	if !slices.Equal(client, engine) {
		t.Fatalf("sdk-js/src/codes.ts lists\n%v\nthe engine answers\n%v", client, engine)
	}
}
