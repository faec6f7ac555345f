#!/usr/bin/env bash
# build-images.sh - scone's container images, built without any image
# registry: a Debian root file system from debootstrap (deploy/rootfs.sh,
# cached) is imported as the base, ordinary Dockerfiles go on top, and
# nothing is ever pulled.
#
#   deploy/build-images.sh [IMAGE...]     default: every image below
#
#   scone/debian:bookworm          the imported root file system
#   scone/runtime:TAG              the base with the runtime (/opt/scone)
#   scone/cas:TAG                  scone-cas
#   scone/las:TAG                  scone-las (when build/bin/scone-las exists)
#   scone/postgres:TAG             Debian's PostgreSQL, the store of CAS replicas
#                                  (only when named: its build installs the
#                                  postgresql package from the Debian mirror)
#   scone-example/pyweb:native     a plain Python web app, input of `scone image sconify`
#
# Environment: SCONE_ENGINE (docker or podman, default docker; DOCKER_HOST
# is honoured), SCONE_IMAGE_TAG (default latest), SCONE_BUILD (the build
# directory with bin/ and lib/, default build). Run `make` first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ENGINE=${SCONE_ENGINE:-docker}
TAG=${SCONE_IMAGE_TAG:-latest}
BUILD=${SCONE_BUILD:-$ROOT/build}
BASE=scone/debian:bookworm
export DOCKER_BUILDKIT=0 # the classic builder: offline, no buildx plugin

die() { echo "build-images.sh: $*" >&2; exit 1; }

for f in bin/scone bin/scone-cas lib/libscone.so; do
	[ -e "$BUILD/$f" ] || die "$BUILD/$f is missing (run make)"
done
command -v "$ENGINE" >/dev/null || die "$ENGINE is not installed (scripts/install-deps.sh)"

# The root file system, imported once per recipe (its cache key in the tag).
base_image() {
	local tar key
	key=$("$ROOT/deploy/rootfs.sh" --print-key)
	if ! "$ENGINE" image inspect "$BASE-$key" >/dev/null 2>&1; then
		tar=$("$ROOT/deploy/rootfs.sh")
		echo "build-images.sh: importing $tar as $BASE-$key" >&2
		"$ENGINE" import --change 'CMD ["/bin/bash"]' "$tar" "$BASE-$key" >/dev/null
	fi
	"$ENGINE" tag "$BASE-$key" "$BASE"
}

# The libraries a program needs beyond glibc, for an image that may lack them.
copy_deps() { # PROGRAM DIR
	ldd "$1" | awk '$3 ~ /^\// { print $3 }' | while read -r lib; do
		case $(basename "$lib") in
		libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*) ;;
		*) cp -L "$lib" "$2/" ;;
		esac
	done
}

# The build context: what the Dockerfiles copy, and nothing else.
stage() {
	local s=$1
	rm -rf "$s"
	mkdir -p "$s/runtime/opt/scone/bin" "$s/runtime/opt/scone/lib/deps" "$s/cas/bin" "$s/cas/state" "$s/las/bin"
	install -m 0755 "$BUILD/lib/libscone.so" "$s/runtime/opt/scone/lib/libscone.so"
	install -m 0755 "$BUILD/bin/scone" "$s/runtime/opt/scone/bin/scone"
	copy_deps "$BUILD/bin/scone" "$s/runtime/opt/scone/lib/deps"
	# scone finds its libraries beside it, whatever the image has (DT_RPATH, also for their own needs).
	patchelf --force-rpath --set-rpath '$ORIGIN/../lib/deps' "$s/runtime/opt/scone/bin/scone"
	install -m 0755 "$BUILD/bin/scone-cas" "$BUILD/bin/scone" "$s/cas/bin/"
	chmod 0700 "$s/cas/state"
	if [ -x "$BUILD/bin/scone-las" ]; then install -m 0755 "$BUILD/bin/scone-las" "$s/las/bin/"; fi
	mkdir -p "$s/postgres"
	install -m 0755 "$ROOT/deploy/images/postgres/scone-pg-start" "$s/postgres/"
}

build() { # IMAGE DOCKERFILE CONTEXT [BUILD-ARGS...]
	echo "build-images.sh: $1" >&2
	"$ENGINE" build -q --build-arg "BASE=$BASE" -t "$1" -f "$2" "${@:4}" "$3" >/dev/null
}

want() { [ ${#WANT[@]} -eq 0 ] || printf '%s\n' "${WANT[@]}" | grep -qx "$1"; }
named() { printf '%s\n' "${WANT[@]}" | grep -qx "$1"; }

WANT=("$@")
command -v patchelf >/dev/null || die "patchelf is not installed (scripts/install-deps.sh)"
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/scone-images.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
stage "$STAGE"
base_image
if want runtime; then build "scone/runtime:$TAG" "$ROOT/deploy/images/runtime/Dockerfile" "$STAGE"; fi
if want cas; then build "scone/cas:$TAG" "$ROOT/deploy/images/cas/Dockerfile" "$STAGE"; fi
if want las; then
	if [ -x "$BUILD/bin/scone-las" ]; then
		build "scone/las:$TAG" "$ROOT/deploy/images/las/Dockerfile" "$STAGE"
	else
		echo "build-images.sh: no $BUILD/bin/scone-las: scone/las not built" >&2
	fi
fi
# apt-get in the build needs the host's network (a private dockerd may have no bridge).
if named postgres; then
	build "scone/postgres:$TAG" "$ROOT/deploy/images/postgres/Dockerfile" "$STAGE" --network host
fi
if want pyweb; then
	build scone-example/pyweb:native "$ROOT/deploy/examples/pyweb/Dockerfile" "$ROOT/deploy/examples/pyweb"
fi
