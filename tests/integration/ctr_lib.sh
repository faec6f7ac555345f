# shellcheck shell=bash
# ctr_lib.sh - a private container engine for the container tests (sourced
# after lib.sh and cas_lib.sh).
#
# dockerd runs as root with its own data root, exec root, socket and pid
# file under a fresh directory, without touching the host's firewall
# (--iptables=false --ip-forward=false --bridge=none: user-defined networks,
# published 127.0.0.1 ports and swarm still work) and never pulls
# (DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 for swarm; images are built from
# deploy/). ctr_stop removes every container, service, volume and network,
# stops the daemon (and its containerd), unmounts what is left under its
# directories (nsfs mounts of network namespaces) and removes them.

DOCKER=${DOCKER:-/usr/bin/docker} # another docker client may come first in PATH
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
COMPOSE=${COMPOSE:-/usr/bin/docker-compose}
CTR_DIR=
DOCKERD_PID=

# Why no engine can start here ("" when one can).
ctr_engine_reason() {
	[ "$(id -u)" -eq 0 ] || { echo "dockerd needs root"; return; }
	[ -x "$DOCKERD" ] && [ -x "$DOCKER" ] || { echo "docker.io is not installed (scripts/install-deps.sh --containers, or make test-containers)"; return; }
	[ -x "$COMPOSE" ] || { echo "docker-compose is not installed (scripts/install-deps.sh --containers, or make test-containers)"; return; }
	command -v debootstrap >/dev/null || { echo "debootstrap is not installed (scripts/install-deps.sh --containers, or make test-containers)"; return; }
	command -v patchelf >/dev/null || { echo "patchelf is not installed (scripts/install-deps.sh --containers, or make test-containers)"; return; }
	[ -d /sys/fs/cgroup ] || { echo "no cgroup file system"; return; }
	echo ""
}

# ctr_start: start dockerd; sets DOCKER_HOST (exported) and CTR_DIR. Returns 1 with the reason on
# stderr (its last line).
ctr_start() {
	local i
	CTR_DIR=$(mktemp -d /tmp/sctr.XXXXXX) # short: containerd's socket paths live under it
	mkdir -p "$CTR_DIR/cli"
	echo "{}" >"$CTR_DIR/cli/config.json" # also read by podman (DOCKER_CONFIG)
	DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 "$DOCKERD" --data-root "$CTR_DIR/data" --exec-root "$CTR_DIR/exec" \
		-H "unix://$CTR_DIR/docker.sock" --pidfile "$CTR_DIR/docker.pid" \
		--iptables=false --ip-forward=false --bridge=none >"$CTR_DIR/dockerd.log" 2>&1 </dev/null &
	DOCKERD_PID=$!
	export DOCKER_HOST="unix://$CTR_DIR/docker.sock" DOCKER_CONFIG="$CTR_DIR/cli" SCONE_ENGINE="$DOCKER"
	export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
	for ((i = 0; i < 600; i++)); do
		if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
			wait "$DOCKERD_PID"
			echo "dockerd exited (status $?) during start-up: $(grep -v '^[[:space:]]*$' "$CTR_DIR/dockerd.log" | tail -1)" >&2
			return 1
		fi
		"$DOCKER" info >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "dockerd did not answer within 60 s" >&2
	tail -5 "$CTR_DIR/dockerd.log" >&2
	return 1
}

ctr_pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# ctr_stop: tear down everything the daemon holds, then the daemon and its directories.
ctr_stop() {
	local i ctd m
	[ -n "$CTR_DIR" ] || return 0
	if ctr_pid_alive "$DOCKERD_PID"; then
		"$DOCKER" swarm leave --force >/dev/null 2>&1
		"$DOCKER" ps -aq 2>/dev/null | xargs -r "$DOCKER" rm -f >/dev/null 2>&1
		"$DOCKER" volume ls -q 2>/dev/null | xargs -r "$DOCKER" volume rm -f >/dev/null 2>&1
		"$DOCKER" network prune -f >/dev/null 2>&1
		ctd=$(cat "$CTR_DIR/exec/containerd/containerd.pid" 2>/dev/null)
		kill -TERM "$DOCKERD_PID" 2>/dev/null
		for ((i = 0; i < 300; i++)); do
			ctr_pid_alive "$DOCKERD_PID" || break
			sleep 0.1
		done
		kill -9 "$DOCKERD_PID" 2>/dev/null
		wait "$DOCKERD_PID" 2>/dev/null
		if [ -n "$ctd" ] && ctr_pid_alive "$ctd" && grep -q containerd "/proc/$ctd/comm" 2>/dev/null; then
			kill -TERM "$ctd" 2>/dev/null
			sleep 1
			kill -9 "$ctd" 2>/dev/null
		fi
	fi
	# What dockerd leaves mounted (network namespaces' nsfs, overlays of a killed daemon), deepest first.
	awk -v d="$CTR_DIR" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	rm -rf "$CTR_DIR"
	CTR_DIR=
}

# ---------------- helpers for cases ----------------

dk() { "$DOCKER" "$@"; }

# wait_until SECONDS CMD...: CMD succeeds within SECONDS (checked every 0.5 s).
wait_until() {
	local t=$1 i
	shift
	for ((i = 0; i < t * 2; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}

# cert_fp_of CONTAINER: the SHA-256 fingerprint of the certificate of the CAS running in CONTAINER.
cas_fp_of() {
	dk exec "$1" cat /var/lib/scone-cas/cas.crt | openssl x509 -outform DER | sha256sum | cut -d' ' -f1
}

# owner_for ADDR FINGERPRINT: a fresh owner identity in the case directory that trusts that CAS.
owner_for() {
	mkdir -p "$CASE_DIR/owner"
	export SCONE_CLI_CONFIG=$CASE_DIR/owner/config.json
	expect_ok scone cas keygen
	wait_until 30 curl -skf "https://$1/healthz" || fail "CAS at $1 does not answer /healthz"
	expect_ok scone cas trust "$1" --fingerprint "$2"
}

# no_plaintext_in_image IMAGE PATTERN: no layer of IMAGE holds PATTERN (docker save, every layer read).
image_holds() {
	local d l
	d=$(mktemp -d "$CASE_DIR/save.XXXX")
	dk save "$1" | tar -x -C "$d"
	for l in "$d"/*/layer.tar; do
		if tar -xOf "$l" 2>/dev/null | grep -aqF -- "$2"; then
			rm -rf "$d"
			return 0
		fi
	done
	rm -rf "$d"
	return 1
}

# LAS: switched on when build/bin/scone-las exists (scone/las is then built).
las_available() { [ -x "$(dirname "$SCONE_BIN")/scone-las" ]; }

# What a LAS container needs beside the host's pid namespace (as the compose file gives it):
# /proc/PID/map_files and other processes' memory. Not --privileged: that asks for every
# capability, and runc refuses to start it where the host withholds one (CAP_SYS_RESOURCE here).
LAS_CAPS=(--cap-add SYS_ADMIN --cap-add SYS_PTRACE --security-opt seccomp=unconfined --security-opt apparmor=unconfined)

# measure_in IMAGE PROGRAM: what `scone measure` prints inside IMAGE.
measure_in() {
	dk run --rm --network none --entrypoint /opt/scone/bin/scone "$1" measure "$2"
}
