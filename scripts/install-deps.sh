#!/usr/bin/env bash
# Install every Debian package that scone's build, tests, fuzzers and
# benchmarks need. Idempotent: does nothing when all are present.
set -euo pipefail

PACKAGES=(
	build-essential pkg-config clang clang-format libclang-rt-14-dev
	libssl-dev libyaml-dev libsqlite3-dev libpq-dev libjansson-dev libevent-dev libcmocka-dev
	openssl sqlite3 postgresql python3 python3-yaml gnupg coreutils nginx-light curl redis-server redis-tools
	liburing-dev libaio-dev golang-go strace gdb util-linux
	# databases on volumes (tests/integration/test_databases.sh, bench/bench_databases.sh)
	mariadb-server mariadb-client nodejs wrk
	# the network shield against redis's and nginx's own TLS and stunnel
	# (bench/bench_netshield.sh; also redis-server, redis-tools, nginx-light, wrk above)
	stunnel4
	# loopback capture: no plaintext on the wire (tests/integration/test_netshield.sh)
	tshark
)
# The container tests (make test-containers, tests/integration/test_containers.sh):
# engines, and what deploy/ builds images with. Only with --containers.
CONTAINER_PACKAGES=(
	docker.io docker-compose podman containernetworking-plugins catatonit runc crun uidmap
	debootstrap patchelf tar
)
if [ "${1:-}" = --containers ]; then
	PACKAGES+=("${CONTAINER_PACKAGES[@]}")
fi

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
# wireshark-common asks whether non-root users may capture: no (the tests capture as root or skip).
if [[ " ${missing[*]} " == *" tshark "* ]]; then
	echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
fi
$SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
