#!/usr/bin/env bash
# Installs what `make test` and `make demo` need on a bare machine, and
# nothing that is already there: Debian packages (via apt-get), the npm
# packages of each Node folder (npm ci, from the committed lock files) and
# the Go modules. Usage: scripts/deps.sh [debs|node|go|redis]...
set -euo pipefail
cd "$(dirname "$0")/.."

# command:package pairs for Debian packages the tests use.
# docker-compose (Debian's, 1.29: no daemon needed for `config`) checks
# compose/'s stacks offline; its python3-yaml reads their YAML.
DEBS=(redis-server:redis-server redis-cli:redis-tools chromium:chromium nginx:nginx caddy:caddy docker-compose:docker-compose)
NODE_DIRS=(tests/op sdk-js tests/browser sdk-js/test/next-app)

debs() {
  local missing=()
  for pair in "${DEBS[@]}" "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "deps: installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # nginx and redis-server would start as system services (port 80, 6379)
  # where init scripts run: the tests start their own on free ports. A
  # policy-rc.d that forbids starting services, for this install only.
  local policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$policy" ] || $sudo rm -f "$policy"
}

node() {
  for dir in "${NODE_DIRS[@]}"; do
    [ -f "$dir/package-lock.json" ] || continue
    # npm ci again only when the lock file changed since the last install.
    if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      echo "deps: npm ci in $dir"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  done
}

go_mods() {
  go mod download
  (cd extauthz-grpc && go mod download)
}

# redis makes sure a Redis answers on 127.0.0.1:6379 (machines of this kind
# start one; a bare one may not have it running).
redis() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "deps: starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir "${TMPDIR:-/tmp}" --logfile "${TMPDIR:-/tmp}/bffgate-redis.log"
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "deps: redis-server did not start" >&2
    return 1
  fi
}

[ $# -gt 0 ] || set -- debs node go redis
for step in "$@"; do
  case "$step" in
    debs) debs ;;
    wrk) debs wrk:wrk ;;
    node) node ;;
    go) go_mods ;;
    redis) redis ;;
    *) echo "deps: unknown step $step" >&2; exit 2 ;;
  esac
done
