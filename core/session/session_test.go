package session

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func testSession() *Session {
	return &Session{
		Issuer: "https://op.example", Subject: "alice", SID: "sid-1",
		Claims:   `{"name":"Alice","sub":"alice"}`,
		Identity: "sub\x00alice\x00email\x00alice@example.com\x00",
		IDToken:  "eyJ.id.token", AccessToken: "at-1", TokenType: "Bearer",
		RefreshToken: "rt-1", Scope: "openid profile",
		Expiry:  time.UnixMilli(1700000060000),
		Created: time.UnixMilli(1700000000000),
	}
}

func mustID(t testing.TB) ID {
	t.Helper()
	id, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSealOpen(t *testing.T) {
	id := mustID(t)
	want := testSession()
	sealed, err := Seal(id, want)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{want.AccessToken, want.RefreshToken, want.IDToken, want.Subject} {
		if bytes.Contains(sealed, []byte(secret)) {
			t.Errorf("sealed value contains %q in clear", secret)
		}
	}
	got, err := Open(id, sealed)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if *got != *want {
		t.Fatalf("Open = %+v, want %+v", got, want)
	}
	zero := &Session{}
	sealed, _ = Seal(id, zero)
	if got, err := Open(id, sealed); err != nil || *got != *zero {
		t.Fatalf("zero session round trip = %+v, %v", got, err)
	}
}

func TestOpenRejects(t *testing.T) {
	id := mustID(t)
	sealed, err := Seal(id, testSession())
	if err != nil {
		t.Fatal(err)
	}
	flipped := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name  string
		id    ID
		value []byte
	}{
		{"other id", mustID(t), sealed},
		{"version changed", id, flipped(0)},
		{"nonce changed", id, flipped(3)},
		{"ciphertext changed", id, flipped(len(sealed) / 2)},
		{"tag changed", id, flipped(len(sealed) - 1)},
		{"truncated", id, sealed[:len(sealed)-1]},
		{"empty", id, nil},
		{"too long", id, make([]byte, maxSealed+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := Open(tt.id, tt.value); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Open = %+v, %v; want ErrMalformed", s, err)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	id := mustID(t)
	got, err := ParseID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseID(String()) = %v, %v", got, err)
	}
	last := id.String()[42]
	for _, bad := range []string{
		"", "short", id.String() + "A", id.String()[:42] + "=",
		strings.Repeat("A", 42) + "B",             // stray bits in the last character
		id.String()[:10] + "+" + id.String()[11:], // standard, not URL, alphabet
		id.String()[:10] + " " + id.String()[11:],
		string(rune(last)) + id.String()[1:42] + "\x00",
	} {
		if _, err := ParseID(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseID(%q) error = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestStoreKeyIsOneWay(t *testing.T) {
	id := mustID(t)
	k := id.StoreKey()
	if k == id.String() || strings.Contains(k, id.String()[:16]) {
		t.Fatalf("store key %q reveals the ID %q", k, id)
	}
	if k != id.StoreKey() {
		t.Fatal("StoreKey is not deterministic")
	}
	if mustID(t).StoreKey() == k {
		t.Fatal("two IDs share a store key")
	}
}

// TestStoreKeyIsStable holds the store key of a known ID: sessions in a
// shared store outlive a release, so a new release that keyed them
// otherwise would log everyone out on upgrade.
func TestStoreKeyIsStable(t *testing.T) {
	var id ID
	for i := range id {
		id[i] = byte(i)
	}
	if got, want := id.StoreKey(), "5FPfnutzF8r8Xkwg8RHfCN3-YQPWwSJLR3GAYNMBD8A"; got != want {
		t.Fatalf("StoreKey of 00 01 … 1f = %q, want %q (the key of every stored session)", got, want)
	}
}

func FuzzOpen(f *testing.F) {
	id := ID{1, 2, 3}
	sealed, _ := Seal(id, testSession())
	f.Add(sealed)
	f.Add([]byte{sealVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Open(id, b)
		if err == nil && s == nil {
			t.Fatal("nil session without error")
		}
	})
}

// FuzzDecode feeds the plaintext decoder directly, past the AEAD that
// would otherwise reject almost every input.
func FuzzDecode(f *testing.F) {
	s := testSession()
	f.Add(s.appendBinary(nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got Session
		if err := got.decode(b); err != nil {
			return
		}
		again := got.appendBinary(nil)
		var back Session
		if err := back.decode(again); err != nil || back != got {
			t.Fatalf("re-encoding %+v does not round trip: %v", got, err)
		}
	})
}

func FuzzParseID(f *testing.F) {
	f.Add(ID{9}.String())
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err == nil && id.String() != s {
			t.Fatalf("ParseID(%q) accepted a non-canonical form of %q", s, id)
		}
	})
}

func BenchmarkOpen(b *testing.B) {
	id := mustID(b)
	sealed, _ := Seal(id, testSession())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(id, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSealExtensions: the fields added after version 1's record
// (TokenClaims, DBSC) round trip alone and together; a session with none
// seals exactly as version 1 did; a tag this release does not know is
// skipped; a damaged trailer does not open.
func TestSealExtensions(t *testing.T) {
	id := mustID(t)
	plain := testSession().appendBinary(nil)
	both := testSession()
	both.TokenClaims = `{"acr":"mfa","auth_time":1700000000}`
	both.DBSC = "sid\x00ES256\x00{\"kty\":\"EC\"}"
	claims, dbsc := testSession(), testSession()
	claims.TokenClaims, dbsc.DBSC = both.TokenClaims, both.DBSC
	for _, want := range []*Session{testSession(), claims, dbsc, both} {
		sealed, err := Seal(id, want)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Open(id, sealed); err != nil || *got != *want {
			t.Fatalf("Open = %+v, %v; want %+v", got, err, want)
		}
		if rec := want.appendBinary(nil); !bytes.HasPrefix(rec, plain) {
			t.Fatal("the extensions are not a suffix of the version 1 record")
		}
	}
	if rec := testSession().appendBinary(nil); !bytes.Equal(rec, plain) {
		t.Fatal("a session without extensions does not seal as version 1")
	}
	full := both.appendBinary(nil)
	unknown := append(append([]byte{}, full...), 9, 3, 'n', 'e', 'w')
	got := new(Session)
	if err := got.decode(unknown); err != nil || got.TokenClaims != both.TokenClaims || got.DBSC != both.DBSC {
		t.Fatalf("decode with an unknown tag = %+v, %v; want it skipped", got, err)
	}
	swapped := append(append([]byte{}, plain...), 2, 1, 'x', 1, 1, 'y') // tags out of order
	for name, bad := range map[string][]byte{
		"truncated":       full[:len(full)-1],
		"tag 0":           append(append([]byte{}, full...), 0),
		"tag 0 alone":     append(append([]byte{}, plain...), 0),
		"out of order":    swapped,
		"repeated tag":    append(append([]byte{}, plain...), 1, 1, 'x', 1, 1, 'y'),
		"empty value":     append(append([]byte{}, plain...), 1, 0),
		"length too long": append(append([]byte{}, plain...), 1, 9, 'x'),
	} {
		if err := new(Session).decode(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: decode err = %v, want ErrMalformed", name, err)
		}
	}
}

// TestSealExtension: a session with a DPoP key and resource tokens round
// trips, one without them seals exactly as before the extension, and a
// record cut or padded inside the extension does not open.
func TestSealExtension(t *testing.T) {
	id := mustID(t)
	want := testSession()
	want.DPoPKey = strings.Repeat("k", 32)
	want.SetResource(ResourceToken{Resource: "https://a.example", AccessToken: "at-a", TokenType: "DPoP", Expiry: time.UnixMilli(1700000070000)})
	want.SetResource(ResourceToken{Resource: "https://b.example", AccessToken: "at-b", TokenType: "Bearer"})
	want.SetResource(ResourceToken{Resource: "https://a.example", AccessToken: "at-a2", TokenType: "DPoP"})
	sealed, err := Seal(id, want)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{want.DPoPKey, "at-a2", "at-b"} {
		if bytes.Contains(sealed, []byte(secret)) {
			t.Errorf("sealed value contains %q in clear", secret)
		}
	}
	got, err := Open(id, sealed)
	if err != nil || *got != *want {
		t.Fatalf("Open = %+v, %v; want %+v", got, err, want)
	}
	if r, ok := got.Resource("https://a.example"); !ok || r.AccessToken != "at-a2" || r.TokenType != "DPoP" {
		t.Fatalf("Resource(a) = %+v, %v; want the replaced token", r, ok)
	}
	if _, ok := got.Resource("https://c.example"); ok {
		t.Fatal("Resource(c) found a token never set")
	}
	plain := testSession().appendBinary(nil)
	full := want.appendBinary(nil)
	if !bytes.HasPrefix(full, plain) || len(full) == len(plain) {
		t.Fatal("the extension is not a suffix of the plain record")
	}
	for _, bad := range [][]byte{full[:len(full)-1], append(append([]byte{}, full...), 0)} {
		if err := new(Session).decode(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("decode of a damaged extension: err = %v, want ErrMalformed", err)
		}
	}
	// With and without the policy helper's TokenClaims before them.
	for _, claims := range []string{"", `{"acr":"2"}`} {
		v := testSession()
		v.TokenClaims, v.DPoPKey = claims, want.DPoPKey
		sealed, _ := Seal(id, v)
		if got, err := Open(id, sealed); err != nil || *got != *v {
			t.Fatalf("TokenClaims %q with a DPoP key: Open = %+v, %v", claims, got, err)
		}
	}
	for i := range 40 {
		want.SetResource(ResourceToken{Resource: fmt.Sprintf("https://r%d.example", i), AccessToken: "x", Expiry: time.UnixMilli(int64(i + 1))})
	}
	if all, err := decodeAll(want.Resources); err != nil || len(all) != maxResources {
		t.Fatalf("after 42 resources: %d kept, %v; want %d", len(all), err, maxResources)
	}
}
