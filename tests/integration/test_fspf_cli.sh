#!/usr/bin/env bash
# test_fspf_cli.sh - `scone fspf` end to end: help and usage errors, the
# create/addr/addf/encrypt/show/verify/cat/extract flow with byte-identical
# results, what is (not) plaintext on disk, keys and tags (--key,
# --key-file, environment), in-place addf, every tamper case `verify` must
# name, and the progress bar.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
t_init

FX=$T_TMP/fixtures
MARKER=SCONE-PLAINTEXT-MARKER-5e1f0c2a9d
SIZES="0 1 4096 4097 307200 5242880" # 300 KB, 5 MB

# encrypt_vol FSPF [ARGS...]: seal; sets KEY and TAG, checks the one-line output.
encrypt_vol() {
	local fspf=$1 n
	shift
	expect_ok scone fspf encrypt "$fspf" "$@"
	n=$(wc -l <"$OUT")
	assert_eq 1 "$n" "lines printed by encrypt"
	assert_grep "^Encrypted file system protection file $fspf AES-GCM tag: [0-9a-f]{32} key: [0-9a-f]{64}\$" "$OUT"
	TAG=$(sed -E 's/.* tag: ([0-9a-f]{32}) key: .*/\1/' "$OUT")
	KEY=$(sed -E 's/.* key: ([0-9a-f]{64})$/\1/' "$OUT")
}

load_fx() { # DIR: KEY and TAG of a fixture
	KEY=$(cat "$1/key")
	TAG=$(cat "$1/tag")
}

# host_file FSPF VPATH: the host file holding VPATH (region dir "enc").
host_file() {
	local id
	expect_ok scone fspf show "$1" --key "$KEY" --tag "$TAG"
	id=$(awk -v p="$2" '$1 == "file" && $2 == p { print $NF }' "$OUT")
	[[ $id =~ ^[0-9a-f]{32}$ ]] || { show_output; fail "no file id for $2 in show"; }
	[ -f "enc/$id" ] || fail "host file enc/$id of $2 not found"
	echo "enc/$id"
}

# ---------------- fixtures ----------------

# full: /data encrypted (every size + a marker file + a subdirectory),
# /auth authenticated (marker), /scratch ephemeral.
build_full() {
	local d=$FX/full s
	mkdir -p "$d/native/sub/deeper" "$d/authnative"
	cd "$d"
	for s in $SIZES; do make_file "native/f$s" "$s" "full-$s"; done
	make_file native/sub/deeper/nested 12345 nested
	for s in 1 2 3 4 5; do echo "$MARKER line $s"; done >native/marker.txt
	for s in 1 2 3; do echo "$MARKER auth $s"; done >authnative/marker.txt
	make_file authnative/f4097 4097 auth-4097
	expect_ok scone fspf create vol.fspf
	assert_grep 'Created' "$OUT"
	expect_ok scone fspf addr vol.fspf /data --encrypted --kernel enc
	expect_ok scone fspf addr vol.fspf /auth --authenticated --kernel auth
	expect_ok scone fspf addr vol.fspf /scratch --encrypted --ephemeral
	expect_ok scone fspf addf vol.fspf /data native enc
	assert_empty "$ERR" "addf stderr (not a terminal)"
	expect_ok scone fspf addf vol.fspf /auth authnative auth
	assert_empty "$ERR" "addf stderr (not a terminal)"
	encrypt_vol vol.fspf
	assert_empty "$ERR" "encrypt stderr"
	echo "$KEY" >key
	echo "$TAG" >tag
	touch ready
}

# small: /data encrypted with sizes up to 300 KB, for the tamper cases (copied each time).
build_small() {
	local d=$FX/small s
	mkdir -p "$d/native"
	cd "$d"
	for s in 0 1 4096 4097 307200; do make_file "native/f$s" "$s" "small-$s"; done
	expect_ok scone fspf create vol.fspf
	expect_ok scone fspf addr vol.fspf /data --encrypted --kernel enc
	expect_ok scone fspf addf vol.fspf /data native enc
	encrypt_vol vol.fspf
	expect_ok scone fspf verify vol.fspf --key "$KEY" --tag "$TAG"
	echo "$KEY" >key
	echo "$TAG" >tag
	touch ready
}

