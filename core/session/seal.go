package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// sealVersion is the first byte of every sealed session. A new encoding
// gets a new version; Open refuses versions it does not know.
const sealVersion = 1

// maxSealed bounds what Open accepts; a session with typical tokens is far
// below it.
const maxSealed = 64 << 10

const sealInfo = "bffgate session seal v1"

// derive returns a 256-bit key for one purpose from the ID, with the
// one-step key derivation of NIST SP 800-56C Rev. 2 §4.1 (option 1:
// SHA-256(counter || Z || FixedInfo), one block). The ID is 256 uniformly
// random bits, so this is as strong as HKDF here, and it costs one hash on
// the stack where crypto/hkdf costs ten allocations on every request.
func (id ID) derive(info string) [sha256.Size]byte {
	var buf [4 + len(ID{}) + 64]byte
	b := append(buf[:0], 0, 0, 0, 1)
	b = append(b, id[:]...)
	b = append(b, info...)
	return sha256.Sum256(b)
}

// aead returns AES-256-GCM under the key derived from the ID for sealing.
func (id ID) aead() (cipher.AEAD, error) {
	key := id.derive(sealInfo)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Seal encodes s and encrypts it under a key derived from id, returning
// version || nonce || ciphertext. A value sealed for one ID opens under no
// other.
func Seal(id ID, s *Session) ([]byte, error) {
	a, err := id.aead()
	if err != nil {
		return nil, err
	}
	plain := s.appendBinary(make([]byte, 0, s.encodedLen()))
	out := make([]byte, 1+a.NonceSize(), 1+a.NonceSize()+len(plain)+a.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return a.Seal(out, out[1:1+a.NonceSize()], plain, []byte(sealInfo)), nil
}

// Open decrypts and decodes a value made by Seal (or Manager.Save) for
// the same id. Any tampering, a foreign key, or a malformed value gives
// ErrMalformed.
func Open(id ID, sealed []byte) (*Session, error) {
	if len(sealed) > 0 && sealed[0] == envelopeVersion {
		return openEnvelope(id, sealed)
	}
	if len(sealed) > maxSealed || len(sealed) < 1+12+16 || sealed[0] != sealVersion {
		return nil, ErrMalformed
	}
	a, err := id.aead()
	if err != nil {
		return nil, err
	}
	nonce, ct := sealed[1:1+a.NonceSize()], sealed[1+a.NonceSize():]
	plain, err := a.Open(make([]byte, 0, len(ct)), nonce, ct, []byte(sealInfo))
	if err != nil {
		return nil, ErrMalformed
	}
	s := new(Session)
	if err := s.decode(plain); err != nil {
		return nil, err
	}
	return s, nil
}

// The plaintext is a flat binary record: each string as a uvarint length
// and its bytes, each time as a varint of Unix milliseconds (0 = zero
// time). Decoding converts the record to one string and slices the fields
// out of it, so a session costs one allocation for all its strings.

func (s *Session) strings() [10]*string {
	return [10]*string{&s.Issuer, &s.Subject, &s.SID, &s.Claims, &s.Identity, &s.IDToken,
		&s.AccessToken, &s.TokenType, &s.RefreshToken, &s.Scope}
}

// extensions are the fields added since version 1, by tag (1 +
// index): they follow the times, each set one as its tag, a uvarint
// length and its bytes, in tag order. Open skips a tag it does not know,
// so a node of an older release still opens a session a newer one sealed
// (and drops only what it does not know of it); a session sealed before a
// field existed opens with the field empty. A tag is never reused.
func (s *Session) extensions() [4]*string {
	return [4]*string{&s.TokenClaims, &s.DBSC, &s.DPoPKey, &s.Resources}
}

func (s *Session) encodedLen() int {
	n := 2 * binary.MaxVarintLen64
	for _, p := range s.strings() {
		n += binary.MaxVarintLen64 + len(*p)
	}
	for _, p := range s.extensions() {
		n += 2*binary.MaxVarintLen64 + len(*p)
	}
	return n
}

func (s *Session) appendBinary(b []byte) []byte {
	for _, p := range s.strings() {
		b = binary.AppendUvarint(b, uint64(len(*p)))
		b = append(b, *p...)
	}
	b = binary.AppendVarint(b, unixMilli(s.Expiry))
	b = binary.AppendVarint(b, unixMilli(s.Created))
	for i, p := range s.extensions() {
		if *p == "" {
			continue
		}
		b = binary.AppendUvarint(b, uint64(i+1))
		b = binary.AppendUvarint(b, uint64(len(*p)))
		b = append(b, *p...)
	}
	return b
}

func (s *Session) decode(plain []byte) error {
	rec := string(plain)
	for _, p := range s.strings() {
		n, w := binary.Uvarint(plain)
		if w <= 0 || n > uint64(len(plain)-w) {
			return ErrMalformed
		}
		start := len(rec) - len(plain) + w
		*p = rec[start : start+int(n)]
		plain = plain[w+int(n):]
	}
	var times [2]int64
	for i := range times {
		v, w := binary.Varint(plain)
		if w <= 0 {
			return ErrMalformed
		}
		times[i] = v
		plain = plain[w:]
	}
	ext := s.extensions()
	for last := uint64(0); len(plain) > 0; {
		tag, w := binary.Uvarint(plain)
		if w <= 0 || tag <= last {
			return ErrMalformed
		}
		last = tag
		plain = plain[w:]
		n, w := binary.Uvarint(plain)
		if w <= 0 || n == 0 || n > uint64(len(plain)-w) {
			return ErrMalformed
		}
		start := len(rec) - len(plain) + w
		if tag <= uint64(len(ext)) {
			*ext[tag-1] = rec[start : start+int(n)]
		}
		plain = plain[w+int(n):]
	}
	if _, err := decodeResources(s.Resources, ""); err != nil {
		return err
	}
	s.Expiry, s.Created = fromUnixMilli(times[0]), fromUnixMilli(times[1])
	return nil
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromUnixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
