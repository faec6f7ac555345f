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

# The C sources stay as .clang-format lays them out (apply: clang-format -i FILE).
mapfile -t c_files < <(find src tests/unit tests/tools fuzz bench -name '*.[ch]' | sort)
if ! command -v clang-format >/dev/null; then
	echo "not ok - C sources are clang-formatted (clang-format missing: scripts/install-deps.sh installs it)"
elif out=$(clang-format --dry-run --Werror "${c_files[@]}" 2>&1); then
	echo "ok - C sources are clang-formatted (${#c_files[@]} files)"
else
	echo "not ok - C sources are clang-formatted (clang-format -i the files named)"
	echo "$out" | grep -E '^[^ ].*: (error|warning):' | cut -d: -f1 | sort -u | head -20 | sed 's/^/#   /'
fi

# Every libc function libscone.so defines is exported: an interposer left out of
# src/runtime/libscone.map is never called (__fxstat64 and inotify_add_watch were).
so=build/lib/libscone.so
libc=$(ldd "$so" 2>/dev/null | awk '/libc\.so/ {print $3; exit}')
if [ -f "$so" ] && [ -f "$libc" ]; then
	missing=$(comm -23 <(nm --defined-only "$so" | awk '$2 == "T" || $2 == "t" {print $3}' | sort -u |
		comm -12 - <(nm -D "$libc" | awk '{print $NF}' | sed 's/@.*//' | sort -u)) \
		<(nm -D --defined-only "$so" | awk '{print $3}' | sort -u) | grep -vx 'pthread_atfork' || true)
	if [ -z "$missing" ]; then
		echo "ok - libscone.so exports every libc function it defines"
	else
		echo "not ok - libscone.so exports every libc function it defines (add to src/runtime/libscone.map)"
		echo "$missing" | head -20 | sed 's/^/#   /'
	fi
else
	echo "not ok - libscone.so exports every libc function it defines ($so or libc not found: make first)"
fi