need_fx() { # NAME: cd into a private copy of fixture NAME (or the fixture itself with ro)
	[ -f "$FX/$1/ready" ] || fail "fixture $1 was not built"
	if [ "${2:-}" = ro ]; then
		cd "$FX/$1"
	else
		cp -a "$FX/$1" "$CASE_DIR/vol"
		cd "$CASE_DIR/vol"
	fi
	load_fx .
}

# ---------------- help and usage ----------------

case_help() {
	local c
	expect_ok scone --help
	assert_grep 'Usage' "$OUT"
	expect_ok scone fspf --help
	assert_grep 'Usage' "$OUT"
	for c in create addr addf encrypt show verify cat extract; do
		expect_ok scone fspf "$c" --help
		assert_grep "Usage: scone fspf $c" "$OUT"
		assert_empty "$ERR" "stderr of fspf $c --help"
		expect_ok scone fspf "$c" -h
		assert_grep "Usage: scone fspf $c" "$OUT"
	done
}

case_usage_errors() {
	: >exists.fspf
	expect_usage_error scone fspf
	expect_usage_error scone fspf frobnicate
	assert_grep "unknown command" "$ERR"
	expect_usage_error scone fspf create
	assert_grep 'Usage: scone fspf create' "$ERR"
	expect_usage_error scone fspf create a.fspf b.fspf
	expect_usage_error scone fspf create --bogus-option a.fspf
	expect_usage_error scone fspf addr v.fspf /data
	assert_grep 'Usage: scone fspf addr' "$ERR"
	expect_usage_error scone fspf addr v.fspf /data --encrypted
	expect_usage_error scone fspf addr v.fspf /data --kernel d
	expect_usage_error scone fspf addr v.fspf /data --encrypted --authenticated --kernel d
	expect_usage_error scone fspf addr v.fspf /data --encrypted --kernel d --ephemeral
	expect_usage_error scone fspf addr v.fspf /data --encrypted --kernel
	expect_usage_error scone fspf addr v.fspf --encrypted --kernel d
	expect_usage_error scone fspf addr v.fspf /data extra --encrypted --kernel d
	expect_usage_error scone fspf addf v.fspf /data
	assert_grep 'Usage: scone fspf addf' "$ERR"
	expect_usage_error scone fspf addf v.fspf /data a b c
	expect_usage_error scone fspf addf --nope v.fspf /data a
	expect_usage_error scone fspf encrypt
	assert_grep 'Usage: scone fspf encrypt' "$ERR"
	expect_usage_error scone fspf encrypt a.fspf b.fspf
	expect_usage_error scone fspf encrypt v.fspf --bogus
	expect_usage_error scone fspf show
	expect_usage_error scone fspf show v.fspf --bogus
	expect_usage_error scone fspf verify
	expect_usage_error scone fspf cat v.fspf --key "$(printf '%064d' 0)" --tag "$(printf '%032d' 0)"
	assert_grep 'Usage: scone fspf cat' "$ERR"
	expect_usage_error scone fspf extract v.fspf --key "$(printf '%064d' 0)" --tag "$(printf '%032d' 0)"
	assert_grep 'Usage: scone fspf extract' "$ERR"
	# Without a tag an older copy would be accepted: refused as a usage error.
	expect_usage_error env -u SCONE_FSPF_TAG "$SCONE_BIN" fspf verify exists.fspf --key "$(printf '%064d' 0)"
	assert_grep -- '--tag' "$ERR"
	expect_usage_error env -u SCONE_FSPF_TAG "$SCONE_BIN" fspf cat exists.fspf --key "$(printf '%064d' 0)" /x
	expect_usage_error env -u SCONE_FSPF_TAG "$SCONE_BIN" fspf extract exists.fspf --key "$(printf '%064d' 0)" out
	assert_absent out
}

