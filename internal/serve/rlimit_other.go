//go:build !unix

package serve

// openFileLimit is unknown here; Limits.MaxConnections then defaults to
// its upper bound.
func openFileLimit() (uint64, bool) { return 0, false }
