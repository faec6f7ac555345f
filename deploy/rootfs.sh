#!/usr/bin/env bash
# rootfs.sh - a Debian root file system for scone's images, made from
# Debian's packages with debootstrap and kept in a cache, so that images
# are built without any image registry: the tarball is imported as the
# base image (`docker import`), ordinary Dockerfiles go on top.
#
#   deploy/rootfs.sh [--print-key]        prints the path of the cached tarball
#
# Environment: SCONE_ROOTFS_CACHE (default /var/cache/scone/rootfs),
# SCONE_ROOTFS_SUITE (default: this host's release, else bookworm),
# SCONE_ROOTFS_MIRROR (default: the first Debian URI in apt's sources).
# Needs root (debootstrap). The tarball is rebuilt only when the suite or
# the package list changes; a build that fails leaves nothing in the cache.
set -euo pipefail

SUITE=${SCONE_ROOTFS_SUITE:-$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")}
SUITE=${SUITE:-bookworm}
CACHE=${SCONE_ROOTFS_CACHE:-/var/cache/scone/rootfs}
# What scone's binaries link (CAS, LAS, CLI; libpq5 for CAS's PostgreSQL
# store) and what the examples run:
# Python (the web app sconify is shown on) and Redis (the compose and
# stack example). Application images bring their own in real use.
PACKAGES=(
	ca-certificates libssl3 libsqlite3-0 libpq5 libjansson4 libyaml-0-2
	libevent-2.1-7 libevent-openssl-2.1-7 libevent-pthreads-2.1-7
	python3 redis-server redis-tools procps
)
VERSION=1 # of this script's recipe: bump to rebuild every cache

mirror() {
	local m
	if [ -n "${SCONE_ROOTFS_MIRROR:-}" ]; then
		echo "$SCONE_ROOTFS_MIRROR"
		return
	fi
	# deb822 (URIs:) or one-line (deb URI suite ...) sources; the first that is not a security archive.
	m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs:[[:space:]]*//p' | tr ' ' '\n' |
		grep -v security | head -1)
	[ -n "$m" ] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' | grep -v security | head -1)
	echo "${m:-http://deb.debian.org/debian}"
}

key=$(printf '%s\n' "$VERSION" "$SUITE" "$(uname -m)" "${PACKAGES[@]}" | sha256sum | cut -c1-16)
if [ "${1:-}" = --print-key ]; then
	echo "$key"
	exit 0
fi
out="$CACHE/debian-$SUITE-$key.tar"
if [ -s "$out" ]; then
	echo "$out"
	exit 0
fi
command -v debootstrap >/dev/null || { echo "rootfs.sh: debootstrap is not installed (scripts/install-deps.sh)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "rootfs.sh: debootstrap needs root" >&2; exit 1; }
mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/build.XXXXXX")
# debootstrap unmounts what it mounted, unless it was stopped half-way.
cleanup() {
	local m
	for m in proc sys dev/pts; do
		if mountpoint -q "$work/root/$m" 2>/dev/null; then umount -l "$work/root/$m" || true; fi
	done
	rm -rf "$work"
}
trap cleanup EXIT
url=$(mirror)
echo "rootfs.sh: debootstrap $SUITE from $url (a minute or two; cached as $out)" >&2
inc=$(IFS=,; echo "${PACKAGES[*]}")
if ! debootstrap --variant=minbase --include="$inc" "$SUITE" "$work/root" "$url" >"$work/log" 2>&1; then
	tail -20 "$work/log" >&2
	[ ! -f "$work/root/debootstrap/debootstrap.log" ] || tail -20 "$work/root/debootstrap/debootstrap.log" >&2
	echo "rootfs.sh: debootstrap failed" >&2
	exit 1
fi
# What an image does not need: package downloads and lists, logs, the
# redis service's own data and log files (a container runs it by hand).
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"* \
	"$work/root/var/log/"*.log "$work/root/var/lib/redis/"* "$work/root/debootstrap"
printf 'deb %s %s main\n' "$url" "$SUITE" >"$work/root/etc/apt/sources.list"
: >"$work/root/etc/hostname"
tar --numeric-owner --xattrs -C "$work/root" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$out"
echo "$out"
