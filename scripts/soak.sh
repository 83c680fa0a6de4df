#!/usr/bin/env bash
# A soak of the demo with a flood log: runs `watchpost demo --record` in a tmux pane for
# an hour (SOAK_MINUTES) while the demo's application log gets FLOOD extra lines a second
# on top of its own, samples the dashboard's resident memory and the record's size once
# a minute, and reports the RSS at 10 minutes and at the end (they should be within 10 %:
# every buffer is bounded, so memory levels off) and the record's growth per hour.
#
# Usage: scripts/soak.sh
#   SOAK_MINUTES   how long (default 60; the first figure is taken at minute 10)
#   FLOOD          extra log lines a second (default 2000)
#   WATCHPOST_BIN  the binary (default: $CARGO_TARGET_DIR or target, release build)
#   SOAK_CSV       where the per-minute samples go (default: printed at the end only)
# Exit status: 0 the RSS at the end is within 10 % of minute 10's, 1 it is not, 2 the run
# failed.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${SOAK_MINUTES:-60}
flood=${FLOOD:-2000}
bin=${WATCHPOST_BIN:-${CARGO_TARGET_DIR:-target}/release/watchpost}
[ -x "$bin" ] || cargo build --release
command -v tmux >/dev/null || { echo "needs tmux" >&2; exit 2; }
[ "$minutes" -ge 11 ] || { echo "SOAK_MINUTES must be at least 11" >&2; exit 2; }

dir=$(mktemp -d)
sock="watchpost-soak-$$"
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
record=$dir/record.db
csv=${SOAK_CSV:-$dir/samples.csv}

tmux -L "$sock" new-session -d -s soak -x 120 -y 40 \
  "$bin demo --flood $flood --record $record; sleep 5"
pid=""
for _ in $(seq 100); do
  pid=$(pgrep -f "^$bin demo --flood $flood --record $record" | head -1 || true)
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "the demo did not start" >&2; exit 2; }
echo "watchpost demo (pid $pid) with $flood extra log lines/s: ${minutes} minutes" >&2

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }
# The record's size as SQLite counts it (pages in use, WAL included), not the files' sizes:
# the WAL file keeps its length after a checkpoint.
record_bytes() {
  if command -v sqlite3 >/dev/null; then
    sqlite3 -readonly "$record" 'SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()' 2>/dev/null || echo 0
  else
    du -cb "$record"* 2>/dev/null | awk 'END { print $1 }'
  fi
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
log_dir() { ls -d /tmp/watchpost-demo-* 2>/dev/null | while read -r d; do
  [ -e "$d/tmws.jsonl" ] && echo "$d"; done | head -1; }

echo "minute,rss_kib,record_bytes,cpu_ticks" >"$csv"
for m in $(seq 1 "$minutes"); do
  sleep 60
  kill -0 "$pid" 2>/dev/null || { echo "the demo exited at minute $m" >&2; exit 2; }
  echo "$m,$(rss_kib),$(record_bytes),$(cpu_ticks)" >>"$csv"
done
lines=$(wc -l <"$(log_dir)/tmws.jsonl" 2>/dev/null || echo "?")
tmux -L "$sock" send-keys -t soak q
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done

at() { awk -F, -v m="$1" -v c="$2" '$1 == m { print $c }' "$csv"; }
rss10=$(at 10 2); rss_end=$(at "$minutes" 2)
rec10=$(at 10 3); rec_end=$(at "$minutes" 3)
cpu10=$(at 10 4); cpu_end=$(at "$minutes" 4)
hz=$(getconf CLK_TCK)
cat "$csv"
awk -v a="$rss10" -v b="$rss_end" -v r1="$rec10" -v r2="$rec_end" -v m="$minutes" \
    -v c1="$cpu10" -v c2="$cpu_end" -v hz="$hz" -v live="$lines" 'BEGIN {
  printf "RSS at minute 10: %.1f MiB; at minute %d: %.1f MiB (%+.1f %%)\n", a/1024, m, b/1024, 100*(b-a)/a
  printf "record: %.1f MiB at minute 10, %.1f MiB at minute %d: %.1f MiB per hour\n", r1/1048576, r2/1048576, m, (r2-r1)/1048576*60/(m-10)
  printf "CPU from minute 10 to %d: %.1f %% of a core\n", m, 100*(c2-c1)/hz/((m-10)*60)
  printf "lines in the current log file at the end: %s (it is rotated at 20 MB)\n", live
  exit (b > a * 1.10 || b < a * 0.90) ? 1 : 0
}'
