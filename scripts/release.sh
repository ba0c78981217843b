#!/bin/sh
# Build domainguard release binaries: static (CGO_ENABLED=0), stripped,
# reproducible paths (-trimpath), the version stamped into
# internal/buildinfo.Version (what `domainguard version` and the
# domainguard_build_info gauge show), one per target, and a SHA256SUMS file.
#
#   scripts/release.sh VERSION [OUTDIR]        # OUTDIR defaults to dist/VERSION
#   TARGETS="linux/amd64" scripts/release.sh v1.2.3 /tmp/out
#
# TARGETS defaults to linux/amd64 linux/arm64 darwin/amd64 darwin/arm64.
# The production build has no plotting (simulate/bench --plot-dir need
# -tags plot, see docs/simulation.md).
set -eu

if [ $# -lt 1 ] || [ -z "$1" ]; then
	echo "usage: scripts/release.sh VERSION [OUTDIR]" >&2
	exit 2
fi
version=$1
case "$version" in
v[0-9]*) ;;
*)
	echo "release.sh: version $version: want a tag such as v1.2.3" >&2
	exit 2
	;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
out=${2:-$root/dist/$version}
targets=${TARGETS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"}

mkdir -p "$out"
cd "$root"
for target in $targets; do
	os=${target%/*}
	arch=${target#*/}
	bin="domainguard-$version-$os-$arch"
	echo "building $bin" >&2
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath \
		-ldflags "-s -w -X github.com/domainguard/domainguard/internal/buildinfo.Version=$version" \
		-o "$out/$bin" ./cmd/domainguard
done

cd "$out"
if command -v sha256sum >/dev/null 2>&1; then
	sha256sum domainguard-"$version"-* >SHA256SUMS
else
	shasum -a 256 domainguard-"$version"-* >SHA256SUMS
fi
echo "wrote $out:" >&2
ls -l "$out" >&2
