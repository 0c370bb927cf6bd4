#!/usr/bin/env bash
# bench.sh is `make bench-tyk`: bffgate.so in the Tyk-like test host beside
# a no-op Go plugin hook (and no hook), under wrk on loopback; writes the Tyk
# section of BENCHMARKS.md (-profile DIR: CPU and allocation profiles too).
# Bounded: wrk runs 6 s (-d) per target and round (5 rounds, -rounds: short
# rounds, interleaved, so a busy spell of the machine hits every target),
# and the run is killed after 10 minutes (the builds before it are not).
#
#   tyk-plugin/bench.sh [-d 6s] [-rounds 5] [-out BENCHMARKS.md] [-profile DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
	echo "bench.sh: installing wrk (Debian package)" >&2
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get install -y wrk >/dev/null 2>&1 || { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi
if [ ! -f tests/op/node_modules/oidc-provider/package.json ]; then
	npm ci --prefix tests/op --no-audit --no-fund >/dev/null
fi

# Built first, outside the time limit: on a bare machine the build alone
# (the Go toolchain download, a cold cache) can take minutes.
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
CGO_ENABLED=1 go build -trimpath -tags goplugin -o "$bin/bench" ./tyk-plugin/bench
CGO_ENABLED=1 go build -buildmode=plugin -trimpath -tags goplugin -o "$bin/bffgate.so" ./tyk-plugin
CGO_ENABLED=1 timeout 600 "$bin/bench" "$@"
