#!/usr/bin/env bash
# eventkit's whole test suite: builds with -Werror, installs, and runs the
# regress, isolation and TAP suites against temporary PostgreSQL 15 instances.
# Run as root on Debian bookworm: it installs what it needs with apt-get.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
export LC_ALL=C.UTF-8 LANG=C.UTF-8
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" != 0 ]; then
	echo "run_tests.sh: run as root (it installs packages and the extension)" >&2
	exit 2
fi

pkgs=(postgresql-15 postgresql-server-dev-15 postgresql-client-15 libipc-run-perl
      postgresql-15-hll postgresql-15-tdigest perl make gcc libc6-dev
      libmicrohttpd-dev zlib1g-dev curl librdkafka-dev kafkacat
      libidn2-dev libicu-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# the HTTP intake's SDK tests (test/http): Debian's node unless one is there
if ! command -v node >/dev/null; then
	missing+=(nodejs npm)
elif ! command -v npm >/dev/null; then
	missing+=(npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing ${missing[*]}"
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# EK_PG_CONFIG points at another PostgreSQL 15 installation (e.g. a private
# copy, so that parallel work does not share one $libdir).
PG_CONFIG=${EK_PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[ -x "$PG_CONFIG" ] || PG_CONFIG=$(command -v pg_config)
export PATH=$("$PG_CONFIG" --bindir):$PATH

# PostgreSQL refuses to run as root: test in a copy owned by postgres.
work=$(mktemp -d /tmp/eventkit-test.XXXXXX)
tar -C "$here" --exclude=.git --exclude='tmp_check*' --exclude=results --exclude=node_modules -cf - . | tar -C "$work" -xf -
# the SDKs that test/t/031_http_sdk.pl runs, at the versions package-lock.json pins
echo "== npm ci (test/http)"
(cd "$work/test/http" && npm ci --omit=optional --no-audit --no-fund --loglevel=error)
chown -R postgres "$work"
# 031 fails (instead of skipping) without node and the SDKs
export EK_HTTP_SDK_REQUIRED=1
as_pg() { runuser -u postgres -- "$@"; }

# The production build must compile cleanly too; the tests run against a
# test build (EK_TESTING=1), which adds the test hooks eventkit's TAP tests
# use (the job clock, the JSON parser's cross-check; src/util/guc.h) and
# nothing else.
echo "== build (-Werror): production, then test build"
as_pg make -C "$work" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null
as_pg make -C "$work" -s PG_CONFIG="$PG_CONFIG"
# the production library has no test hook: no setting moves its clock
if grep -aq 'eventkit.testing_' "$work/eventkit.so"; then
	echo "run_tests.sh: the production build defines a test hook (eventkit.testing_*)" >&2
	exit 1
fi
as_pg make -C "$work" -s PG_CONFIG="$PG_CONFIG" clean >/dev/null
as_pg make -C "$work" -s PG_CONFIG="$PG_CONFIG" EK_TESTING=1
make -C "$work" -s PG_CONFIG="$PG_CONFIG" EK_TESTING=1 install >/dev/null

log="$work/installcheck.log"
status=0
if ! as_pg make -C "$work" PG_CONFIG="$PG_CONFIG" EK_TESTING=1 installcheck 2>&1 | tee "$log"; then
	status=1
fi

if [ $status -ne 0 ]; then
	echo "== FAILED; diffs and logs follow"
	for f in "$work/regression.diffs" "$work/test/isolation/output_iso/regression.diffs"; do
		[ -s "$f" ] && { echo "---- $f"; cat "$f"; }
	done
	for f in "$work"/tmp_check/log/* "$work"/tmp_check_iso/log/*; do
		[ -f "$f" ] && { echo "---- $f"; tail -n 200 "$f"; }
	done
fi

# One closing line for all suites.
passed=$(grep -cE '^(ok [0-9]+ +[-+] |test .* \.\.\. ok| +[a-z_0-9]+ +\.\.\. ok)' "$log" || true)
regress_failed=$(grep -cE '(\.\.\. FAILED|^not ok [0-9]+ +[-+] )' "$log" || true)
tap_tests=$(awk 'match($0, /Tests=[0-9]+/) {s += substr($0, RSTART + 6, RLENGTH - 6)} END {print s + 0}' "$log")
tap_failed=$(awk '/^Failed [0-9]+\/[0-9]+ subtests/ {split($2, a, "/"); s += a[1]} END {print s + 0}' "$log")
if [ $status -ne 0 ] && [ $((regress_failed + tap_failed)) -eq 0 ]; then regress_failed=1; fi
echo "eventkit: $((passed + tap_tests - tap_failed)) passed, $((regress_failed + tap_failed)) failed"
if [ $status -eq 0 ]; then rm -rf "$work"; fi
exit $status
