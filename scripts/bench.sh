#!/usr/bin/env bash
# Produces every figure in docs/PERFORMANCE.md: our recipes beside
# go-zookeeper (zk.Lock, or a raw loop) on a 3-node ensemble with fsync on.
#
# Two parts, each in rounds. A round runs every benchmark of the part once,
# so that a change in machine load hits the benchmarks of a round alike; the
# figures of one round are paired, and the script prints each target ratio
# per round and the median of those. In a lock round each side (ours,
# go-zookeeper's) runs in a process with an ensemble of its own, both
# beginning with the same raw loop, and the two swap places from one round
# to the next. The scale rounds do the same (the kill benchmark, which has
# no go-zookeeper side, runs last).
#
#   - ROUNDS rounds (default 4) of the lock benchmarks (lock/bench_test.go:
#     uncontended, contended by 4 and 16 sessions, 32 and 256 goroutines on
#     distinct locks), each for BENCHTIME (default 3s);
#   - SCALE_ROUNDS rounds (default 2) of the scale benchmarks: 1,000 waiters
#     on one lock, 10,000 leases on one session (lock/scale_bench_test.go),
#     100 election candidates: hand-off, and kill -9 of the leader's process
#     (election/bench_test.go);
#   - INTERLEAVED_ROUNDS rounds (default 6) of BenchmarkInterleaved
#     (lock/interleaved_bench_test.go): the lock cases with both sides in
#     one process and on one ensemble, in alternating blocks, for
#     INTERLEAVED_OPS (default 2000x) operations of each side per case.
#
#   scripts/bench.sh                          # about 35 minutes
#   ROUNDS=6 BENCHTIME=2s SCALE_ROUNDS=1 scripts/bench.sh
#   PARTS=lock scripts/bench.sh               # the lock rounds only (PARTS=scale, PARTS=interleaved: the others)
#   PARTS=profile scripts/bench.sh            # CPU, block and mutex profiles of the
#                                             # many-locks case (256 goroutines, one session)
#   OUT=/tmp/bench.txt scripts/bench.sh       # keep the raw output
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-4}
BENCHTIME=${BENCHTIME:-3s}
SCALE_ROUNDS=${SCALE_ROUNDS:-2}
INTERLEAVED_ROUNDS=${INTERLEAVED_ROUNDS:-6}
INTERLEAVED_OPS=${INTERLEAVED_OPS:-2000x}
PARTS=${PARTS:-lock scale interleaved}
OUT=${OUT:-$(mktemp /tmp/zkrecipes-bench.XXXXXX)}

