#!/usr/bin/env bash
# Measures watchpost's CPU use while `watchpost demo` runs untouched in a tmux pane
# (nothing happening beyond its 2-second refreshes): CPU time from /proc/PID/stat over
# a measured interval, as a percentage of one core. Repeats and prints the median.
# Usage: scripts/idle-cpu.sh [seconds-per-run] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
runs=${2:-3}
bin=target/release/watchpost
[ -x "$bin" ] || cargo build --release
hz=$(getconf CLK_TCK)
results=()
for run in $(seq "$runs"); do
  sock="watchpost-idle-$$-$run"
  tmux -L "$sock" new-session -d -s idle -x 200 -y 60 "$bin demo"
  pid=""
  for _ in $(seq 50); do
    pid=$(pgrep -n -f "^$bin demo" || true)
    [ -n "$pid" ] && break
    sleep 0.2
  done
  [ -n "$pid" ] || { echo "watchpost did not start" >&2; exit 1; }
  sleep 10 # let start-up (database seeding, first figures) finish
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  sleep "$secs"
  read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  tmux -L "$sock" send-keys -t idle q
  sleep 1
  tmux -L "$sock" kill-server 2>/dev/null || true
  pct=$(awk -v d=$(( (u2 + s2) - (u1 + s1) )) -v hz="$hz" -v t="$secs" 'BEGIN { printf "%.2f", 100 * d / hz / t }')
  echo "run $run: ${pct}% of one core over ${secs}s (includes the demo's own simulator threads)"
  results+=("$pct")
done
printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {print "median: " a[int((NR+1)/2)] "% of one core"}'
