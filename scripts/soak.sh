#!/usr/bin/env bash
# A soak of the demo with a flood log: runs `watchpost demo --record` in a tmux pane for
# an hour (SOAK_MINUTES) while the demo's application log gets FLOOD extra lines a second
# on top of its own, samples the dashboard's resident memory and the record's size every
# SOAK_SAMPLE seconds, and compares the memory of the second sixth of the run (minutes
# 10-20 of an hour) with that of the last sixth (minutes 50-60): every buffer is bounded,
# so memory levels off, and the means are within 10 %. Means, not single samples: the
# allocator's high-water mark moves by a few MiB from one sample to the next.
# The test suite runs it for 4 minutes (soak::a_short_soak_of_the_demo_keeps_its_memory_level).
#
# Usage: scripts/soak.sh
#   SOAK_MINUTES   how long (default 60)
#   SOAK_SAMPLE    seconds between samples (default 60)
#   FLOOD          extra log lines a second (default 2000)
#   WATCHPOST_BIN  the binary (default: $CARGO_TARGET_DIR or target, release build)
#   SOAK_CSV       where the samples go (default: printed at the end only)
# Exit status: 0 the last sixth's mean RSS is within 10 % of the second sixth's, 1 it is
# not, 2 the run failed.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${SOAK_MINUTES:-60}
sample=${SOAK_SAMPLE:-60}
flood=${FLOOD:-2000}
bin=${WATCHPOST_BIN:-${CARGO_TARGET_DIR:-target}/release/watchpost}
[ -x "$bin" ] || cargo build --release
command -v tmux >/dev/null || { echo "needs tmux" >&2; exit 2; }
total=$((minutes * 60))
samples=$((total / sample))
[ "$samples" -ge 12 ] || { echo "SOAK_MINUTES*60/SOAK_SAMPLE must be at least 12 samples" >&2; exit 2; }

dir=$(mktemp -d)
sock=$dir/tmux
cleanup() {
  tmux -S "$sock" kill-server 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
record=$dir/record.db
csv=${SOAK_CSV:-$dir/samples.csv}

tmux -S "$sock" new-session -d -s soak -x 120 -y 40 \
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

echo "second,rss_kib,record_bytes,cpu_ticks" >"$csv"
for n in $(seq 1 "$samples"); do
  sleep "$sample"
  kill -0 "$pid" 2>/dev/null || { echo "the demo exited at second $((n * sample))" >&2; exit 2; }
  echo "$((n * sample)),$(rss_kib),$(record_bytes),$(cpu_ticks)" >>"$csv"
done
lines=$(wc -l <"$(log_dir)/tmws.jsonl" 2>/dev/null || echo "?")
tmux -S "$sock" send-keys -t soak q
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done

hz=$(getconf CLK_TCK)
cat "$csv"
awk -F, -v total="$total" -v hz="$hz" -v live="$lines" '
NR == 1 { next }
{ t = $1; rss[t] = $2; rec[t] = $3; cpu[t] = $4; last = t
  if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2 }
# The second sixth (after a sixth of warming up) and the last sixth.
t > total / 6 && t <= total / 3 { a += $2; na++; if (t0 == "") t0 = t }
t > total - total / 6 { b += $2; nb++ }
END {
  a /= na; b /= nb
  printf "RSS mean over seconds %d-%d: %.1f MiB; over the last sixth: %.1f MiB (%+.1f %%); %.1f-%.1f MiB in all\n", total / 6, total / 3, a/1024, b/1024, 100*(b-a)/a, min/1024, max/1024
  printf "record: %.2f MiB at second %d, %.2f MiB at the end: %.2f MiB per hour\n", rec[t0]/1048576, t0, rec[last]/1048576, (rec[last]-rec[t0])/1048576*3600/(last-t0)
  printf "CPU from second %d to the end: %.1f %% of a core\n", t0, 100*(cpu[last]-cpu[t0])/hz/(last-t0)
  printf "lines in the current log file at the end: %s (it is rotated at 20 MB)\n", live
  exit (b > a * 1.10 || b < a * 0.90) ? 1 : 0
}' "$csv"
