#!/usr/bin/env bash
# Install every Debian package that scone's build, tests, fuzzers and
# benchmarks need. Idempotent: does nothing when all are present.
set -euo pipefail

PACKAGES=(
	build-essential pkg-config clang libclang-rt-14-dev
	libssl-dev libyaml-dev libsqlite3-dev libjansson-dev libevent-dev libcmocka-dev
	openssl sqlite3 python3 coreutils nginx-light curl redis-server redis-tools
	liburing-dev libaio-dev golang-go gdb util-linux
)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
