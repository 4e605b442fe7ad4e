#!/usr/bin/env bash
# backend_figures.sh - regenerate the Redis / HTTP backend figures of
# BENCHMARKS.md and RELIABILITY.md, each line prefixed with the load average
# (the machine's other work moves these figures more than anything else).
#
#   bench/backend_figures.sh [BUILD_DIR]     (default: build/rel)
#
# Builds a Release tree with tests, then runs:
#   redis throughput (3 x 10 s, TCP), redis over a unix socket, http
#   (counting and parsing receiver), e2e through the monitor at 80,000 ev/s,
#   the 10 s Redis outage at 10,000 ev/s (default breaker and 1 s reset),
#   the reliability scenarios with 5 s faults and ~1 ms runs, and the
#   multi-host network-namespace test (root) with a 5 s link cut.
# The benchmark processes run at nice -15 when allowed, to take the CPU
# from background jobs rather than share it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/rel}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DKG_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_backends test_reliability \
      test_multihost_netns >/dev/null

nice_cmd=(nice -n -15)
"${nice_cmd[@]}" true 2>/dev/null || nice_cmd=()
load() { cut -d' ' -f1-3 /proc/loadavg; }
run() {   # run LABEL CMD...: print the figure lines with the load before/after
  local label=$1 before
  shift
  before=$(load)
  "${nice_cmd[@]}" "$@" 2>&1 | grep -E '^(redis|http|e2e|outage|RELIABILITY|  )' |
    sed "s/^/[$label] /"
  echo "[$label] load average before: $before, after: $(load)"
}

b="$build/bench/bench_backends"
for i in 1 2 3; do run "redis#$i" "$b" --seconds 10 --workers 2 redis; done
run redis-unix "$b" --seconds 10 --workers 2 --unix redis
run http "$b" --seconds 5 --workers 2 http
run http-parse "$b" --seconds 5 --workers 2 --parse http
run e2e "$b" --seconds 5 --workers 2 --rate 80000 e2e
run outage "$b" --seconds 10 --workers 2 outage
run outage-reset1 "$b" --seconds 10 --workers 2 --breaker-reset 1 outage
KG_REL_FAULT_S=5 KG_REL_NODE_US=300 run reliability "$build/tests/backends/test_reliability"
KG_REL_FAULT_S=5 run multihost "$build/tests/backends/test_multihost_netns"
