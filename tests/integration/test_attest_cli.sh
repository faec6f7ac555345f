#!/usr/bin/env bash
# test_attest_cli.sh - `scone attest verify` and `scone attest collateral
# import|check` end to end on the recorded vectors of
# ../shared/testdata/attestation: the claims printed as JSON (exit 0), the
# refusals with the check they name (exit 2: a flipped byte, a zero-padded
# quote without --padded, stale or missing collateral, the wrong type,
# another chip's VCEK), usage errors (exit 1), --help, stdin, and what the
# collateral directory holds after an import.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
t_init

VEC=${SCONE_ATTEST_VECTORS:-$PWD/../shared/testdata/attestation}
if [ ! -d "$VEC" ]; then
	echo "not ok - setup: the attestation vectors are not at $VEC"
	exit 1
fi
SGX=$VEC/01-sgx-v3-phala/sgx_quote
TDX4=$VEC/03-tdx-v4-phala/tdx_quote
TDX5=$VEC/07-tdx-v5-gotdx/quote_v5_sample.dat
SNP9=$VEC/09-snp-v2-gosev-milan/attestation.bin
SNP11=$VEC/11-snp-v2-trustee-milan/test-report.bin
AT=2025-07-01T00:00:00Z
COLL=$T_TMP/collateral

# One collateral directory for every vector: both Phala bundles, vector 07's TCB info, both VCEKs.
setup_collateral() {
	"$SCONE_BIN" attest collateral import --dir "$COLL" "$VEC/01-sgx-v3-phala/sgx_quote_collateral.json" \
		"$VEC/03-tdx-v4-phala/tdx_quote_collateral.json" "$VEC/07-tdx-v5-gotdx/sample_tcbinfo_response_v5" \
		"$VEC/09-snp-v2-gosev-milan/vcek.der" "$VEC/11-snp-v2-trustee-milan/test-vcek.der" >"$T_TMP/import.out" 2>&1
}

case_help() {
	expect_ok scone attest --help
	assert_grep '^  verify ' "$OUT"
	assert_grep '^  collateral ' "$OUT"
	expect_ok scone attest verify --help
	assert_grep -- '--type T +sgx, tdx or snp' "$OUT"
	assert_grep 'Exit status: 0 authentic, 2 not authentic' "$OUT"
	expect_ok scone attest collateral import --help
	assert_grep 'TCB-Info-Issuer-Chain' "$OUT"
	expect_ok scone attest collateral check --help
	expect_ok scone --help
	assert_grep '^  attest ' "$OUT"
}

case_usage_errors() {
	expect_exit_with 1 'expected one evidence FILE' scone attest verify --type sgx
	expect_exit_with 1 '--type is required' scone attest verify "$SGX"
	expect_exit_with 1 '--type las: expected sgx, tdx or snp' scone attest verify "$SGX" --type las
	expect_exit_with 1 '--type none' scone attest verify "$SGX" --type none
	expect_exit_with 1 'not an RFC 3339 time' scone attest verify "$SGX" --type sgx --at yesterday
	expect_exit_with 1 'cannot open' scone attest verify "$CASE_DIR/nonexistent" --type sgx
	expect_exit_with 1 'unknown command' scone attest frobnicate
	expect_exit_with 1 'Usage' scone attest
	expect_exit_with 1 'expected --dir DIR' scone attest collateral import "$SGX"
	expect_exit_with 1 'expected one DIR' scone attest collateral check
}

