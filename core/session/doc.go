// Package session holds what bffgate keeps for one logged-in browser: the
// Session, its sealed encoding, and the Store interface every backend
// implements.
//
// A session is named by a 256-bit random ID that lives only in the browser's
// HttpOnly cookie. Stores never see that ID: the store key is a one-way hash
// of it (StoreKey), and the value is the session sealed with AES-256-GCM
// under a key derived from the ID (Seal, Open). A dump of the
// store therefore yields neither tokens nor a usable cookie.
//
// Stores must pass the conformance suite in package sessiontest.
package session
