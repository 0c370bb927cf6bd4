#!/usr/bin/env bash
# bench.sh is `make bench-tyk`: bffgate.so in the Tyk-like test host, without
# and with the plugin, under wrk on loopback; writes the Tyk section of
# BENCHMARKS.md. Bounded: wrk runs DURATION (default 10s) per target and the
# whole run is killed after 5 minutes.
#
#   tyk-plugin/bench.sh [-d 10s] [-out BENCHMARKS.md]
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

CGO_ENABLED=1 timeout 300 go run -trimpath -tags goplugin ./tyk-plugin/bench "$@"