case_import() {
	assert_grep '^intel/tcb-signing-chain.pem: TCB signing chain \("Intel SGX TCB Signing"' "$T_TMP/import.out"
	assert_grep '^intel/sgx-tcbinfo-00a067110000.json: SGX TCB info for FMSPC 00a067110000, issued 2025-06-19T10:56:11Z' \
		"$T_TMP/import.out"
	assert_grep '^intel/tdx-tcbinfo-b0c06f000000.json: TDX TCB info' "$T_TMP/import.out"
	assert_grep '^intel/tdx-tcbinfo-90c06f000000.json: TDX TCB info for FMSPC 90c06f000000, issued 2026-02-01' \
		"$T_TMP/import.out"
	assert_grep '^intel/pckcrl-processor.der: CRL of "Intel SGX PCK Processor CA"' "$T_TMP/import.out"
	assert_grep '^intel/pckcrl-platform.der: CRL of "Intel SGX PCK Platform CA"' "$T_TMP/import.out"
	assert_grep '^amd/vcek-3ac3fe21[0-9a-f]{120}-4405000000000002.der: VCEK \(Milan-B0\)' "$T_TMP/import.out"
	for f in tcb-signing-chain.pem sgx-qe-identity.json tdx-qe-identity.json rootca-crl.der; do
		[ -f "$COLL/intel/$f" ] || fail "$f not imported"
	done
	expect_ok scone attest collateral check "$COLL" --at "$AT"
	assert_grep '^intel/sgx-tcbinfo-00a067110000.json: SGX TCB info, FMSPC 00a067110000, .*: current$' "$OUT"
	assert_grep '^intel/tdx-tcbinfo-90c06f000000.json: .*: NOT YET VALID$' "$OUT"
	assert_grep '^amd/vcek-c38427a3.*: VCEK, valid 2023-01-24T.*: current$' "$OUT"
	expect_ok scone attest collateral check "$COLL" --at 2025-08-01T00:00:00Z
	assert_grep 'intel/sgx-qe-identity.json: QE identity, .*: STALE$' "$OUT"
	# the same files imported again replace themselves
	expect_ok scone attest collateral import --dir "$COLL" "$VEC/01-sgx-v3-phala/sgx_quote_collateral.json"
	# what is not collateral is refused, and nothing is written
	head -c 300 "$SGX" >junk.bin
	expect_exit_with 1 'junk.bin' scone attest collateral import --dir "$CASE_DIR/new" junk.bin
	expect_exit_with 1 'is not collateral' scone attest collateral import --dir "$CASE_DIR/new" \
		"$VEC/roots/intel_tcb_signing_chain_2025.pem" "$VEC/roots/amd_ask_ark_milan.pem"
	# a TCB info whose signature does not verify
	sed 's/"pcesvn":13/"pcesvn":12/' "$COLL/intel/sgx-tcbinfo-00a067110000.json" >tampered.json
	expect_exit_with 1 'tcbInfo signature: the signature does not verify' \
		scone attest collateral import --dir "$CASE_DIR/new" tampered.json
	[ ! -e "$CASE_DIR/new/intel/sgx-tcbinfo-00a067110000.json" ] || fail "a tampered TCB info was imported"
}

case_sgx() {
	expect_ok scone attest verify "$SGX" --type sgx --collateral "$COLL" --at "$AT"
	assert_grep '"type":"sgx","mrenclave":"33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"' "$OUT"
	assert_grep '"mrsigner":"815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"' "$OUT"
	assert_grep '"fmspc":"00a067110000"' "$OUT"
	assert_grep '"report_data":"48656c6c6f2c20776f726c6421000000' "$OUT"
	assert_grep '"debug":false' "$OUT"
	assert_grep '"tcb_status":"ConfigurationAndSWHardeningNeeded","advisories":\["INTEL-SA-00289","INTEL-SA-00615"\]' "$OUT"
	assert_grep '"isvprodid":"0","isvsvn":"0"' "$OUT"
	assert_empty "$ERR"
	# from stdin
	run_cmd bash -c "\"$SCONE_BIN\" attest verify - --type sgx --collateral \"$COLL\" --at $AT <\"$SGX\""
	assert_eq 0 "$RC" "exit status from stdin"
	assert_grep '"mrenclave":"33d8736d' "$OUT"
}

case_sgx_refusals() {
	cp "$SGX" flipped
	flip_byte flipped 100 # inside MRENCLAVE: signed by the attestation key
	expect_exit_with 2 'NOT authentic: quote signature \(by the attestation key\): the signature does not verify \(AUTH\)' \
		scone attest verify flipped --type sgx --collateral "$COLL" --at "$AT"
	assert_empty "$OUT"
	cp "$SGX" flipped
	flip_byte flipped 700 # inside the QE report: signed by the PCK key
	expect_exit_with 2 'QE report signature' scone attest verify flipped --type sgx --collateral "$COLL" --at "$AT"
	head -c 4000 "$SGX" >short
	expect_exit_with 2 'truncated' scone attest verify short --type sgx --collateral "$COLL" --at "$AT"
	{ cat "$SGX"; printf 'x'; } >long
	expect_exit_with 2 '1 bytes after the end of the signature data' \
		scone attest verify long --type sgx --collateral "$COLL" --at "$AT" --padded
	expect_exit_with 2 'PCK CRL: valid .* not at 2025-08-01T00:00:00Z: fetch https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl\?ca=processor' \
		scone attest verify "$SGX" --type sgx --collateral "$COLL" --at 2025-08-01T00:00:00Z
	expect_exit_with 2 'sgx-qe-identity.json .* is stale at 2025-07-19T10:05:00Z: fetch https://api.trustedservices.intel.com/sgx/certification/v4/qe/identity' \
		scone attest verify "$SGX" --type sgx --collateral "$COLL" --at 2025-07-19T10:05:00Z
	expect_exit_with 2 'no collateral' scone attest verify "$SGX" --type sgx --at "$AT"
	mkdir -p empty
	expect_exit_with 2 'fetch https://certificates.trustedservices.intel.com/IntelSGXRootCA.der' \
		scone attest verify "$SGX" --type sgx --collateral empty --at "$AT"
	expect_exit_with 2 'an SGX quote, not a TDX quote' scone attest verify "$SGX" --type tdx --collateral "$COLL" --at "$AT"
}

