#!/usr/bin/env bash
# Source rules that the compiler does not enforce: no banned libc functions
# in src/, and a warning-free build with clang as well as gcc (-Werror).
set -uo pipefail
cd "$(dirname "$0")/../.."

banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|strncpy|alloca)[[:space:]]*\('
if hits=$(grep -nE "$banned" src/*/*.c src/*/*.h | grep -vE '\b(snprintf|vsnprintf)\b'); then
	echo "not ok - no banned functions in src/"
	echo "$hits" | sed 's/^/#   /'
else
	echo "ok - no banned functions in src/"
fi

if command -v clang >/dev/null; then
	if out=$(make -s CC=clang BUILD=build/clang all tools 2>&1); then
		echo "ok - clang build is warning-free (-Werror)"
	else
		echo "not ok - clang build is warning-free (-Werror)"
		echo "$out" | tail -20 | sed 's/^/#   /'
	fi
else
	echo "skip - clang build (clang not installed)"
fi