case_operational_errors() {
	expect_ok scone fspf create v.fspf
	expect_fail_with 'exists' scone fspf create v.fspf
	expect_fail_with 'missing.fspf' scone fspf show missing.fspf
	expect_fail_with 'key' scone fspf verify v.fspf --key 00ff --tag "$(printf '%032d' 0)"
	expect_fail_with 'tag' scone fspf verify v.fspf --key "$(printf '%064d' 0)" --tag xyz
	expect_fail_with 'key' scone fspf verify v.fspf --key-file /nonexistent/key --tag "$(printf '%032d' 0)"
	expect_exit 1 scone fspf addr v.fspf relative/path --encrypted --kernel d
	expect_ok scone fspf addr v.fspf /data --encrypted --kernel enc
	expect_exit 1 scone fspf addf v.fspf /data /nonexistent/dir enc
	expect_exit 1 scone fspf addf v.fspf /elsewhere "$CASE_DIR" enc2
	# Unsealed: verify/cat/extract refuse to trust it.
	expect_exit 1 scone fspf verify v.fspf --key "$(printf '%064d' 0)" --tag "$(printf '%032d' 0)"
}

# ---------------- the full flow ----------------

case_build() {
	build_full
}

case_show() {
	local s
	need_fx full ro
	expect_ok scone fspf show vol.fspf --key "$KEY" --tag "$TAG"
	assert_empty "$ERR" "show stderr"
	assert_grep "$TAG" "$OUT"
	assert_grep 'encrypted +/data +kernel enc' "$OUT"
	assert_grep 'authenticated +/auth +kernel auth' "$OUT"
	assert_grep '/scratch +ephemeral' "$OUT"
	for s in $SIZES; do assert_grep "file +/data/f$s +$s bytes +id [0-9a-f]{32}\$" "$OUT"; done
	assert_grep "file +/data/sub/deeper/nested +12345 bytes" "$OUT"
	assert_grep "dir +/data/sub\$" "$OUT"
	assert_grep "file +/auth/f4097 +4097 bytes" "$OUT"
	# Every id names a host file in the region's directory (32 hex chars).
	for s in $(awk '$1 == "file" && $2 ~ /^\/data\// { print $NF }' "$OUT"); do
		[ -f "enc/$s" ] || fail "no host file enc/$s"
	done
	[ "$(find enc -type f | grep -cvE '/[0-9a-f]{32}$')" -eq 0 ] || fail "host files not named by 32-hex ids"
	[ "$(find enc -type f | wc -l)" -eq 8 ] || fail "expected 8 host files in enc, got $(find enc -type f | wc -l)"
}

case_verify_ok() {
	need_fx full ro
	expect_ok scone fspf verify vol.fspf --key "$KEY" --tag "$TAG"
	assert_grep '^Verified 10 files' "$OUT"
	assert_empty "$ERR" "verify stderr (not a terminal)"
}

case_cat_identical() {
	local s
	need_fx full ro
	for s in $SIZES; do
		expect_ok scone fspf cat vol.fspf --key "$KEY" --tag "$TAG" "/data/f$s"
		assert_same_file "native/f$s" "$OUT"
		assert_empty "$ERR" "cat stderr"
	done
	expect_ok scone fspf cat vol.fspf --key "$KEY" --tag "$TAG" /data/sub/deeper/nested
	assert_same_file native/sub/deeper/nested "$OUT"
	expect_ok scone fspf cat vol.fspf --key "$KEY" --tag "$TAG" /auth/marker.txt
	assert_same_file authnative/marker.txt "$OUT"
}

case_cat_errors() {
	need_fx full ro
	expect_fail_with 'not found|no such' scone fspf cat vol.fspf --key "$KEY" --tag "$TAG" /data/nope
	assert_empty "$OUT" "stdout of cat of a missing file"
	expect_exit 1 scone fspf cat vol.fspf --key "$KEY" --tag "$TAG" /data/sub
}

case_extract_identical() {
	local out=$CASE_DIR/out
	need_fx full ro
	expect_ok scone fspf extract vol.fspf --key "$KEY" --tag "$TAG" "$out"
	assert_empty "$ERR" "extract stderr (not a terminal)"
	assert_grep 'Extracted 10 files' "$OUT"
	diff -r native "$out/data" || fail "extracted /data differs from the originals"
	diff -r authnative "$out/auth" || fail "extracted /auth differs from the originals"
	[ "$(find "$out" -type f | wc -l)" -eq 10 ] || fail "unexpected files extracted: $(find "$out" -type f)"
	# Existing files are not overwritten.
	expect_exit 1 scone fspf extract vol.fspf --key "$KEY" --tag "$TAG" "$out"
	diff -r native "$out/data" || fail "second extract changed the output"
}