./scripts/ensure-zookeeper.sh
tmp=$(mktemp -d /tmp/zkrecipes-bench-bin.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/lock.test" ./lock/
go test -c -o "$tmp/election.test" ./election/

run() { # dir binary regexp benchtime [suffix for the raw loop's name]
	(cd "$1" && "$tmp/$2" -test.run '^$' -test.bench "$3" -test.benchtime "$4" -test.count 1 -test.timeout 60m) |
		sed "s/^BenchmarkRawLoop-/BenchmarkRawLoop${5:-}-/" | tee -a "$OUT" | grep '^Benchmark' >&2
}

: >"$OUT"
if [[ " $PARTS " == *" lock "* ]]; then
	for r in $(seq 1 "$ROUNDS"); do
		echo "lock round $r/$ROUNDS" >&2
		echo "# round lock $r" >>"$OUT"
		# Each side runs in a process (and on an ensemble) of its own, so
		# that neither always runs later, on warmer servers; odd rounds run
		# go-zookeeper's side first, even rounds ours. Both begin with the
		# same raw loop (reported as RawLoopOurs in ours), so that the
		# benchmarks compared run in the same position.
		theirs='^Benchmark(RawLoop|ZkLock|ContendedZkLock|Contended16ZkLock|ManyLocksZkLock)$'
		ours='^Benchmark(RawLoop|Mutex|ContendedMutex|Contended16Mutex|ManyLocksMutex|MutexDeadline)$'
		if ((r % 2)); then
			run lock lock.test "$theirs" "$BENCHTIME"
			run lock lock.test "$ours" "$BENCHTIME" Ours
		else
			run lock lock.test "$ours" "$BENCHTIME" Ours
			run lock lock.test "$theirs" "$BENCHTIME"
		fi
	done
fi
# The two sides of a scale round.
scale_theirs() {
	run lock lock.test '^Benchmark(Waiters1000ZkLock|Leases10000Raw)$' 1x
	run election election.test '^BenchmarkZkLockHandoff100$' 200x
}
scale_ours() {
	run lock lock.test '^Benchmark(Waiters1000Mutex|Leases10000Mutex)$' 1x
	run election election.test '^BenchmarkElectionHandoff100$' 200x
}
if [[ " $PARTS " == *" scale "* ]]; then
	for r in $(seq 1 "$SCALE_ROUNDS"); do
		echo "scale round $r/$SCALE_ROUNDS" >&2
		echo "# round scale $r" >>"$OUT"
		# As in the lock rounds: each side in processes of its own, in the
		# same positions, swapping places every round.
		if ((r % 2)); then scale_theirs; scale_ours; else scale_ours; scale_theirs; fi
		run election election.test '^BenchmarkElectionKill100$' 5x
	done
fi
# The interleaved rounds: both sides in one process, on one ensemble, in
# alternating blocks (lock/interleaved_bench_test.go); each round is a
# process of its own.
if [[ " $PARTS " == *" interleaved "* ]]; then
	for r in $(seq 1 "$INTERLEAVED_ROUNDS"); do
		echo "interleaved round $r/$INTERLEAVED_ROUNDS" >&2
		echo "# round interleaved $r" >>"$OUT"
		run lock lock.test '^BenchmarkInterleaved$' "$INTERLEAVED_OPS"
	done
fi
if [[ " $PARTS " == *" profile "* ]]; then
	PROFILES=${PROFILES:-/tmp/zkrecipes-profiles}
	mkdir -p "$PROFILES"
	for b in ManyLocksMutex ManyLocksZkLock; do
		(cd lock && "$tmp/lock.test" -test.run '^$' -test.bench "^Benchmark$b/G=256\$" -test.benchtime "$BENCHTIME" \
			-test.cpuprofile "$PROFILES/$b.cpu" -test.blockprofile "$PROFILES/$b.block" -test.mutexprofile "$PROFILES/$b.mutex") |
			grep '^Benchmark' >&2
		cp "$tmp/lock.test" "$PROFILES/lock.test"
		go tool pprof -top -nodecount 25 "$PROFILES/lock.test" "$PROFILES/$b.cpu" 2>/dev/null | sed -n '1,32p' >&2
	done
	echo "profiles in $PROFILES (go tool pprof $PROFILES/lock.test $PROFILES/<name>.{cpu,block,mutex})" >&2
fi
echo "raw output: $OUT" >&2

if command -v benchstat >/dev/null 2>&1; then
	grep -v '^# round' "$OUT" | benchstat /dev/stdin || true
else
	grep -v '^# round' "$OUT" | go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da /dev/stdin || true
fi

awk '
function median(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
/^# round/ { round++ }
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
	for (i = 3; i < NF; i += 2) v[round, name, $(i + 1)] = $i
}
# ratio prints the median over rounds of num/den in unit, against target
# (cmp ">=" or "<="; target 0: no target).
function ratio(label, num, den, unit, cmp, target) { compare(label, num, den, unit, cmp, target, 0) }
# compare is ratio; with norm set, each side is first divided by the raw
# loop of its own process (the same code on both sides; its ops/s for
# rates, its cpu-ns/op for CPU): what differs between the two processes
# and their ensembles cancels.
function compare(label, num, den, unit, cmp, target, norm,    r, n, rs, x, m, line, verdict, ru) {
	ru = (unit == "cpu-ns/op") ? unit : "ops/s"
	n = 0; line = ""
	for (r = 1; r <= round; r++) {
		if (!((r, num, unit) in v && (r, den, unit) in v && v[r, den, unit] > 0)) continue
		x = v[r, num, unit] / v[r, den, unit]
		if (norm) {
			if (!((r, "RawLoopOurs", ru) in v && (r, "RawLoop", ru) in v && v[r, "RawLoopOurs", ru] > 0)) continue
			x = x * v[r, "RawLoop", ru] / v[r, "RawLoopOurs", ru]
		}
		rs[++n] = x; line = line sprintf(" %.2f", x)
	}
	if (n == 0) return
	m = median(rs, n)
	verdict = ""
	if (target > 0) verdict = sprintf("target %s %.2f  %s", cmp, target, (cmp == ">=" ? m >= target : m <= target) ? "met" : "MISSED")
	printf "%-58s %7.2fx  %-24s (rounds:%s)\n", label, m, verdict, line
}
# value prints the median over rounds of name in unit.
function value(label, name, unit,    r, n, rs, m, line) {
	n = 0; line = ""
	for (r = 1; r <= round; r++)
		if ((r, name, unit) in v) { rs[++n] = v[r, name, unit]; line = line " " v[r, name, unit] }
	if (n == 0) return
	m = median(rs, n)
	printf "%-58s %9.4g  (rounds:%s)\n", label, m, line
}
# lockPairs compares the lock benchmarks, paired (norm 0) or each side
# first divided by the raw loop of its own process (norm 1).
function lockPairs(norm) {
	compare("Mutex / ZkLock ops/s", "Mutex", "ZkLock", "ops/s", ">=", 1, norm)
	compare("Mutex / ZkLock cpu-ns/op", "Mutex", "ZkLock", "cpu-ns/op", "<=", 1, norm)
	compare("MutexDeadline / ZkLock ops/s", "MutexDeadline", "ZkLock", "ops/s", ">=", 1, norm)
	compare("MutexDeadline / ZkLock cpu-ns/op", "MutexDeadline", "ZkLock", "cpu-ns/op", "<=", 1, norm)
	compare("Contended (4) hand-offs/s", "ContendedMutex", "ContendedZkLock", "hand-offs/s", ">=", 1, norm)
	compare("Contended (4) cpu-ns/op", "ContendedMutex", "ContendedZkLock", "cpu-ns/op", "<=", 1, norm)
	compare("Contended (16) hand-offs/s", "Contended16Mutex", "Contended16ZkLock", "hand-offs/s", ">=", 1, norm)
	compare("Contended (16) cpu-ns/op", "Contended16Mutex", "Contended16ZkLock", "cpu-ns/op", "<=", 1, norm)
	compare("ManyLocks G=32 ops/s", "ManyLocksMutex/G=32", "ManyLocksZkLock/G=32", "ops/s", ">=", 1, norm)
	compare("ManyLocks G=32 cpu-ns/op", "ManyLocksMutex/G=32", "ManyLocksZkLock/G=32", "cpu-ns/op", "<=", 1, norm)
	compare("ManyLocks G=256 ops/s", "ManyLocksMutex/G=256", "ManyLocksZkLock/G=256", "ops/s", ">=", 1, norm)
	compare("ManyLocks G=256 cpu-ns/op", "ManyLocksMutex/G=256", "ManyLocksZkLock/G=256", "cpu-ns/op", "<=", 1, norm)
}
# target prints the median over rounds of name in unit against target.
function target(label, name, unit, cmp, t,    r, n, rs, m, line) {
	n = 0; line = ""
	for (r = 1; r <= round; r++)
		if ((r, name, unit) in v) { rs[++n] = v[r, name, unit]; line = line sprintf(" %.2f", v[r, name, unit]) }
	if (n == 0) return
	m = median(rs, n)
	printf "%-58s %7.2fx  %-24s (rounds:%s)\n", label, m, sprintf("target %s %.2f  %s", cmp, t, (cmp == ">=" ? m >= t : m <= t) ? "met" : "MISSED"), line
}
# syscallPairs prints, for unit (reads/op, writes/op or switches/op), the lock pairs:
# each ratio and its two sides.
function syscallPairs(unit,    i, k, ours, theirs) {
	k = split("Mutex ContendedMutex Contended16Mutex ManyLocksMutex/G=32 ManyLocksMutex/G=256", ours, " ")
	split("ZkLock ContendedZkLock Contended16ZkLock ManyLocksZkLock/G=32 ManyLocksZkLock/G=256", theirs, " ")
	for (i = 1; i <= k; i++) {
		ratio(ours[i] " / " theirs[i] " " unit, ours[i], theirs[i], unit, "<=", 0)
		value("  " ours[i] " " unit, ours[i], unit); value("  " theirs[i] " " unit, theirs[i], unit)
	}
}
END {
	print ""
	print "ratios, ours / go-zookeeper (median of per-round ratios):"
	lockPairs(0)
	ratio("Mutex / RawLoop ops/s (both in our process)", "Mutex", "RawLoopOurs", "ops/s", ">=", 0)
	ratio("Mutex / ZkLock p50-ms", "Mutex", "ZkLock", "p50-ms", "<=", 1)
	ratio("Mutex / ZkLock p99-ms", "Mutex", "ZkLock", "p99-ms", "<=", 1)
	ratio("Contended (4) handoff-p50-ms", "ContendedMutex", "ContendedZkLock", "handoff-p50-ms", "<=", 1)
	ratio("Contended (4) handoff-p99-ms", "ContendedMutex", "ContendedZkLock", "handoff-p99-ms", "<=", 1)
	print ""
	print "read and write system calls and context switches per operation (Linux), ours / go-zookeeper:"
	syscallPairs("reads/op"); syscallPairs("writes/op"); syscallPairs("switches/op")
	print ""
	print "the same, each side divided first by the raw loop of its own process:"
	ratio("RawLoop (ours) / RawLoop (theirs) ops/s: same code", "RawLoopOurs", "RawLoop", "ops/s", ">=", 0)
	ratio("RawLoop (ours) / RawLoop (theirs) cpu-ns/op: same code", "RawLoopOurs", "RawLoop", "cpu-ns/op", "<=", 0)
	lockPairs(1)
	print ""
	print "interleaved in one process, ours / zk.Lock (per round the ratio of the sums over its blocks; median over rounds):"
	k = split("Uncontended Contended4 Contended16 Contended50 ManyLocks32 ManyLocks256", cases, " ")
	for (i = 1; i <= k; i++) {
		target("Interleaved " cases[i] " rate", "Interleaved/" cases[i], "rate-ratio", ">=", 1)
		target("Interleaved " cases[i] " cpu", "Interleaved/" cases[i], "cpu-ratio", "<=", 1)
		value("  " cases[i] " reads/op, ours", "Interleaved/" cases[i], "ours-reads/op")
		value("  " cases[i] " reads/op, zk.Lock", "Interleaved/" cases[i], "zk-reads/op")
		value("  " cases[i] " switches/op, ours", "Interleaved/" cases[i], "ours-switches/op")
		value("  " cases[i] " switches/op, zk.Lock", "Interleaved/" cases[i], "zk-switches/op")
	}
	print ""
	print "at scale, ours / go-zookeeper (paired, median of per-round ratios):"
	ratio("Waiters1000 hand-offs/s", "Waiters1000Mutex", "Waiters1000ZkLock", "hand-offs/s", ">=", 1)
	ratio("Waiters1000 cpu-ns/hand-off", "Waiters1000Mutex", "Waiters1000ZkLock", "cpu-ns/hand-off", "<=", 1)
	ratio("Leases10000 acquire-all-ms (Mutex / raw creates)", "Leases10000Mutex", "Leases10000Raw", "acquire-all-ms", "<=", 0)
	ratio("Leases10000 release-all-ms (Mutex / raw deletes)", "Leases10000Mutex", "Leases10000Raw", "release-all-ms", "<=", 0)
	ratio("Election / zk.Lock, 100 candidates: handoffs/s", "ElectionHandoff100", "ZkLockHandoff100", "handoffs/s", ">=", 1)
	ratio("Election / zk.Lock, 100 candidates: cpu-ns/op", "ElectionHandoff100", "ZkLockHandoff100", "cpu-ns/op", "<=", 1)
	ratio("Election / zk.Lock, 100 candidates: p50-ms", "ElectionHandoff100", "ZkLockHandoff100", "p50-ms", "<=", 1)
	ratio("Election / zk.Lock, 100 candidates: p99-ms", "ElectionHandoff100", "ZkLockHandoff100", "p99-ms", "<=", 1)
	print ""
	print "values (median over rounds):"
	value("Mutex p50-ms", "Mutex", "p50-ms"); value("Mutex p99-ms", "Mutex", "p99-ms")
	value("ZkLock p50-ms", "ZkLock", "p50-ms"); value("ZkLock p99-ms", "ZkLock", "p99-ms")
	value("ContendedMutex handoff-p50-ms", "ContendedMutex", "handoff-p50-ms")
	value("ContendedMutex handoff-p99-ms", "ContendedMutex", "handoff-p99-ms")
	value("ContendedZkLock handoff-p50-ms", "ContendedZkLock", "handoff-p50-ms")
	value("ContendedZkLock handoff-p99-ms", "ContendedZkLock", "handoff-p99-ms")
	value("Waiters1000Mutex watch-fires/release", "Waiters1000Mutex", "watch-fires/release")
	value("Waiters1000ZkLock watch-fires/release", "Waiters1000ZkLock", "watch-fires/release")
	value("Leases10000Mutex B/lease", "Leases10000Mutex", "B/lease")
	value("Leases10000Raw B/lease", "Leases10000Raw", "B/lease")
	value("Leases10000Mutex goroutines/lease", "Leases10000Mutex", "goroutines/lease")
	value("Leases10000Mutex acquire-all-ms", "Leases10000Mutex", "acquire-all-ms")
	value("Leases10000Raw acquire-all-ms", "Leases10000Raw", "acquire-all-ms")
	value("Leases10000Mutex release-all-ms", "Leases10000Mutex", "release-all-ms")
	value("Leases10000Raw release-all-ms", "Leases10000Raw", "release-all-ms")
	value("ElectionHandoff100 p50-ms", "ElectionHandoff100", "p50-ms")
	value("ElectionHandoff100 p99-ms", "ElectionHandoff100", "p99-ms")
	value("ElectionKill100 failover-ms", "ElectionKill100", "failover-ms")
	value("ElectionKill100 over-timeout-ms", "ElectionKill100", "over-timeout-ms")
	value("ElectionKill100 max-failover-ms", "ElectionKill100", "max-failover-ms")
}' "$OUT"
