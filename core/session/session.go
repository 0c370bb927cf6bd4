package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"
)

// ErrNotFound is returned by Store.Get when no live value is stored under
// the key (never stored, deleted, or expired).
var ErrNotFound = errors.New("session: not found")

// ErrMalformed is returned by Open and ParseID for input that is not a
// sealed session or a session ID.
var ErrMalformed = errors.New("session: malformed")

// Store keeps sealed sessions. Keys are StoreKey values, never session IDs;
// values are opaque bytes produced by Seal.
//
// Implementations must be safe for concurrent use. Errors other than
// ErrNotFound mean the store could not answer (unreachable, timed out): the
// caller fails closed. A store must not keep a value past its ttl.
type Store interface {
	// Get returns the value stored under key, or ErrNotFound. When ttl > 0
	// it also resets the key's time to live to ttl (sliding expiry), in the
	// same round trip where the backend allows, and may be answered from a
	// short-lived cache. A Get with ttl 0 returns the value as stored now:
	// the refresh path relies on it. The returned slice must not be
	// modified by the caller.
	Get(ctx context.Context, key string, ttl time.Duration) ([]byte, error)

	// Set stores value under key for ttl, replacing any earlier value, and
	// records key as a member of every index named (for back-channel
	// logout by sid or sub). An index lives at least as long as its newest
	// member.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration, indexes ...string) error

	// Delete removes the keys. Missing keys are not an error.
	Delete(ctx context.Context, keys ...string) error

	// TakeIndex removes the index and returns the keys recorded in it
	// (some may have expired already). A missing index gives no keys and
	// no error.
	TakeIndex(ctx context.Context, index string) ([]string, error)
}

// Locker is implemented by stores shared between gateway nodes, so that
// only one node refreshes a session's tokens at a time. Stores used by one
// process need not implement it: bffgate already allows one refresh per
// session at a time within a process.
type Locker interface {
	// TryLock takes the lock named key. It returns a release function and
	// true when the lock was taken, or false when another holder has it.
	// The lock is kept (renewed) while the holder lives and ctx lasts, and
	// expires ttl after a holder that died, so ttl is how long others wait
	// for a crashed node. release frees the lock only if it is still held
	// by this caller; it takes no context and may fail silently, in which
	// case the lock expires after ttl.
	TryLock(ctx context.Context, key string, ttl time.Duration) (release func(), ok bool, err error)
}

// ID is a session's identifier: 256 random bits, shown to the browser only
// in the session cookie.
type ID [32]byte

// idLen is the length of an ID in its text form (unpadded base64url).
const idLen = 43

// NewID returns a fresh random ID.
func NewID() (ID, error) {
	var id ID
	_, err := rand.Read(id[:])
	return id, err
}

// ParseID parses the text form of an ID, strictly: exactly 43 characters of
// unpadded base64url that decode to 32 bytes with no stray bits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != idLen {
		return id, ErrMalformed
	}
	n, err := base64.RawURLEncoding.Strict().Decode(id[:], []byte(s))
	if err != nil || n != len(id) {
		return ID{}, ErrMalformed
	}
	return id, nil
}

// String returns the text form of the ID, as put in the cookie.
func (id ID) String() string {
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// StoreKey returns the key the session is stored under: a one-way hash of
// the ID, so the store never holds a usable cookie value.
func (id ID) StoreKey() string {
	sum := id.derive("bffgate session store key v1")
	// Encoded on the stack: EncodeToString would allocate the bytes and
	// then the string, on every request.
	var buf [(len(sum)*8 + 5) / 6]byte
	base64.RawURLEncoding.Encode(buf[:], sum[:])
	return string(buf[:])
}

// Session is what bffgate keeps for one login. Tokens never leave the
// server except the access token handed out in token-mediating mode.
type Session struct {
	Issuer       string    // the OpenID Provider that issued the tokens
	Subject      string    // the ID token's sub
	SID          string    // the ID token's sid (OP session), if any
	Claims       string    // JSON object of the claims shown by /session
	Identity     string    // claims for identity headers: name NUL value NUL ...
	IDToken      string    // raw ID token, kept only for id_token_hint at logout
	AccessToken  string    // current access token
	TokenType    string    // usually "Bearer"
	RefreshToken string    // current refresh token, if any
	Scope        string    // the access token's scope, space separated
	Expiry       time.Time // when the access token expires; zero if unknown
	Created      time.Time // login time, for the absolute timeout
	// TokenClaims is a JSON object of the ID token's claims that route
	// policies read (acr, auth_time, groups, ...), bounded at login.
	TokenClaims string
	// Device is a coarse label of the browser that logged in ("Firefox on
	// Linux"), for the user's list of sessions: set at login, it goes into
	// the session's listing (see Manager.List). Open does not read it
	// back; a session it opened keeps its listing as it was sealed, and a
	// Save of it (a refresh) stores that listing again.
	Device string
	// DBSC is the Device Bound Session Credentials registration of the
	// session (its identifier and the browser's public key), in the
	// engine's encoding; empty for a session that never registered.
	DBSC string
	// DPoPKey is the session's DPoP private key (RFC 9449): a P-256
	// scalar, 32 bytes, made at login. It exists only inside the sealed
	// session; empty without DPoP.
	DPoPKey string
	// Resources holds access tokens for one resource each (RFC 8707), got
	// with the refresh token for routes that name a resource; read and
	// change it with Resource and SetResource. Empty when there are none.
	Resources string

	listing string // the sealed listing Open found, for Save to keep
}