case_not_plaintext() {
	local h
	need_fx full ro
	grep -rqa "$MARKER" native || fail "fixture: marker missing from the originals"
	if grep -rla "$MARKER" enc; then fail "plaintext marker found in the encrypted region's directory"; fi
	grep -rqa "$MARKER" auth || fail "authenticated region should keep plaintext, marker not found"
	# The first data block on disk is not the first 4 KiB of the plaintext.
	h=$(host_file vol.fspf /data/f5242880)
	if cmp -s <(dd if="$h" bs=4096 skip="$(data_block 0)" count=1 status=none) <(head -c 4096 native/f5242880); then
		fail "data block 0 of f5242880 is stored in plaintext"
	fi
	# The sealed fspf hides paths and keys.
	if grep -qa 'marker.txt\|deeper/nested\|f4097' vol.fspf; then fail "file names visible in the sealed fspf"; fi
}

# ---------------- keys, tags ----------------

case_encrypt_key_stable() {
	local k0 t0 t1 t2
	need_fx small
	k0=$KEY t0=$TAG
	encrypt_vol vol.fspf --key "$k0"
	assert_eq "$k0" "$KEY" "key after encrypt --key"
	assert_ne "$t0" "$TAG" "tag after re-encrypt"
	t1=$TAG
	expect_ok scone fspf verify vol.fspf --key "$k0" --tag "$t1"
	encrypt_vol vol.fspf --key "$k0"
	assert_eq "$k0" "$KEY" "key after the second encrypt --key"
	assert_ne "$t1" "$TAG" "tag after the second re-encrypt"
	assert_ne "$t0" "$TAG" "tag after the second re-encrypt"
	t2=$TAG
	expect_ok scone fspf verify vol.fspf --key "$k0" --tag "$t2"
	expect_ok scone fspf cat vol.fspf --key "$k0" --tag "$t2" /data/f4097
	assert_same_file native/f4097 "$OUT"
	# Two commits behind the disk: refused.
	expect_fail_with 'ROLLBACK|rollback' scone fspf verify vol.fspf --key "$k0" --tag "$t0"
	# A sealed fspf is not re-encrypted without (or with the wrong) key; nothing changes.
	expect_exit 1 env -u SCONE_FSPF_KEY "$SCONE_BIN" fspf encrypt vol.fspf
	expect_exit 1 scone fspf encrypt vol.fspf --key "$(printf '%064d' 7)"
	assert_empty "$OUT" "stdout of a failed encrypt"
	expect_ok scone fspf verify vol.fspf --key "$k0" --tag "$t2"
}

case_encrypt_given_key_first_time() {
	local k=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	mkdir native
	make_file native/a 5000 given-key
	expect_ok scone fspf create v.fspf
	expect_ok scone fspf addr v.fspf /d --encrypted --kernel enc
	expect_ok scone fspf addf v.fspf /d native enc
	encrypt_vol v.fspf --key "$k"
	assert_eq "$k" "$KEY" "key printed by encrypt --key"
	expect_ok scone fspf cat v.fspf --key "$k" --tag "$TAG" /d/a
	assert_same_file native/a "$OUT"
	expect_fail_with 'wrong key|decrypt|AUTH' scone fspf verify v.fspf --key "$(printf '%064d' 1)" --tag "$TAG"
}

case_key_file() {
	local t0
	need_fx small
	printf '%s\n' "$KEY" >k.txt
	expect_ok scone fspf verify vol.fspf --key-file k.txt --tag "$TAG"
	expect_ok scone fspf cat vol.fspf --key-file k.txt --tag "$TAG" /data/f307200
	assert_same_file native/f307200 "$OUT"
	t0=$TAG
	encrypt_vol vol.fspf --key-file k.txt
	assert_eq "$(cat k.txt)" "$KEY" "key after encrypt --key-file"
	assert_ne "$t0" "$TAG" "tag after encrypt --key-file"
	expect_ok scone fspf show vol.fspf --key-file k.txt --tag "$TAG"
	expect_ok scone fspf extract vol.fspf --key-file k.txt --tag "$TAG" out
	diff -r native out/data || fail "extract with --key-file differs"
	printf '%064d\n' 3 >bad.txt
	expect_fail_with 'wrong key|decrypt|AUTH' scone fspf verify vol.fspf --key-file bad.txt --tag "$TAG"
}

