#!/usr/bin/env bash
# replay_figures.sh - how fast a (re)started dashboard catches up from the
# Redis stream (the "dashboard restarted" figures of BENCHMARKS.md).
#
#   bench/replay_figures.sh [KGMON]     (default: build/rel/apps/kgmon/kgmon)
#
# 1. alone: 4 demos fill the stream for 12 s and stop; a dashboard started
#    with --redis-replay 1000000 replays it; time until its replay is done.
# 2. under load: 4 demos keep publishing; the dashboard starts after 15 s,
#    replays while following Pub/Sub; when its replay is done the demos are
#    stopped and its total is compared with Redis' counters (must be equal).
# Each step uses its own redis-server on a free loopback port, no persistence.
set -euo pipefail
cd "$(dirname "$0")/.."
kgmon=${1:-build/rel/apps/kgmon/kgmon}
[ -x "$kgmon" ] || { echo "replay_figures: $kgmon not found" >&2; exit 2; }
prefix="kaygraph:monitoring:"
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
now() { date +%s.%N; }
metric() { curl -sf "http://127.0.0.1:$dport/api/metrics" | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
redis_total() {
    redis-cli -p "$rport" mget "${prefix}metrics:events:lifecycle" "${prefix}metrics:events:data" \
        "${prefix}metrics:events:error" "${prefix}metrics:events:metric" | awk '{s += $1} END {print s}'
}
start_redis() {
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --logfile /dev/null &
    pids+=($!)
    until redis-cli -p "$rport" ping >/dev/null 2>&1; do sleep 0.1; done
}
demo_pids=()
start_demos() {
    demo_pids=()
    for i in 1 2 3 4; do
        "$kgmon" demo --backend redis --redis-port "$rport" --redis-stream 2000000 \
            --iterations 100000000 --node-delay 1 --quiet --seed "$i" >/dev/null 2>&1 &
        demo_pids+=($!)
        pids+=($!)
    done
}
stop_demos() { kill -INT "${demo_pids[@]}"; wait "${demo_pids[@]}" || true; }
# Start a dashboard that replays the stream (sets dport, dash, t_start).
start_dashboard() {
    dport=$(free_port)
    t_start=$(now)
    "$kgmon" dashboard --port "$dport" --redis "127.0.0.1:$rport" --redis-replay 1000000 \
        >/dev/null 2>&1 &
    dash=$!
    pids+=($dash)
}
# Seconds from the dashboard's start until its replay is done.
replay_seconds() {
    until [ "$(metric redis_replays 2>/dev/null)" = 1 ]; do sleep 0.05; done
    echo "$(now) - $t_start" | bc
}

start_redis
start_demos
sleep 12
stop_demos
n=$(redis-cli -p "$rport" xlen "${prefix}stream")
start_dashboard
s=$(replay_seconds)
echo "replay alone: $n stream entries, replay done after $s s (load $(cut -d' ' -f1 /proc/loadavg))"
kill "$dash"; redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1 || true

start_redis
start_demos
sleep 15
at=$(redis_total)
start_dashboard
s=$(replay_seconds)
live=$(( $(redis_total) - at ))
stop_demos
sleep 3
echo "replay under load: $(metric redis_replayed) entries replayed in $s s while $live events were published;" \
     "dashboard $(metric total_events) = redis $(redis_total)? duplicates $(metric duplicates)"
