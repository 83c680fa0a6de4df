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
. scripts/lib/cpu.sh
# The same for the simulator's writer threads (named demo-*), which are not watchpost's
# own cost: they stand in for the application being watched.
demo_ticks() {
  local sum=0 t
  for t in /proc/"$1"/task/*; do
    if grep -q '^demo-' "$t/comm" 2>/dev/null; then
      sum=$(( sum + $(awk '{print $14 + $15}' "$t/stat") ))
    fi
  done
  echo "$sum"
}
results=()
for run in $(seq "$runs"); do
  sock="watchpost-idle-$$-$run"
  pid=$(start_in_tmux "$sock" idle "$bin demo")
  sleep 10 # let start-up (database seeding, first figures) finish
  t1=$(ticks "$pid"); d1=$(demo_ticks "$pid")
  sleep "$secs"
  t2=$(ticks "$pid"); d2=$(demo_ticks "$pid")
  tmux -L "$sock" send-keys -t idle q
  sleep 1
  tmux -L "$sock" kill-server 2>/dev/null || true
  ours=$(pct $(( (t2 - t1) - (d2 - d1) )))
  sim=$(pct $(( d2 - d1 )))
  echo "run $run: watchpost ${ours}% of one core over ${secs}s (the demo's simulator threads: ${sim}% more)"
  results+=("$ours")
done
printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {print "median: " a[int((NR+1)/2)] "% of one core"}'