case_env_key_tag() {
	need_fx small
	expect_ok env SCONE_FSPF_KEY="$KEY" SCONE_FSPF_TAG="$TAG" "$SCONE_BIN" fspf verify vol.fspf
	assert_grep '^Verified 5 files' "$OUT"
	expect_ok env SCONE_FSPF_KEY="$KEY" SCONE_FSPF_TAG="$TAG" "$SCONE_BIN" fspf cat vol.fspf /data/f4096
	assert_same_file native/f4096 "$OUT"
	expect_ok env SCONE_FSPF_KEY="$KEY" SCONE_FSPF_TAG="$TAG" "$SCONE_BIN" fspf extract vol.fspf out
	diff -r native out/data || fail "extract with env key/tag differs"
	expect_ok env SCONE_FSPF_KEY="$KEY" SCONE_FSPF_TAG="$TAG" "$SCONE_BIN" fspf show vol.fspf
	# Options take precedence over the environment.
	expect_ok env SCONE_FSPF_KEY="$(printf '%064d' 5)" SCONE_FSPF_TAG="$(printf '%032d' 5)" \
		"$SCONE_BIN" fspf verify vol.fspf --key "$KEY" --tag "$TAG"
	# A wrong tag in the environment is a rollback.
	expect_fail_with 'ROLLBACK|rollback' env SCONE_FSPF_KEY="$KEY" \
		SCONE_FSPF_TAG=0123456789abcdef0123456789abcdef "$SCONE_BIN" fspf verify vol.fspf
	# encrypt with the key from the environment keeps it.
	expect_ok env SCONE_FSPF_KEY="$KEY" "$SCONE_BIN" fspf encrypt vol.fspf
	assert_grep " key: $KEY\$" "$OUT"
}

# ---------------- addf variants ----------------

case_addf_in_place() {
	local n
	mkdir -p data/sub orig
	make_file data/a 4097 inplace-a
	make_file data/empty 0 inplace-0
	make_file data/sub/b 300000 inplace-b
	echo "$MARKER in place" >data/sub/m.txt
	cp -a data/. orig/
	expect_ok scone fspf create vol.fspf
	expect_ok scone fspf addr vol.fspf /data --encrypted --kernel data
	expect_ok scone fspf addf vol.fspf /data data
	assert_grep 'Added 4 files' "$OUT"
	# The plaintext originals are gone; only protected files (32-hex names) remain.
	n=$(find data -type f | grep -cvE '/[0-9a-f]{32}$' || true)
	[ "$n" -eq 0 ] || fail "plaintext originals left after in-place addf: $(find data -type f)"
	[ "$(find data -type f | wc -l)" -eq 4 ] || fail "expected 4 protected files in data/: $(find data -type f)"
	if grep -rqa "$MARKER" data; then fail "plaintext marker still in data/"; fi
	encrypt_vol vol.fspf
	expect_ok scone fspf verify vol.fspf --key "$KEY" --tag "$TAG"
	expect_ok scone fspf extract vol.fspf --key "$KEY" --tag "$TAG" out
	diff -r orig out/data || fail "in-place volume does not extract to the originals"
}

case_addf_separate_dir_keeps_native() {
	mkdir native
	make_file native/a 10000 sep-a
	cp native/a a.orig
	expect_ok scone fspf create vol.fspf
	expect_ok scone fspf addr vol.fspf /data --encrypted --kernel prot
	expect_ok scone fspf addf vol.fspf /data native prot
	assert_same_file a.orig native/a
	[ "$(find prot -type f | wc -l)" -eq 1 ] || fail "expected one protected file"
	# Adding to a sealed volume needs its key; the tag advances.
	encrypt_vol vol.fspf
	make_file native/b 5000 sep-b
	printf '%s\n' "$KEY" >k
	expect_exit 1 env -u SCONE_FSPF_KEY "$SCONE_BIN" fspf addf vol.fspf /data native prot
	assert_grep 'key' "$ERR"
	expect_ok scone fspf addf --key-file k vol.fspf /data native prot
	encrypt_vol vol.fspf --key-file k
	expect_ok scone fspf cat vol.fspf --key-file k --tag "$TAG" /data/b
	assert_same_file native/b "$OUT"
	expect_ok scone fspf verify vol.fspf --key-file k --tag "$TAG"
}

