package main

import (
	"bytes"
	"log"
	"testing"
)

// exitLog drops go-pdk's closed-connection line only while an exit owes
// one, and passes every other line through.
func TestExitLog(t *testing.T) {
	var out bytes.Buffer
	l := &exitLog{w: &out}
	lg := log.New(l, "", log.LstdFlags)
	noise := "write unix /usr/local/kong/bffgate.socket->@: use of closed network connection"

	lg.Print(noise) // no exit owes it: shown
	l.owe()
	l.owe()
	lg.Print(noise)
	lg.Print("read unix /usr/local/kong/bffgate.socket->@: use of closed network connection") // not the write
	lg.Print("EOF")
	lg.Print(noise)
	lg.Print(noise) // the third after two exits: shown

	want := []string{noise, "read unix", "EOF", noise}
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if len(lines) != len(want) {
		t.Fatalf("output:\n%s\nwant %d lines", out.String(), len(want))
	}
	for i, w := range want {
		if !bytes.Contains(lines[i], []byte(w)) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
		}
	}
	if n := l.owed.Load(); n != 0 {
		t.Errorf("owed = %d after both exits' lines, want 0", n)
	}
}
