#!/usr/bin/env bash
# compile.sh builds bffgate's Tyk plugin, bffgate.so, the way Tyk's plugin
# compiler (tykio/tyk-plugin-compiler) builds a plugin: cgo, -buildmode=plugin,
# -trimpath, the goplugin tag. See tyk-plugin/README.md.
#
#   tyk-plugin/compile.sh <name.so> [build_id] [GOOS] [GOARCH]
#
# Inside the tyk-plugin-compiler image (run as its entrypoint, the bffgate
# checkout mounted at /plugin-source) it builds in a Go workspace with the
# gateway's own module, with the image's Go toolchain, and names the file
# <name>_<gateway version>_<GOOS>_<GOARCH>.so, which is the name Tyk looks for
# first. Elsewhere it builds into <name.so> with the Go toolchain of the Tyk
# release bffgate targets (TYK_GO in the Makefile; the go command fetches it),
# unless GOTOOLCHAIN is set: a plugin built by another Go minor version than
# the gateway's kills the gateway when it loads the API.
#
# build_id makes a build that can be loaded into a gateway that already loaded
# another bffgate.so (a Go plugin loads once per process: "plugin already
# loaded"): the module path of a copy of the source is rewritten to one of its
# own, as the compiler does with its build_id, so every package of this build
# is new to the gateway. (-ldflags=-pluginpath=... alone does not work: the
# hook's symbol keeps the package path and Tyk cannot look it up; and packages
# changed since the loaded build would clash with their loaded versions.)
#
# GOFLAGS is passed on (e.g. GOFLAGS=-race for a host built with -race).
set -euo pipefail

name=${1:?usage: compile.sh <name.so> [build_id] [GOOS] [GOARCH]}
build_id=${2:-}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(dirname "$here") # the bffgate module root
module=$(sed -n 's/^module[[:space:]]*//p' "$src/go.mod")

# Inside tykio/tyk-plugin-compiler: TYK_GW_PATH is the gateway's module,
# GITHUB_TAG its version, and the image's toolchain is the gateway's own.
in_compiler=
if [ -n "${TYK_GW_PATH:-}" ] && [ -f "${TYK_GW_PATH}/go.mod" ]; then
	in_compiler=1
elif [ -z "${GOTOOLCHAIN:-}" ]; then
	GOTOOLCHAIN=$(sed -n 's/^TYK_GO[[:space:]]*?=[[:space:]]*\(go[0-9.]*\)[[:space:]]*$/\1/p' "$src/Makefile")
	if [ -z "$GOTOOLCHAIN" ]; then
		echo "compile.sh: the Makefile names no TYK_GO (the Go toolchain of the targeted Tyk release); set GOTOOLCHAIN to your gateway's (go version -m <gateway binary>)" >&2
		exit 1
	fi
	export GOTOOLCHAIN
fi
export GOOS=${3:-$(go env GOOS)}
export GOARCH=${4:-$(go env GOARCH)}

# The toolchain must be at least the module's go version; with an older one
# the go command would fetch a newer toolchain (or refuse), and a plugin built
# by another toolchain than the gateway's does not load.
want_go=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$src/go.mod")
have_go=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$want_go" "$have_go" | sort -V | head -1)" != "$want_go" ]; then
	echo "compile.sh: go.mod says go $want_go but this toolchain is go $have_go (the gateway's)." >&2
	echo "  A Tyk plugin must be built by the gateway's Go toolchain: build bffgate from a release" >&2
	echo "  whose go.mod says go $have_go or lower." >&2
	exit 1
fi

if [ -n "$in_compiler" ]; then
	version=$(echo "${GITHUB_TAG:-}" | sed -n 's/^v\{0,1\}\([0-9]*\.[0-9]*\.[0-9]*\).*/v\1/p')
	if [ -z "$version" ]; then
		echo "compile.sh: GITHUB_TAG (${GITHUB_TAG:-unset}) names no gateway version" >&2
		exit 1
	fi
	name="${name%.so}_${version}_${GOOS}_${GOARCH}.so"
	out_dir=${PLUGIN_SOURCE_PATH:-/plugin-source}
	work=$(dirname "$TYK_GW_PATH")
else
	out_dir=$PWD
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi
case "$name" in /*) out=$name ;; *) out=$out_dir/$name ;; esac
mkdir -p "$(dirname "$out")"

# Build from a copy: the checkout stays untouched, and a build_id can rename it.
# The copy leaves out the checkout's top-level hidden folders (.git, and Go
# caches a CI may keep in the checkout: a build_id rewrite must not touch
# them) and what is not source.
build="$work/bffgate_plugin${build_id:+_$build_id}"
rm -rf "$build" && mkdir -p "$build"
(cd "$src" && tar -cf - --exclude='./.?*' --exclude=node_modules --exclude='*.so' --exclude=bin .) | (cd "$build" && tar -xf -)
if [ -n "$build_id" ]; then
	case "$build_id" in *[!A-Za-z0-9_.-]*)
		echo "compile.sh: build_id may hold only letters, digits, _ . -" >&2; exit 1 ;;
	esac
	new="bffgate.internal/bffgate_$build_id"
	(cd "$build" && go mod edit -module "$new" &&
		find . -name '*.go' -exec sed -i -e "s,\"$module/,\"$new/,g" -e "s,\"$module\",\"$new\",g" {} +)
fi

if [ -n "$in_compiler" ]; then
	# The gateway's module in the same workspace: shared modules resolve to
	# the gateway's versions (a newer version in go.mod would win and break the
	# load; tyk-plugin/pins_test.go guards against that).
	export GOWORK="$work/go.work"
	rm -f "$GOWORK"
	(cd "$work" && go work init "$TYK_GW_PATH" "$build")
fi

cc=$(go env CC)
if [ "$GOARCH" = arm64 ] && [ "$GOOS" = linux ] && [ "$(go env GOHOSTARCH)" != arm64 ]; then
	cc=aarch64-linux-gnu-gcc
fi
tags="goplugin${BUILD_TAG:+,$BUILD_TAG}"
echo "compile.sh: building $out with $(go env GOVERSION)${build_id:+ (module $new)}" >&2
(cd "$build" && CC=$cc CGO_ENABLED=1 go build -buildmode=plugin -trimpath -tags="$tags" -o "$out" ./tyk-plugin)
if [ -n "$in_compiler" ]; then rm -f "$GOWORK" "$GOWORK.sum"; fi
echo "$out"