# ---------------- tampering ----------------

# verify must fail with exit 1 naming the error (and the file).
expect_verify_fails() { # PATTERN
	expect_fail_with "$1" scone fspf verify vol.fspf --key "$KEY" --tag "$TAG"
	assert_grep 'FAILED' "$ERR"
}

case_tampered_data_block() {
	local h
	need_fx small
	h=$(host_file vol.fspf /data/f4097)
	flip_byte "$h" $(($(data_block 0) * VOL_BLOCK + 100))
	expect_verify_fails '\(TAMPERED\).*/data/f4097'
}

case_tampered_last_partial_block() {
	local h
	need_fx small
	h=$(host_file vol.fspf /data/f4097)
	flip_byte "$h" $(($(data_block 1) * VOL_BLOCK))
	expect_verify_fails '\(TAMPERED\).*/data/f4097'
}

case_tampered_second_group() {
	local h
	need_fx small
	h=$(host_file vol.fspf /data/f307200)
	flip_byte "$h" $(($(data_block 70) * VOL_BLOCK + 4095))
	expect_verify_fails '\(TAMPERED\).*/data/f307200'
}

case_tampered_node() {
	local h
	need_fx small
	h=$(host_file vol.fspf /data/f307200)
	flip_byte "$h" $(($(node_block 1) * VOL_BLOCK + 200))
	expect_verify_fails '\(TAMPERED\).*/data/f307200'
}

case_misplaced() {
	local h
	need_fx small
	h=$(host_file vol.fspf /data/f307200)
	copy_block "$h" "$(data_block 5)" "$(data_block 2)"
	expect_verify_fails '\(MISPLACED\).*/data/f307200'
}

case_truncated() {
	local h
	need_fx small
	h=$(host_file vol.fspf /data/f307200)
	truncate -s $(((1 + 130) * VOL_BLOCK)) "$h" # drop the second group
	expect_verify_fails '\(TRUNCATED\).*/data/f307200'
}

case_extended() {
	local h
	need_fx small
	h=$(host_file vol.fspf /data/f4097)
	head -c 4096 /dev/zero >>"$h"
	expect_verify_fails '\(EXTENDED\).*/data/f4097'
}

case_swapped() {
	local a b
	need_fx small
	a=$(host_file vol.fspf /data/f4096)
	b=$(host_file vol.fspf /data/f4097)
	mv "$a" tmp && mv "$b" "$a" && mv tmp "$b"
	expect_verify_fails '\(SWAPPED\).*/data/f409[67]'
}

case_missing() {
	local h
	need_fx small
	h=$(host_file vol.fspf /data/f1)
	rm "$h"
	expect_verify_fails '\(MISSING\).*/data/f1'
}

case_unknown_file_junk() {
	need_fx small
	echo "hello" >enc/notes.txt
	expect_verify_fails '\(UNKNOWN_FILE\).*notes.txt'
}

case_unknown_file_copy() {
	local h
	need_fx small
	h=$(host_file vol.fspf /data/f4097)
	cp "$h" enc/0123456789abcdef0123456789abcdef
	expect_verify_fails '\(UNKNOWN_FILE\).*0123456789abcdef0123456789abcdef'
}

case_rollback() {
	local t1
	need_fx small
	t1=$TAG
	cp -a "$PWD" "$CASE_DIR/old"
	make_file native/new 9000 rollback-new
	printf '%s\n' "$KEY" >k
	expect_ok scone fspf addf --key-file k vol.fspf /data native enc
	encrypt_vol vol.fspf --key-file k
	assert_ne "$t1" "$TAG" "tag after a change"
	expect_ok scone fspf verify vol.fspf --key "$KEY" --tag "$TAG"
	# Restore the older copy of the whole volume (fspf and host files).
	cd "$CASE_DIR" && rm -rf vol && mv old vol && cd vol
	expect_verify_fails 'ROLLBACK'
	expect_fail_with 'ROLLBACK' scone fspf cat vol.fspf --key "$KEY" --tag "$TAG" /data/f1
	# The older copy itself is intact under its own tag.
	expect_ok scone fspf verify vol.fspf --key "$KEY" --tag "$t1"
}

