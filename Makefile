# bffgate — the two commands a newcomer needs are `make demo` and `make test`.
# Both install what they need first (scripts/deps.sh).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
export GOFLAGS ?= -buildvcs=false
STATICCHECK_VERSION := v0.8.2
GOBIN := $(shell $(GO) env GOPATH)/bin
FUZZTIME ?= 30s
# TYK_GO is the Go toolchain of the Tyk release bffgate.so targets (Tyk
# v5.14.0 is built with Go 1.25: its .go-version). A plugin built by another
# Go minor version kills that gateway when it loads the API ("runtime: no
# plugin module data"), so every build of the plugin and of its test host
# uses this toolchain (the go command fetches it through the module proxy).
# For production, build with tykio/tyk-plugin-compiler of the gateway's exact
# version instead: see tyk-plugin/README.md.
TYK_GO ?= go1.25.14
TYK_PLUGIN_OUT ?= bin/bffgate.so
# Go packages that build without special flags (the Tyk plugin needs cgo,
# -trimpath and the goplugin tag, and is tested apart), and those of them
# outside core/ (core/ is tested with -race).
PLAIN_PKGS = $(shell $(GO) list ./... | grep -v /tyk-plugin)
OTHER_PKGS = $(shell $(GO) list ./... | grep -v -e /tyk-plugin -e /core/)

.PHONY: all build test demo bench lint fuzz test-deps demo-deps sdk-build \
	test-go test-tyk test-js test-next tyk-plugin kong-plugin bench-compare bench-tyk bench-nginx bench-kong clean release

all: build

## build: the standalone binary and the gateway plugins
build: tyk-plugin kong-plugin
	$(GO) build -o bin/bffgate ./cmd/bffgate

## test: every test (installs what it needs first)
test: test-deps lint test-go test-js
	@echo "make test: all passed"

test-deps:
	scripts/deps.sh debs wrk node go redis
	$(MAKE) --no-print-directory sdk-build

demo-deps:
	scripts/deps.sh node go

sdk-build:
	npm --prefix sdk-js run --silent build
	npm --prefix sdk-js run --silent build:demo

# Every Go benchmark also runs once (-benchtime 1x) beside the tests, and
# bench/compare's TestSmoke and the Tyk bench run for a second per target,
# so no benchmark rots; none of them asserts a timing.
test-go:
	$(GO) test -race -count=1 -bench . -benchtime 1x ./core/...
	$(GO) test -count=1 -bench . -benchtime 1x $(OTHER_PKGS)
	cd extauthz-grpc && $(GO) test -count=1 ./...
	@if [ -d tyk-plugin ]; then $(MAKE) --no-print-directory test-tyk; fi

# test-tyk builds bffgate.so first (tyk-plugin), with no time limit: on a bare
# machine that build fetches TYK_GO and compiles everything for the plugin
# build mode, which the tests' own builds of the .so then find in the cache,
# well inside go test's timeout.
test-tyk: tyk-plugin
	GOTOOLCHAIN=$(TYK_GO) CGO_ENABLED=1 $(GO) test -trimpath -tags goplugin -count=1 ./tyk-plugin/...
	out=$$(mktemp) && GOTOOLCHAIN=$(TYK_GO) tyk-plugin/bench.sh -d 1s -rounds 1 -out $$out >/dev/null && rm -f $$out

## tyk-plugin: bin/bffgate.so for a Tyk v5.14.0 gateway, with its Go (TYK_GO; see tyk-plugin/README.md)
tyk-plugin:
	GOTOOLCHAIN=$(TYK_GO) CGO_ENABLED=1 $(GO) build -buildmode=plugin -trimpath -tags goplugin -o $(TYK_PLUGIN_OUT) ./tyk-plugin

## bench-tyk: the Tyk test host without vs with bffgate.so (memory, Redis), wrk on loopback (writes BENCHMARKS.md)
bench-tyk: demo-deps
	GOTOOLCHAIN=$(TYK_GO) tyk-plugin/bench.sh

## kong-plugin: bin/bffgate-kong, a static go-pdk plugin server (see kong-plugin/README.md)
kong-plugin:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/bffgate-kong ./kong-plugin

## release: dist/ with the versioned binaries (linux amd64, arm64), the Tyk plugin, the npm tarball and SHA256SUMS
release: demo-deps
	TYK_GO=$(TYK_GO) GO=$(GO) scripts/release.sh

test-js:
	npm --prefix sdk-js run --silent typecheck
	npm --prefix sdk-js test --silent
	npm --prefix sdk-js run --silent check:pack

## test-next: the Next.js App Router build of the packed SDK alone (make test runs it too: test-deps installs sdk-js/test/next-app)
test-next:
	scripts/deps.sh node
	npm --prefix sdk-js run --silent check:next

## lint: gofmt, go vet and staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PLAIN_PKGS)
	@[ -x $(GOBIN)/staticcheck ] || GOFLAGS= $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck $(PLAIN_PKGS)
	CGO_ENABLED=1 $(GO) vet -tags goplugin ./tyk-plugin/...
	CGO_ENABLED=1 $(GOBIN)/staticcheck -tags goplugin ./tyk-plugin/...
	cd extauthz-grpc && $(GO) vet ./... && $(GOBIN)/staticcheck ./...

## demo: the test OpenID Provider, an API and bffgate serving the demo SPA on 127.0.0.1
demo: demo-deps sdk-build
	$(GO) run ./tests/demo/run $(DEMO_FLAGS)

## bench: Go benchmarks of the hot path (side by side: memory store, identity headers)
bench:
	$(GO) test -p 1 -run '^$$' -bench . -benchmem ./core/...

## bench-kong: the Kong plugin server's own CPU and allocations per request through the socket protocol, beside an empty go-pdk plugin (BENCHMARKS.md, Kong)
bench-kong: demo-deps
	$(GO) test -count=1 -v -run '^$$' -bench Kong -benchtime 20000x ./kong-plugin/

## bench-compare: bffgate serve vs oauth2-proxy v7.8.1 vs the bare upstream, with wrk on loopback (writes BENCHMARKS.md)
bench-compare: demo-deps
	scripts/deps.sh wrk
	$(GO) build -o bin/bffgate ./cmd/bffgate
	cd bench/oauth2-proxy && $(GO) build -o ../../bin/oauth2-proxy github.com/oauth2-proxy/oauth2-proxy/v7
	$(GO) run ./bench/compare

## bench-nginx: real nginx in front of an API without vs with bffgate extauthz's auth_request, wrk on loopback (writes BENCHMARKS.md; make test runs its stack once, without wrk)
bench-nginx: demo-deps
	scripts/deps.sh debs wrk
	$(GO) run ./bench/nginx $(BENCH_NGINX_FLAGS)

## fuzz: each fuzz target for FUZZTIME (the seed corpora also run in make test)
fuzz:
	@for pkg in ./core/bff ./core/session; do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin dist sdk-js/dist sdk-js/demo/dist sdk-js/test/next-app/.next tests/artifacts
