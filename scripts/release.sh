#!/usr/bin/env bash
# release.sh: the release artifacts of bffgate's one version (internal/version)
# in dist/ (or -out DIR), with SHA256SUMS. `make release` runs it.
#
#   scripts/release.sh [-fast] [-out DIR]
#
# Artifacts, each named with the version V:
#   bffgate_V_linux_{amd64,arm64}           bffgate serve / check / extauthz (static, CGO_ENABLED=0)
#   bffgate-kong_V_linux_{amd64,arm64}      the Kong go-pdk plugin server (static)
#   bffgate-extauthz_V_linux_{amd64,arm64}  the gRPC ext_authz server (extauthz-grpc module, static)
#   bffgate-tyk_V_tyk-v5.14.0_linux_amd64.tar.gz
#                                           bffgate_v5.14.0_linux_amd64.so inside, the name
#                                           Tyk looks for beside .../bffgate.so (tyk-plugin/README.md);
#                                           built with TYK_GO (cgo, so for the build host's
#                                           architecture only)
#   bffgate-client-V.tgz                    the npm package @bffgate/client (npm pack)
#   SHA256SUMS                              sha256sum -c SHA256SUMS checks them all
#
# -fast builds only the host architecture's Go binaries and the npm tarball
# (no cross builds, no Tyk plugin): for the release test.
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
out=dist
while [ $# -gt 0 ]; do
  case "$1" in
    -fast) fast=1 ;;
    -out) out="$2"; shift ;;
    *) echo "usage: scripts/release.sh [-fast] [-out DIR]" >&2; exit 2 ;;
  esac
  shift
done

GO=${GO:-go}
TYK_GO=${TYK_GO:-go1.25.14}
TYK_VERSION=v5.14.0 # the gateway bffgate.so's pins are for (tyk-plugin/pins_test.go)
export GOFLAGS=${GOFLAGS:--buildvcs=false}
V=$($GO run ./internal/version/testdata/printversion)
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/bffgate*"$V"* "$out/SHA256SUMS"

arches="amd64 arm64"
if [ "$fast" = 1 ]; then
  arches=$($GO env GOARCH)
fi
for arch in $arches; do
  echo "release: $V linux/$arch" >&2
  export CGO_ENABLED=0 GOOS=linux GOARCH=$arch
  $GO build -trimpath -ldflags=-s -o "$out/bffgate_${V}_linux_$arch" ./cmd/bffgate
  $GO build -trimpath -ldflags=-s -o "$out/bffgate-kong_${V}_linux_$arch" ./kong-plugin
  (cd extauthz-grpc && $GO build -trimpath -ldflags=-s -o "$out/bffgate-extauthz_${V}_linux_$arch" ./cmd/bffgate-extauthz)
  unset CGO_ENABLED GOOS GOARCH
done

if [ "$fast" = 0 ]; then
  echo "release: $V bffgate.so for Tyk $TYK_VERSION ($TYK_GO)" >&2
  arch=$($GO env GOARCH)
  so="bffgate_${TYK_VERSION}_linux_$arch.so"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  GOTOOLCHAIN=$TYK_GO CGO_ENABLED=1 $GO build -buildmode=plugin -trimpath -tags goplugin -o "$tmp/$so" ./tyk-plugin
  tar -C "$tmp" -czf "$out/bffgate-tyk_${V}_tyk-${TYK_VERSION}_linux_$arch.tar.gz" "$so"
fi

echo "release: $V npm package" >&2
npm --prefix sdk-js run --silent build
(cd sdk-js && npm pack --silent --pack-destination "$out" >/dev/null)

(cd "$out" && sha256sum -- *"$V"* > SHA256SUMS)
echo "release: $V in $out:" >&2
cat "$out/SHA256SUMS" >&2