case_wrong_key() {
	need_fx small
	expect_fail_with 'wrong key|decrypt|AUTH' scone fspf verify vol.fspf --key "$(printf '%064d' 9)" --tag "$TAG"
	expect_fail_with 'wrong key|decrypt|AUTH' scone fspf cat vol.fspf --key "$(printf '%064d' 9)" --tag "$TAG" /data/f1
	assert_empty "$OUT" "stdout of cat with a wrong key"
}

case_wrong_tag() {
	need_fx small
	expect_fail_with 'ROLLBACK' scone fspf verify vol.fspf --key "$KEY" --tag 0123456789abcdef0123456789abcdef
}

case_zero_tag() {
	need_fx small
	# The unsealed state before the first encryption has no tag; all zeros must not pass as one.
	expect_fail_with 'ROLLBACK' scone fspf verify vol.fspf --key "$KEY" --tag 00000000000000000000000000000000
}

case_tampered_fspf() {
	need_fx small
	flip_byte vol.fspf $(($(stat -c %s vol.fspf) / 2))
	expect_fail_with 'wrong key|decrypt|modified|AUTH|TAMPERED' scone fspf verify vol.fspf --key "$KEY" --tag "$TAG"
}

case_cat_tampered_prints_nothing() {
	local h
	need_fx small
	h=$(host_file vol.fspf /data/f307200)
	flip_byte "$h" $(($(data_block 70) * VOL_BLOCK + 17)) # near the end
	expect_fail_with 'TAMPERED' scone fspf cat vol.fspf --key "$KEY" --tag "$TAG" /data/f307200
	assert_empty "$OUT" "stdout of cat of a tampered file"
	# The untouched files still read.
	expect_ok scone fspf cat vol.fspf --key "$KEY" --tag "$TAG" /data/f4097
	assert_same_file native/f4097 "$OUT"
}

case_cat_tampered_late_in_big_file() {
	local h
	need_fx full
	h=$(host_file vol.fspf /data/f5242880)
	flip_byte "$h" $(($(data_block 1200) * VOL_BLOCK + 9)) # ~4.7 MB into the file
	expect_fail_with 'TAMPERED' scone fspf cat vol.fspf --key "$KEY" --tag "$TAG" /data/f5242880
	assert_empty "$OUT" "stdout of cat of a 5 MB file tampered near its end"
}

case_extract_skips_tampered() {
	local h
	need_fx full
	h=$(host_file vol.fspf /data/f5242880)
	flip_byte "$h" $(($(data_block 1279) * VOL_BLOCK + 1))
	expect_fail_with 'TAMPERED' scone fspf extract vol.fspf --key "$KEY" --tag "$TAG" "$CASE_DIR/out"
	assert_absent "$CASE_DIR/out/data/f5242880"
	if find "$CASE_DIR/out" -name '*f5242880*' | grep -q .; then fail "partial file left behind"; fi
	assert_same_file native/f4097 "$CASE_DIR/out/data/f4097"
}

# ---------------- progress bar ----------------

case_progress_silent() {
	need_fx full ro
	expect_ok scone fspf verify vol.fspf --key "$KEY" --tag "$TAG"
	assert_empty "$ERR" "verify stderr"
	expect_ok scone fspf extract vol.fspf --key "$KEY" --tag "$TAG" "$CASE_DIR/out"
	assert_empty "$ERR" "extract stderr"
	expect_ok scone fspf cat vol.fspf --key "$KEY" --tag "$TAG" /data/f5242880
	assert_empty "$ERR" "cat stderr"
	cd "$CASE_DIR"
	mkdir native && make_file native/x 2000000 silent
	expect_ok scone fspf create v.fspf
	expect_ok scone fspf addr v.fspf /d --encrypted --kernel e
	expect_ok scone fspf addf v.fspf /d native e
	assert_empty "$ERR" "addf stderr"
}

