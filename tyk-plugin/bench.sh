#!/usr/bin/env bash
# bench.sh is `make bench-tyk`: bffgate.so in the Tyk-like test host, without
# and with the plugin, under wrk on loopback; writes the Tyk section of
# BENCHMARKS.md. Bounded: wrk runs 10 s (-d) per target and round (3 rounds,
# -rounds), and the whole run is killed after 10 minutes.
#
#   tyk-plugin/bench.sh [-d 10s] [-rounds 3] [-out BENCHMARKS.md]
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

CGO_ENABLED=1 timeout 600 go run -trimpath -tags goplugin ./tyk-plugin/bench "$@"
