package session

import (
	"encoding/binary"
	"time"
)

// appendString appends v with its length, as the record holds strings.
func appendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// cutString reads one length-prefixed string off rec.
func cutString(rec string) (v, rest string, ok bool) {
	n, w := binary.Uvarint([]byte(rec[:min(len(rec), binary.MaxVarintLen64)]))
	if w <= 0 || n > uint64(len(rec)-w) {
		return "", "", false
	}
	return rec[w : w+int(n)], rec[w+int(n):], true
}

// ResourceToken is an access token for one resource (RFC 8707).
type ResourceToken struct {
	Resource    string    // the resource indicator, an absolute URI
	AccessToken string    // the token, for that resource only
	TokenType   string    // usually "Bearer" or "DPoP"
	Expiry      time.Time // when it expires; zero if unknown
}

// maxResources bounds the resource tokens a session holds.
const maxResources = 32

// Resource returns the session's token for resource, if it has one.
func (s *Session) Resource(resource string) (ResourceToken, bool) {
	r, _ := decodeResources(s.Resources, resource)
	return r, r.Resource != ""
}

// SetResource keeps r as the session's token for r.Resource, replacing
// any earlier one. Beyond 32 resources, the one that expires first goes.
func (s *Session) SetResource(r ResourceToken) {
	all, _ := decodeAll(s.Resources)
	kept := all[:0]
	for _, o := range all {
		if o.Resource != r.Resource {
			kept = append(kept, o)
		}
	}
	if len(kept) >= maxResources {
		first := 0
		for i, o := range kept {
			if o.Expiry.Before(kept[first].Expiry) {
				first = i
			}
		}
		kept = append(kept[:first], kept[first+1:]...)
	}
	var b []byte
	for _, o := range append(kept, r) {
		b = appendString(b, o.Resource)
		b = appendString(b, o.AccessToken)
		b = appendString(b, o.TokenType)
		b = binary.AppendVarint(b, unixMilli(o.Expiry))
	}
	s.Resources = string(b)
}

func decodeAll(rec string) ([]ResourceToken, error) {
	var all []ResourceToken
	_, err := walkResources(rec, func(r ResourceToken) bool { all = append(all, r); return false })
	return all, err
}

// decodeResources checks rec and returns the token for want, if any.
func decodeResources(rec, want string) (ResourceToken, error) {
	return walkResources(rec, func(r ResourceToken) bool { return want != "" && r.Resource == want })
}

// walkResources decodes rec, calling f for each token until it returns
// true; it returns that token.
func walkResources(rec string, f func(ResourceToken) bool) (ResourceToken, error) {
	for n := 0; rec != ""; n++ {
		var r ResourceToken
		var ok1, ok2, ok3 bool
		r.Resource, rec, ok1 = cutString(rec)
		r.AccessToken, rec, ok2 = cutString(rec)
		r.TokenType, rec, ok3 = cutString(rec)
		if !ok1 || !ok2 || !ok3 || n >= maxResources {
			return ResourceToken{}, ErrMalformed
		}
		ms, w := binary.Varint([]byte(rec[:min(len(rec), binary.MaxVarintLen64)]))
		if w <= 0 {
			return ResourceToken{}, ErrMalformed
		}
		rec = rec[w:]
		r.Expiry = fromUnixMilli(ms)
		if f(r) {
			return r, nil
		}
	}
	return ResourceToken{}, nil
}
