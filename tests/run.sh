#!/bin/bash
# Copyright (c) 2026 The Canopy Authors.  ISC licence: see LICENSE.
#
# tests/run.sh [unit|fuzz|integration|all] [NAME...]
# tests/run.sh NAME...
#
# Runs the tests of an already built tree (make check builds build/,
# build/asan/ and build/fuzz/fuzz/ first):
#   unit         every build/tests/t_* and build/asan/tests/t_*
#   fuzz         every build/fuzz/fuzz/fuzz_* over tests/fuzz/corpus/fuzz_*/
#                (replay only)
#   integration  every tests/integration/t_*.sh, each in a fresh directory,
#                against the binaries in $CANOPY_BUILD (default build/asan)
# NAMEs (e.g. t_e2e) restrict the run to those tests.
#
# Prints "PASS name (Ns)", "FAIL name (Ns)" (with the tail of its log) or
# "SKIP name (reason)" per test, then one summary line
# "N passed, M failed[, K skipped]".  Exits 0 only if nothing failed.
# Full logs: build/test-logs/.
#
# Environment: CANOPY_BUILD, TEST_TIMEOUT (integration, default 300 s),
# UNIT_TIMEOUT (default 300 s), FUZZ_TIMEOUT (per target, default 120 s).

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2

what=${1:-all}
case $what in
unit|fuzz|integration|all) [ $# -gt 0 ] && shift ;;
t_*|fuzz_*) what=all ;;		# just names: look for them everywhere
*)
	echo "usage: tests/run.sh [unit|fuzz|integration|all] [NAME...]" >&2
	exit 2
	;;
esac
ONLY=" $* "

