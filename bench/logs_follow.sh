#!/usr/bin/env bash
# Benchmark: what N quiet log panes cost. Starts N `batty logs v1 <agent> --follow` on event
# logs that exist and do not change, lets them settle, then counts over SECS seconds each
# process's wake-ups (context switches of all its threads, from /proc/<pid>/task/*/status)
# and CPU time (nanoseconds on CPU of all its threads, from /proc/<pid>/task/*/schedstat). Each binary given is measured in turn in
# the same run, so a before/after pair shares the machine's load:
#
#   bench/logs_follow.sh                                  # target/release/batty, N=32, SECS=30
#   N=8 SECS=10 bench/logs_follow.sh /tmp/old/batty target/release/batty
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-32}
SECS=${SECS:-30}
if (($# == 0)); then
    [ -x target/release/batty ] || cargo build --release -q
    set -- target/release/batty
fi

tmp=$(mktemp -d /tmp/blXXXX)
pids=()
cleanup() {
    ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
export HOME=$tmp/home GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 \
    GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@b.invalid GIT_COMMITTER_NAME=bench \
    GIT_COMMITTER_EMAIL=b@b.invalid
mkdir -p "$HOME"
repo=$tmp/repo
git init -q -b main "$repo"
git -C "$repo" commit -q --allow-empty -m initial
mkdir -p "$repo/.batty/kanban/v1/tasks" "$repo/.batty/logs/v1"
echo "version: 1" >"$repo/.batty/kanban/v1/config.yml"
for ((i = 0; i < N; i++)); do
    echo "00:00:00 started" >"$repo/.batty/logs/v1/agent-$i.events.log"
done

# Context switches of every thread of a process, summed.
switches() {
    local sum=0 f
    for f in /proc/"$1"/task/*/status; do
        sum=$((sum + $(awk '/ctxt_switches/ {s += $2} END {print s}' "$f" 2>/dev/null || echo 0)))
    done
    echo "$sum"
}
# Nanoseconds on CPU of every thread (the first field of schedstat), summed; finer than the
# 10 ms ticks of /proc/<pid>/stat.
ticks() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

printf '%-40s %6s %14s %16s\n' binary agents "wake-ups/s" "CPU ms per ${SECS}s"
for bin in "$@"; do
    bin=$(realpath "$bin")
    pids=()
    for ((i = 0; i < N; i++)); do
        (cd "$repo" && exec "$bin" logs v1 "agent-$i" --follow >/dev/null) &
        pids+=($!)
    done
    sleep 2 # start-up is not what is measured
    s0=0 t0=0
    for p in "${pids[@]}"; do
        s0=$((s0 + $(switches "$p"))) t0=$((t0 + $(ticks "$p")))
    done
    sleep "$SECS"
    s1=0 t1=0
    for p in "${pids[@]}"; do
        s1=$((s1 + $(switches "$p"))) t1=$((t1 + $(ticks "$p")))
    done
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    pids=()
    awk -v b="$bin" -v n="$N" -v ds=$((s1 - s0)) -v dt=$((t1 - t0)) -v secs="$SECS" \
        'BEGIN { printf "%-40s %6d %14.2f %16.2f\n", b, n, ds / secs, dt / 1e6 }'
    # Rows for scripts/bench's table.
    if [ -n "${BATTY_BENCH_ROWS:-}" ]; then
        awk -v b="$bin" -v n="$N" -v ds=$((s1 - s0)) -v dt=$((t1 - t0)) -v secs="$SECS" 'BEGIN {
            w = ds / secs; c = dt / 1e6 * 30 / secs
            printf "logs\t%d quiet `batty logs --follow` (%s): wake-ups\t%.2f\t/s\t-\t-\t-\t-\t-\n", n, b, w
            printf "logs\t%d quiet `batty logs --follow` (%s): CPU per 30 s\t%.2f\tms\t-\t-\t-\t-\t-\n", n, b, c
        }' >>"$BATTY_BENCH_ROWS"
    fi
done
