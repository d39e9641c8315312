#!/usr/bin/env bash
# Runs the lock benchmarks (lock/bench_test.go) in ROUNDS rounds, each round
# one process with its own 3-node ensemble running every benchmark once, so
# that a change in machine load hits all benchmarks alike instead of one
# benchmark's -count repetitions. Prints benchstat's summary and the target
# ratios: per round (benchmarks of the same round are paired) and their median.
#
#   scripts/bench.sh                  # ROUNDS=4 BENCHTIME=3s
#   ROUNDS=6 BENCHTIME=2s scripts/bench.sh
#   OUT=/tmp/bench.txt scripts/bench.sh   # keep the raw output
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-4}
BENCHTIME=${BENCHTIME:-3s}
BENCH=${BENCH:-.}
OUT=${OUT:-$(mktemp /tmp/zkrecipes-bench.XXXXXX)}

./scripts/ensure-zookeeper.sh
bin=$(mktemp /tmp/lock.test.XXXXXX)
trap 'rm -f "$bin"' EXIT
go test -c -o "$bin" ./lock/

: >"$OUT"
for r in $(seq 1 "$ROUNDS"); do
	echo "round $r/$ROUNDS" >&2
	(cd lock && "$bin" -test.run '^$' -test.bench "$BENCH" -test.benchtime "$BENCHTIME" -test.count 1) |
		tee -a "$OUT" | grep '^Benchmark' >&2
done
echo "raw output: $OUT" >&2

if command -v benchstat >/dev/null 2>&1; then
	benchstat "$OUT" || true
else
	go run golang.org/x/perf/cmd/benchstat@latest "$OUT" || true
fi

awk '
function median(a, n,    i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
	if (name == "RawLoop") round++
	for (i = 3; i < NF; i += 2) v[round, name, $(i + 1)] = $i
}
function ratio(label, target, num, den, unit, cmp,    r, n, rs, x, m) {
	n = 0
	for (r = 1; r <= round; r++)
		if ((r, num, unit) in v && (r, den, unit) in v && v[r, den, unit] > 0) {
			x = v[r, num, unit] / v[r, den, unit]; rs[++n] = x; line = line sprintf(" %.2f", x)
		}
	if (n == 0) return
	m = median(rs, n)
	printf "%-44s %6.2fx  target %s %.2f  %s   (rounds:%s)\n", label, m, cmp, target,
		(cmp == ">=" ? m >= target : m <= target) ? "met" : "MISSED", line
	line = ""
}
END {
	print ""
	print "ratios (median of per-round ratios):"
	ratio("Mutex / RawLoop ops/s", 0.95, "Mutex", "RawLoop", "ops/s", ">=")
	ratio("Mutex / ZkLock ops/s", 0, "Mutex", "ZkLock", "ops/s", ">=")
	ratio("MutexDeadline / RawLoop ops/s", 0.95, "MutexDeadline", "RawLoop", "ops/s", ">=")
	ratio("ContendedMutex / ContendedZkLock hand-offs/s", 1.25, "ContendedMutex", "ContendedZkLock", "hand-offs/s", ">=")
	ratio("Mutex / ZkLock cpu-ns/op", 1, "Mutex", "ZkLock", "cpu-ns/op", "<=")
	ratio("MutexDeadline / ZkLock cpu-ns/op", 1, "MutexDeadline", "ZkLock", "cpu-ns/op", "<=")
	ratio("ContendedMutex / ContendedZkLock cpu-ns/op", 1, "ContendedMutex", "ContendedZkLock", "cpu-ns/op", "<=")
	ratio("Contended16Mutex / Contended16ZkLock hand-offs/s", 1, "Contended16Mutex", "Contended16ZkLock", "hand-offs/s", ">=")
	ratio("Contended16Mutex / Contended16ZkLock cpu-ns/op", 1, "Contended16Mutex", "Contended16ZkLock", "cpu-ns/op", "<=")
	ratio("ManyLocksMutex / ManyLocksZkLock ops/s, G=32", 1, "ManyLocksMutex/G=32", "ManyLocksZkLock/G=32", "ops/s", ">=")
	ratio("ManyLocksMutex / ManyLocksZkLock ops/s, G=256", 1, "ManyLocksMutex/G=256", "ManyLocksZkLock/G=256", "ops/s", ">=")
	ratio("ManyLocksMutex / ManyLocksZkLock cpu-ns/op, G=256", 1, "ManyLocksMutex/G=256", "ManyLocksZkLock/G=256", "cpu-ns/op", "<=")
}' "$OUT"