case_progress_tty() {
	local cmd
	command -v script >/dev/null 2>&1 || t_skip_case "script(1) not installed"
	script -qfc true /dev/null >/dev/null 2>&1 </dev/null || t_skip_case "script(1) cannot allocate a terminal"
	need_fx full ro
	cmd=$(printf '%q ' "$SCONE_BIN" fspf verify vol.fspf --key "$KEY" --tag "$TAG")
	run_cmd script -qefc "$cmd" /dev/null
	[ "$RC" -eq 0 ] || { show_output; fail "verify on a terminal exited $RC"; }
	assert_grep '\[#+ *\] +[0-9]+%' "$OUT"
	assert_grep '100%' "$OUT"
	assert_grep 'Verified 10 files' "$OUT"
	cd "$CASE_DIR"
	mkdir native && make_file native/x 3000000 tty
	expect_ok scone fspf create v.fspf
	expect_ok scone fspf addr v.fspf /d --encrypted --kernel e
	cmd=$(printf '%q ' "$SCONE_BIN" fspf addf v.fspf /d native e)
	run_cmd script -qefc "$cmd" /dev/null
	[ "$RC" -eq 0 ] || { show_output; fail "addf on a terminal exited $RC"; }
	assert_grep '\[#+ *\] +100%' "$OUT"
}

# ---------------- run ----------------

run_case "fspf: every --help exits 0" case_help
run_case "fspf: usage errors exit 2 with a message" case_usage_errors
run_case "fspf: operational errors exit 1" case_operational_errors
run_case "fspf: build volume (create, addr, addf, encrypt; silent stderr)" case_build
run_case "fspf: small fixture" build_small
run_case "fspf: show lists regions and files" case_show
run_case "fspf: verify of an intact volume" case_verify_ok
run_case "fspf: cat is byte-identical (sizes $SIZES)" case_cat_identical
run_case "fspf: cat of a missing path or a directory fails with exit 1" case_cat_errors
run_case "fspf: extract is byte-identical" case_extract_identical
run_case "fspf: encrypted region holds no plaintext, authenticated does" case_not_plaintext
run_case "fspf: encrypt --key keeps the key, new tag, re-encrypt works" case_encrypt_key_stable
run_case "fspf: encrypt --key on a new volume" case_encrypt_given_key_first_time
run_case "fspf: --key-file" case_key_file
run_case "fspf: SCONE_FSPF_KEY / SCONE_FSPF_TAG" case_env_key_tag
run_case "fspf: addf in place removes plaintext originals" case_addf_in_place
run_case "fspf: addf to PROTECTED_DIR keeps the originals; add to a sealed volume" case_addf_separate_dir_keeps_native
run_case "fspf: TAMPERED data block" case_tampered_data_block
run_case "fspf: TAMPERED last partial block" case_tampered_last_partial_block
run_case "fspf: TAMPERED data block in the second group" case_tampered_second_group
run_case "fspf: TAMPERED integrity node" case_tampered_node
run_case "fspf: MISPLACED data block" case_misplaced
run_case "fspf: TRUNCATED host file" case_truncated
run_case "fspf: EXTENDED host file" case_extended
run_case "fspf: SWAPPED host files" case_swapped
run_case "fspf: MISSING host file" case_missing
run_case "fspf: UNKNOWN_FILE (junk added)" case_unknown_file_junk
run_case "fspf: UNKNOWN_FILE (copy of a protected file)" case_unknown_file_copy
run_case "fspf: ROLLBACK to an older copy of the volume" case_rollback
run_case "fspf: wrong key fails" case_wrong_key
run_case "fspf: wrong tag is ROLLBACK" case_wrong_tag
run_case "fspf: an all-zero tag is refused" case_zero_tag
run_case "fspf: tampered fspf fails" case_tampered_fspf
run_case "fspf: cat of a tampered file prints nothing" case_cat_tampered_prints_nothing
run_case "fspf: cat of a 5 MB file tampered near its end prints nothing" case_cat_tampered_late_in_big_file
run_case "fspf: extract leaves no file that failed verification" case_extract_skips_tampered
run_case "fspf: progress silent when stderr is not a terminal" case_progress_silent
run_case "fspf: progress bar on a terminal" case_progress_tty
t_done
