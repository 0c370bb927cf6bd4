package session

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"time"
)

// ErrNoList is returned by Manager.List when the store is not a Lister.
var ErrNoList = errors.New("session: the store cannot list a user's sessions")

// Lister is implemented by stores that can read an index without taking
// it: a user's list of sessions and the per-user session cap need it.
//
// Implementations must be safe for concurrent use; errors mean the store
// could not answer.
type Lister interface {
	// Members returns the members of index that still hold a value, each
	// with its value and when it expires, in no particular order, at most
	// MaxMembers of them. It may drop from the index the members whose
	// value is gone; it changes nothing else. A missing index gives no
	// members and no error.
	Members(ctx context.Context, index string) ([]Member, error)
}

// MaxMembers bounds what Lister.Members reads of one index: far more
// sessions than one user has, few enough for one round trip.
const MaxMembers = 1000

// Member is one live member of an index.
type Member struct {
	Key     string    // the session's store key
	Value   []byte    // its stored value; not to be modified
	Expires time.Time // when the store drops it unless used again
}

// Listing is one of a user's sessions as their list of sessions shows
// it: when, where from, never a token.
type Listing struct {
	Key      string    // the session's store key
	Created  time.Time // login time; zero for a session saved before lists existed
	LastSeen time.Time // its last use, to within the store's sliding grain
	Ends     time.Time // its absolute end (Created + Max)
	Device   string    // a coarse label of the browser, given at login
}

// The sealed value Manager.Save stores is an envelope: envelopeVersion,
// the length of the sealed session as a uvarint, the sealed session (as
// Seal makes it), then the sealed listing: the session's creation time
// and device label, sealed under a key derived from the issuer and
// subject, so that the user's list can be read without the IDs of the
// user's other sessions, while a dump of the store still shows nothing to
// whoever does not know the user's sub.
const envelopeVersion = 2

const listingInfo = "bffgate session listing v1"

// maxDevice bounds a device label.
const maxDevice = 64

// listingKey is the AEAD of a user's listings.
func listingKey(issuer, sub string) (cipher.AEAD, error) {
	seed := ID(sha256.Sum256([]byte(listingInfo + "\x00" + issuer + "\x00" + sub)))
	key := seed.derive(listingInfo)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealEnvelope seals s under id, with its listing.
func sealEnvelope(id ID, s *Session) ([]byte, error) {
	main, err := Seal(id, s)
	if err != nil {
		return nil, err
	}
	out := []byte{envelopeVersion}
	out = binary.AppendUvarint(out, uint64(len(main)))
	out = append(out, main...)
	if s.Device == "" && s.listing != "" {
		return append(out, s.listing...), nil // as sealed at login
	}
	a, err := listingKey(s.Issuer, s.Subject)
	if err != nil {
		return nil, err
	}
	device := s.Device
	if len(device) > maxDevice {
		device = device[:maxDevice]
	}
	plain := binary.AppendVarint(nil, unixMilli(s.Created))
	plain = append(plain, device...)
	nonce := make([]byte, a.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return a.Seal(out, nonce, plain, []byte(listingInfo)), nil
}

// splitEnvelope returns the sealed session and the sealed listing of an
// envelope.
func splitEnvelope(raw []byte) (main, listing []byte, ok bool) {
	if len(raw) == 0 || len(raw) > maxSealed || raw[0] != envelopeVersion {
		return nil, nil, false
	}
	n, w := binary.Uvarint(raw[1:])
	if w <= 0 || n > uint64(len(raw)-1-w) {
		return nil, nil, false
	}
	rest := raw[1+w:]
	return rest[:n], rest[n:], true
}

// openListing opens the listing part of an envelope for the user.
func openListing(issuer, sub string, sealed []byte) (created time.Time, device string, err error) {
	a, err := listingKey(issuer, sub)
	if err != nil {
		return time.Time{}, "", err
	}
	if len(sealed) < a.NonceSize()+a.Overhead() {
		return time.Time{}, "", ErrMalformed
	}
	plain, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], []byte(listingInfo))
	if err != nil {
		return time.Time{}, "", ErrMalformed
	}
	ms, w := binary.Varint(plain)
	if w <= 0 || len(plain)-w > maxDevice {
		return time.Time{}, "", ErrMalformed
	}
	return fromUnixMilli(ms), string(plain[w:]), nil
}

// openEnvelope opens an envelope made by sealEnvelope for id.
func openEnvelope(id ID, raw []byte) (*Session, error) {
	main, listing, ok := splitEnvelope(raw)
	if !ok {
		return nil, ErrMalformed
	}
	s, err := Open(id, main)
	if err != nil {
		return nil, err
	}
	// The listing is opened only by List, with the user's key: every
	// request opens its session, and needs none of it.
	s.listing = string(listing)
	return s, nil
}

// List returns the live sessions of the issuer's sub, newest first. It
// needs a store that is a Lister (ErrNoList otherwise). Only sessions
// whose listing opens under that user's key are listed, so an index can
// never show another user's session.
func (m *Manager) List(ctx context.Context, issuer, sub string) ([]Listing, error) {
	l, ok := m.Store.(Lister)
	if !ok {
		return nil, ErrNoList
	}
	members, err := l.Members(ctx, indexName("sub", issuer, sub))
	if err != nil {
		return nil, err
	}
	now := m.now()
	out := make([]Listing, 0, len(members))
	for _, mb := range members {
		_, sealed, ok := splitEnvelope(mb.Value)
		if !ok {
			continue // saved before lists existed: it cannot be told apart
		}
		created, device, err := openListing(issuer, sub, sealed)
		if err != nil {
			continue
		}
		ends := created.Add(m.Max)
		if !now.Before(ends) {
			continue
		}
		seen := mb.Expires.Add(-m.Idle)
		if seen.Before(created) {
			seen = created
		}
		if seen.After(now) {
			seen = now
		}
		out = append(out, Listing{Key: mb.Key, Created: created, LastSeen: seen, Ends: ends, Device: device})
	}
	slices.SortFunc(out, func(a, b Listing) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// EndKeys ends the sessions stored under the keys (from List).
func (m *Manager) EndKeys(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	err := m.Store.Delete(ctx, keys...)
	if err == nil {
		m.ended(keys)
	}
	return err
}

// Alive reports whether a session is still in the store, by its store
// key, without sliding its idle timer: for connections that outlive the
// request that opened them. An error means the store could not answer.
func (m *Manager) Alive(ctx context.Context, key string) (bool, error) {
	_, err := m.Store.Get(ctx, key, 0)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// ended tells Ended about sessions that ended.
func (m *Manager) ended(keys []string) {
	if m.Ended != nil && len(keys) > 0 {
		m.Ended(keys)
	}
}
