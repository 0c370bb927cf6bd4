package serve

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
)

type closeCount struct{ n atomic.Int32 }

func (c *closeCount) Close() error { c.n.Add(1); return nil }

// A replaced generation is closed once, after its last request in flight,
// and never while one runs; new requests take the new one.
func TestReloadClosesAfterLastRequest(t *testing.T) {
	build := func(name string) (*Proxy, *closeCount) {
		p, err := New(testConfig(t, "http://127.0.0.1:1"))
		if err != nil {
			t.Fatal(err)
		}
		cc := &closeCount{}
		p.ownStore = cc
		p.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(name)) })
		return p, cc
	}
	oldP, oldC := build("old")
	newP, newC := build("new")
	l := &live{}
	l.cur.Store(&generation{p: oldP})
	l.with(func(p *Proxy) {
		l.swap(newP) // a reload while this request runs on the old proxy
		if oldC.n.Load() != 0 {
			t.Fatal("the old proxy was closed with a request in flight")
		}
		rec := httptest.NewRecorder()
		l.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Body.String() != "new" {
			t.Fatalf("a request after the reload went to %q", rec.Body.String())
		}
	})
	if oldC.n.Load() != 1 || newC.n.Load() != 0 {
		t.Fatalf("closes: old %d, new %d; want 1, 0", oldC.n.Load(), newC.n.Load())
	}
}

func TestRestartOnly(t *testing.T) {
	a := testConfig(t, "http://127.0.0.1:1")
	b := *a
	b.Listen, b.Limits.IdleTimeout, b.TLS = "127.0.0.1:9", 5, &TLS{CertFile: "c", KeyFile: "k"}
	b.Routes = nil // reloadable: not named
	if got, want := RestartOnly(a, &b), []string{"listen", "tls", "limits.idle_timeout"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("RestartOnly = %v, want %v", got, want)
	}
	if got := RestartOnly(a, a); len(got) != 0 {
		t.Fatalf("RestartOnly of the same config = %v", got)
	}
}
