module github.com/bffgate/bffgate

go 1.25.0

require (
	github.com/Kong/go-pdk v0.11.2
	github.com/coreos/go-oidc/v3 v3.21.0
	github.com/go-jose/go-jose/v4 v4.1.4
	github.com/redis/go-redis/v9 v9.18.0
	golang.org/x/oauth2 v0.36.0
	golang.org/x/sync v0.21.0
	google.golang.org/protobuf v1.36.2
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dgryski/go-rendezvous v0.0.0-20200823014737-9f7001d12a5f // indirect
	github.com/ugorji/go/codec v1.2.14 // indirect
	go.uber.org/atomic v1.11.0 // indirect
)
