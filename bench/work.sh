#!/usr/bin/env bash
# Benchmark: `batty work v1 --parallel N` on a generated repo, from start to every executor
# pane running its agent, against a bare shell script doing the same `git worktree add`s and
# tmux commands (session, windows with remain-on-exit + pipe-pane, log panes). Runs alternate;
# prints both medians and the ratio (goal: at most 1.3x).
#
#   bench/work.sh                      # N=8, 2,000 files, 7 runs each
#   N=4 FILES=500 RUNS=3 bench/work.sh
#   BATTY=target/debug/batty bench/work.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-8}
FILES=${FILES:-2000}
RUNS=${RUNS:-7}
BATTY=${BATTY:-$PWD/target/release/batty}
[ -x "$BATTY" ] || cargo build --release -q
BATTY=$(realpath "$BATTY")

tmp=$(mktemp -d /tmp/bbXXXX)
sock=$tmp/sock
cleanup() { tmux -S "$sock" kill-server 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
export HOME=$tmp/home GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 \
    GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@b.invalid GIT_COMMITTER_NAME=bench \
    GIT_COMMITTER_EMAIL=b@b.invalid BATTY_TMUX_SOCKET=$sock
unset TMUX TMUX_PANE
mkdir -p "$HOME"

repo=$tmp/repo
git init -q -b main "$repo"
cd "$repo"
for ((i = 0; i < FILES; i++)); do
    d=src/m$((i % 40))
    [ -d "$d" ] || mkdir -p "$d"
    printf 'pub fn f%d() -> u32 { %d }\n' "$i" "$i" >"$d/f$i.rs"
done
git add -A && git commit -q -m "generated $FILES files"
mkdir -p .batty/kanban/v1/tasks
echo "version: 1" >.batty/kanban/v1/config.yml
# The agent draws its prompt, then idles: `batty work` returns once one agent shows it (it
# watches for agents that die at once), as with a real agent that comes up.
printf 'agents:\n  bench: { command: "printf '"'"'bench> '"'"'; exec sleep 600", ready_pattern: "^bench>\\\\s*$" }\n' >.batty/config.yml
echo ".batty/" >>.git/info/exclude
tmux -S "$sock" -f /dev/null new-session -d -s keepalive

now() { date +%s%N; }
# Waits until N panes of session $1 run `sleep` (the executors' agent).
wait_running() {
    while [ "$(tmux -S "$sock" list-panes -s -t "=$1" -F '#{pane_current_command}' 2>/dev/null | grep -c '^sleep$')" -lt "$N" ]; do
        sleep 0.002
    done
}

run_batty() {
    local t0 t1
    t0=$(now)
    "$BATTY" work v1 --parallel "$N" --agent bench >/dev/null || exit 1
    [ -n "${VERBOSE:-}" ] && echo "  batty work returned after $((($(now) - t0) / 1000000)) ms" >&2
    wait_running batty-v1
    t1=$(now)
    "$BATTY" stop v1 --clean --force >/dev/null
    # Removing 8 checkouts leaves a lot of dirty metadata; flush it so the next timed run
    # does not pay for this one's clean-up.
    sync
    echo $(((t1 - t0) / 1000000))
}

run_bare() {
    local t0 t1 wt i
    t0=$(now)
    mkdir -p "$repo/.batty/bare" "$repo/.batty/logs/bare"
    tmux -S "$sock" new-session -d -x 200 -y 50 -s bare -n batty -c "$repo" cat \; set-option -w remain-on-exit on
    for ((i = 1; i <= N; i++)); do
        wt=$repo/.batty/bare/a$i
        git -C "$repo" worktree add -q -b "bare/a$i" "$wt" main
        tmux -S "$sock" new-window -d -t "bare:$i" -n "a$i" -c "$wt" \
            env -u TMUX -u TMUX_PANE -u CLAUDECODE BATTY_PHASE=bare BATTY_AGENT="a$i" sh -c "printf 'bench> '; exec sleep 600" \; \
            set-option -w -t "bare:$i" remain-on-exit on \; \
            pipe-pane -o -t "bare:$i" "cat >> $repo/.batty/logs/bare/a$i.pty.log"
        tmux -S "$sock" split-window -v -d -l 10 -t "bare:$i" -c "$repo" tail -F "$repo/.batty/logs/bare/a$i.events.log"
    done
    wait_running bare
    t1=$(now)
    tmux -S "$sock" kill-session -t =bare
    for ((i = 1; i <= N; i++)); do
        git -C "$repo" worktree remove --force "$repo/.batty/bare/a$i"
        git -C "$repo" branch -q -D "bare/a$i"
    done
    sync
    echo $(((t1 - t0) / 1000000))
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

batty_ms=() bare_ms=()
# Alternate which goes first, so neither always runs right after the other's clean-up.
for ((r = 0; r < RUNS; r++)); do
    if ((r % 2 == 0)); then
        ms=$(run_batty)
        batty_ms+=("$ms")
        ms=$(run_bare)
        bare_ms+=("$ms")
    else
        ms=$(run_bare)
        bare_ms+=("$ms")
        ms=$(run_batty)
        batty_ms+=("$ms")
    fi
done
mb=$(printf '%s\n' "${batty_ms[@]}" | median)
ms=$(printf '%s\n' "${bare_ms[@]}" | median)
echo "N=$N files=$FILES runs=$RUNS"
echo "batty work: ${batty_ms[*]} ms  (median $mb ms)"
echo "bare shell: ${bare_ms[*]} ms  (median $ms ms)"
awk -v a="$mb" -v b="$ms" 'BEGIN { printf "ratio: %.2fx (goal <= 1.3x)\n", a / b }'
# One row for scripts/bench's table.
if [ -n "${BATTY_BENCH_ROWS:-}" ]; then
    awk -v a="$mb" -v b="$ms" -v n="$N" -v f="$FILES" 'BEGIN {
        r = a / b
        printf "work\t`batty work` of %d agents on a %d-file repo\t%.1f\tms\ta shell script making the same calls\t%.1f\t%.2f\t<= 1.3x\t%s\n", n, f, a, b, r, (r <= 1.3 ? "ok" : "MISSED")
    }' >>"$BATTY_BENCH_ROWS"
fi