case_tdx() {
	expect_exit_with 2 '70 bytes after the end of the signature data at byte 4936 \(zero padding is accepted only when allowed\)' \
		scone attest verify "$TDX4" --type tdx --collateral "$COLL" --at "$AT"
	expect_ok scone attest verify "$TDX4" --type tdx --collateral "$COLL" --at "$AT" --padded
	assert_grep '"type":"tdx","mrtd":"91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"' "$OUT"
	assert_grep '"rtmr0":"44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0"' "$OUT"
	assert_grep '"rtmr3":"0{96}"' "$OUT"
	assert_grep '"tcb_status":"UpToDate","advisories":\[\]' "$OUT"
	assert_grep '"tdx_module":"TDX_01"' "$OUT"
	cp "$TDX4" flipped
	flip_byte flipped 200 # MRTD
	expect_exit_with 2 'quote signature' scone attest verify flipped --type tdx --collateral "$COLL" --at "$AT" --padded
	# version 5, body type 3: chain and signatures hold; the 2025 CRLs are stale in 2026
	expect_exit_with 2 'PCK CRL: valid 2025-06-19T10:00:35Z..2025-07-19T10:00:35Z, not at 2026-02-03T01:00:00Z: fetch' \
		scone attest verify "$TDX5" --type tdx --collateral "$COLL" --at 2026-02-03T01:00:00Z --padded
	cp "$TDX5" flipped
	flip_byte flipped 690 # MR_SERVICETD, signed in v5 only
	expect_exit_with 2 'quote signature' scone attest verify flipped --type tdx --collateral "$COLL" \
		--at 2026-02-03T01:00:00Z --padded
}

case_snp() {
	expect_ok scone attest verify "$SNP9" --type snp --collateral "$COLL" --at 2025-01-01T00:00:00Z
	assert_grep '"type":"snp","measurement":"b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"' "$OUT"
	assert_grep '"chip_id":"3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d"' "$OUT"
	assert_grep '"debug":true' "$OUT"
	assert_grep '"host_data":"0{64}"' "$OUT"
	assert_grep '"reported_tcb":"4405000000000002"' "$OUT"
	expect_ok scone attest verify "$SNP11" --type snp --collateral "$COLL" --at 2025-01-01T00:00:00Z
	assert_grep '"measurement":"a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"' "$OUT"
	assert_grep '"debug":false' "$OUT"
	# trustee's variants: report byte 42 changed; a VCEK with its TBS edited
	cp "$SNP11" flipped
	flip_byte flipped 42
	expect_exit_with 2 'SNP report signature \(by the VCEK\): the signature does not verify' \
		scone attest verify flipped --type snp --collateral "$COLL" --at 2025-01-01T00:00:00Z
	mkdir -p bad
	expect_exit_with 1 'VCEK chain' scone attest collateral import --dir bad \
		"$VEC/11-snp-v2-trustee-milan/test-vcek-invalid-legacy.der"
	# no VCEK: what to fetch from AMD's KDS
	expect_exit_with 2 'fetch https://kdsintf.amd.com/vcek/v1/\{Milan\|Genoa\}/c38427a3.*\?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115' \
		scone attest verify "$SNP11" --type snp --at 2025-01-01T00:00:00Z
	{ cat "$SNP11"; printf '\1'; } >long
	expect_exit_with 2 'not a certificate table' scone attest verify long --type snp --collateral "$COLL"
	expect_exit_with 2 'SNP evidence: 1183 bytes, shorter than a report' \
		scone attest verify <(head -c 1183 "$SNP11") --type snp --collateral "$COLL"
}

setup_collateral || { cat "$T_TMP/import.out"; echo "not ok - setup: collateral import"; exit 1; }
run_case "help" case_help
run_case "usage errors exit 1" case_usage_errors
run_case "collateral import and check" case_import
run_case "sgx v3: claims as JSON" case_sgx
run_case "sgx v3: refusals name the check (exit 2)" case_sgx_refusals
run_case "tdx v4 and v5" case_tdx
run_case "snp v2: claims and refusals" case_snp
t_done
