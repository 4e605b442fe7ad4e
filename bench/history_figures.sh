#!/usr/bin/env bash
# history_figures.sh - the "Run history" figures of BENCHMARKS.md.
#
#   bench/history_figures.sh [BUILD]     (default: build/rel, a Release build)
#
# 1. ingest: 1,000,000 events (50,000 runs of 20) into SQLite through the
#    embedded dashboard's feed, zero loss checked; then the query latencies
#    on that database; the same ingest with --db none (the pipeline alone);
#    200,000 events through webhook bodies, with and without history.
# 2. live view: bench_dashboard at 10,000 events/s with 50 WebSocket
#    clients, with history into SQLite and without, interleaved 3 times.
# Every step prints the load average first: the machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/rel}
store=$build/bench/bench_store
dash=$build/bench/bench_dashboard
for b in "$store" "$dash"; do
    [ -x "$b" ] || { echo "history_figures: $b not found (cmake --build $build)" >&2; exit 2; }
done
dir=$(mktemp -d /tmp/kg-history-figures-XXXXXX)
trap 'rm -rf "$dir"' EXIT
load() { echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"; }

load; "$store" --db "$dir/h.db" --runs 50000 --queries 200 --path feed
load; "$store" --db none --runs 50000 --path feed
load; "$store" --db "$dir/w.db" --runs 10000 --queries 50 --path webhook
load; "$store" --db none --runs 10000 --path webhook
for i in 1 2 3; do
    rm -f "$dir"/lat.db*
    load; "$dash" --clients 50 --duration 5 --rates 10000 --db "$dir/lat.db"
    load; "$dash" --clients 50 --duration 5 --rates 10000
done
load
