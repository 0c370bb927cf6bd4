// Package redisstore keeps bffgate's sessions in Redis, shared by every
// gateway node: a session.Store, and a session.Locker so that one node at
// a time refreshes a session's tokens. It runs on one server, behind
// Sentinel, or on a Redis Cluster, through go-redis's UniversalClient, and
// needs Redis 6.2 or later.
//
// # What it stores
//
// Values are sessions as session.Seal made them (AES-256-GCM under a key
// derived from the session ID) and keys are session.ID.StoreKey hashes, so
// a dump of Redis gives neither tokens nor a usable cookie. Under the
// configured prefix (default "bffgate:"):
//
//	<prefix>s:<key>    string  the sealed session; expires after its idle
//	                           timeout, which API requests slide, at most
//	                           once per tenth of it (see Store)
//	<prefix>i:<index>  set     the keys of one OP session (sid) or user (sub),
//	                           for back-channel logout; lives as long as its
//	                           newest member
//	<prefix>l:<name>   string  a refresh lock: a random token, SET NX PX,
//	                           freed only by its holder
//
// Every command goes to a master; replicas are never read or written, so
// a session just saved is always read back.
//
// # Configuration
//
// Config is plain JSON with snake_case names; it is also a Kong plugin
// schema, so durations are integer milliseconds. Timeouts default to
// 500 ms and retries to none, so an unreachable Redis fails a request
// within about a second and the gateway answers 503 rather than hang.
//
// One server, with the password from the environment:
//
//	{"url": "redis://redis.internal:6379/0", "password": "env:REDIS_PASSWORD"}
//
// Sentinel (addrs are the Sentinels; the database number is honoured):
//
//	{
//	  "addrs": ["sentinel-1:26379", "sentinel-2:26379", "sentinel-3:26379"],
//	  "master_name": "mymaster",
//	  "db": 2,
//	  "password": "env:REDIS_PASSWORD",
//	  "sentinel_password": "env:SENTINEL_PASSWORD"
//	}
//
// Cluster (two or more seed nodes, or one with "cluster": true), over TLS:
//
//	{
//	  "addrs": ["redis-0.internal:6379", "redis-1.internal:6379", "redis-2.internal:6379"],
//	  "tls": true,
//	  "username": "bffgate",
//	  "password": "env:REDIS_PASSWORD",
//	  "key_prefix": "shop-bff:"
//	}
//
// In Go:
//
//	store, err := redisstore.New(redisstore.Config{Addrs: []string{"127.0.0.1:6379"}})
//	if err != nil {
//		return err // a *ConfigError names the field and the fix
//	}
//	defer store.Close()
//	if err := store.Ping(ctx); err != nil {
//		log.Printf("redis not reachable yet: %v", err) // New makes no network call
//	}
//	engine, err := bff.New(bff.Config{ /* ... */ Store: store})
//
// Package redistest starts redis-server processes (one server, a Cluster, a
// Sentinel topology) for tests.
package redisstore
