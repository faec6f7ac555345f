#!/usr/bin/env bash
# Source rules that the compiler does not enforce: no banned libc functions
# in src/, and a warning-free build with clang as well as gcc (-Werror).
set -uo pipefail
cd "$(dirname "$0")/../.."

# Every line is checked (snprintf and vsnprintf do not match: the word
# boundary keeps "sprintf" from matching inside them).
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|strncpy|alloca)[[:space:]]*\('
sources=(src/*/*.c src/*/*.h tests/tools/*.c tests/tools/*/*.c tests/tools/*/*.h bench/*.c fuzz/*.c fuzz/*.h)
if hits=$(grep -nE "$banned" "${sources[@]}" 2>/dev/null); then
	echo "not ok - no banned functions in src/, tests/tools/, bench/, fuzz/"
	echo "$hits" | sed 's/^/#   /'
else
	echo "ok - no banned functions in src/, tests/tools/, bench/, fuzz/"
fi
# The check itself: a banned call on a line that also holds snprintf is found.
if printf 'snprintf(a, 1, "x"); strcpy(b, c);\n' | grep -qE "$banned"; then
	echo "ok - the banned-function check sees a banned call beside snprintf"
else
	echo "not ok - the banned-function check sees a banned call beside snprintf"
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