CANOPY_BUILD=${CANOPY_BUILD:-$ROOT/build/asan}
case $CANOPY_BUILD in /*) ;; *) CANOPY_BUILD=$ROOT/$CANOPY_BUILD ;; esac
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-120}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export CANOPY_ROOT=$ROOT CANOPY_BUILD PG_BIN
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

LOGDIR=$ROOT/build/test-logs
rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"

# Short, so PostgreSQL's socket paths stay far below 107 bytes.
BASE=$(mktemp -d /tmp/cnp.XXXXXX) || exit 2
chmod 755 "$BASE"

passed=0
failed=0
skipped=0
CUR_PID=""

cleanup() {
	set +e
	if [ -n "$CUR_PID" ]; then
		kill -TERM "$CUR_PID" 2>/dev/null
		wait "$CUR_PID" 2>/dev/null
	fi
	rm -rf "$BASE"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

selected() {
	[ "$ONLY" = "  " ] && return 0
	case $ONLY in *" $1 "*) return 0 ;; esac
	return 1
}

pass() {
	passed=$((passed + 1))
	echo "PASS $1 ($2s)"
}

skip() {
	skipped=$((skipped + 1))
	echo "SKIP $1 ($2)"
}

# failed NAME SECONDS LOG [NOTE]
failed() {
	failed=$((failed + 1))
	echo "FAIL $1 ($2s)${4:+ $4}"
	if [ -s "$3" ]; then
		tail -n 40 "$3" | sed 's/^/    | /'
		echo "    (full log: ${3#"$ROOT"/})"
	fi
}

# run LOG TIMEOUT CMD...: runs CMD with a time limit, output to LOG; sets
# RC and SECS.  In the background so that a signal to us can stop it.
run() {
	local log=$1 t=$2 start
	shift 2
	start=$(date +%s)
	timeout -k 15 "$t" "$@" >"$log" 2>&1 </dev/null &
	CUR_PID=$!
	RC=0
	wait "$CUR_PID" || RC=$?
	CUR_PID=""
	SECS=$(($(date +%s) - start))
}

# timeout(1) says 124 when it had to stop the command.
timed_out_note() {
	[ "$RC" = 124 ] || [ "$RC" = 137 ] && echo "(timed out after $1 s)"
}

# ---------------------------------------------------------------- unit

run_unit() {
	local src n dir label bin log
	for dir in build build/asan; do
		label=unit
		[ "$dir" = build/asan ] && label=asan
		# 'make unit' builds no sanitizer variant: say so once.
		if [ "$label" = asan ] && [ ! -d "$dir/tests" ] &&
		    [ "$ONLY" = "  " ]; then
			skip asan "build/asan not built: make asan"
			continue
		fi
		for src in tests/unit/t_*.c; do
			[ -f "$src" ] || continue
			n=$(basename "$src" .c)
			selected "$n" || continue
			bin=$dir/tests/$n
			log=$LOGDIR/$label-$n.log
			if [ ! -x "$bin" ]; then
				failed "$label/$n" 0 /dev/null "(not built: $bin)"
				continue
			fi
			run "$log" "$UNIT_TIMEOUT" "$bin"
			# The program's own verdict line must be there too: a
			# test that returns 0 early has not passed.
			if [ "$RC" = 0 ] &&
			    grep -Eq ': [0-9]+ passed, 0 failed$' "$log"; then
				pass "$label/$n" "$SECS"
			else
				failed "$label/$n" "$SECS" "$log" \
				    "$(timed_out_note "$UNIT_TIMEOUT")"
			fi
		done
	done
}

# ---------------------------------------------------------------- fuzz

run_fuzz() {
	local src n bin corpus log
	if [ ! -d build/fuzz/fuzz ] && [ "$ONLY" = "  " ]; then
		skip fuzz "build/fuzz not built: make fuzz-build"
		return 0
	fi
	for src in tests/fuzz/fuzz_*.c; do
		[ -f "$src" ] || continue
		n=$(basename "$src" .c)
		selected "$n" || continue
		bin=build/fuzz/fuzz/$n
		corpus=tests/fuzz/corpus/$n
		log=$LOGDIR/fuzz-$n.log
		if [ ! -x "$bin" ]; then
			failed "fuzz/$n" 0 /dev/null "(not built: $bin; make fuzz-build)"
			continue
		fi
		if [ -z "$(find "$corpus" -type f 2>/dev/null | head -n 1)" ]; then
			skip "fuzz/$n" "no corpus in $corpus"
			continue
		fi
		# Given files rather than a directory, libFuzzer runs each
		# once and does not fuzz.
		run "$log" "$FUZZ_TIMEOUT" sh -c '
		    find "$2" -type f -print0 |
		    xargs -0 -r -n 1000 "$1" -timeout=25 -rss_limit_mb=2048' \
		    sh "$bin" "$corpus"
		if [ "$RC" = 0 ]; then
			pass "fuzz/$n" "$SECS"
		else
			failed "fuzz/$n" "$SECS" "$log" \
			    "$(timed_out_note "$FUZZ_TIMEOUT")"
		fi
	done
}

# ---------------------------------------------------------- integration

PG_TEMPLATE_DONE=0

# One initdb per run; every test copies the result.
pg_template() {
	[ "$PG_TEMPLATE_DONE" = 1 ] && return 0
	PG_TEMPLATE_DONE=1
	[ "$(id -u)" = 0 ] || return 0
	mkdir -p "$BASE/pgtemplate"
	chown postgres "$BASE/pgtemplate"
	if (cd / && runuser -u postgres -- "$PG_BIN/initdb" \
	    -D "$BASE/pgtemplate" -U postgres -A trust -E UTF8 \
	    --locale=C.UTF-8 --no-sync) >"$LOGDIR/initdb.log" 2>&1; then
		export CANOPY_PG_TEMPLATE=$BASE/pgtemplate
	else
		echo "warning: initdb of the template failed (each test" \
		    "will try its own): see build/test-logs/initdb.log" >&2
	fi
}

# Whatever a test left running: its processes carry CANOPY_TEST_DIR=dir
# in their environment (checked, so that a reused PID is left alone).
reap_strays() {
	local dir=$1 pid
	[ -f "$dir/.pids" ] || return 0
	for pid in $(cat "$dir/.pids"); do
		[ -r "/proc/$pid/environ" ] || continue
		if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null |
		    grep -qxF "CANOPY_TEST_DIR=$dir"; then
			kill -KILL "$pid" 2>/dev/null
		fi
	done
	if [ -f "$dir/pg/postmaster.pid" ]; then
		(cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/pg" \
		    -m immediate -w -t 20 stop) >/dev/null 2>&1
	fi
}

run_integration() {
	local t n dir log f
	for t in tests/integration/t_*.sh; do
		[ -f "$t" ] || continue
		n=$(basename "$t" .sh)
		selected "$n" || continue
		pg_template
		dir=$BASE/$n
		mkdir -p "$dir"
		chmod 755 "$dir"
		log=$LOGDIR/$n.log
		CANOPY_TEST_DIR=$dir CANOPY_TEST_NAME=$n \
		    run "$log" "$TEST_TIMEOUT" bash "$ROOT/$t"
		reap_strays "$dir"
		# Keep the daemons' logs beside the test's own.
		mkdir -p "$LOGDIR/$n"
		for f in "$dir"/*.log "$dir"/*.conf; do
			[ -f "$f" ] && cp "$f" "$LOGDIR/$n/"
		done
		rm -rf "$dir"
		case $RC in
		0) pass "$n" "$SECS" ;;
		77) skip "$n" "$(grep -m1 '^SKIP' "$log" | sed 's/^SKIP: //')" ;;
		*) failed "$n" "$SECS" "$log" "$(timed_out_note "$TEST_TIMEOUT")" ;;
		esac
	done
}

case $what in
unit) run_unit ;;
fuzz) run_fuzz ;;
integration) run_integration ;;
all)
	run_unit
	run_fuzz
	run_integration
	;;
esac

summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" = 0 ]
