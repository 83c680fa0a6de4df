#!/usr/bin/env bash
# Counts false pages on the demo: runs `watchpost demo --record` untouched in a tmux pane
# for a while (10 minutes by default), then lists every alert event in the record and
# counts the P0/P1 pages (events `fired`, or `changed` to another condition) that fall
# inside the scripted incident and those outside it. Every P0/P1 of the simulated
# deployment should be inside: one outside is a false page.
#
# The incident's schedule is IncidentSchedule::default() in src/demo/incident.rs: the
# first incident 60 s after the start of the window, then one every 240 s; each lasts
# 45 s, then 15 s of recovery. A page counts as inside when it fires between the start
# of an incident and the end of its recovery plus a grace period (GRACE_S, default 60 s:
# `for` durations, collector intervals and per-minute windows lag behind the cause).
#
# The demo also watches this machine (source `host`) and the local Docker engine (source
# `local`): their alerts are marked "machine" and counted apart. They say whether this
# machine and its containers are well, whatever the simulated deployment does, so they
# are neither inside nor outside the incident; a false one among them (a page for a
# container that is only being removed, say) is a bug all the same: read the list.
#
# Usage: scripts/demo-false-pages.sh [seconds] [record-path]
#   seconds        how long the demo runs (default 600)
#   record-path    where the record is kept (a new file; default a temporary one, removed)
#   WATCHPOST_BIN  the binary to run (default: $CARGO_TARGET_DIR or target, debug build)
#   FIRST_S, PERIOD_S, DURATION_S, RECOVERY_S, GRACE_S  the schedule, if it changes
# Exit status: 0 no page outside the incident, 1 some page outside it, 2 the run failed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
keep_record=${2:-}
first_s=${FIRST_S:-60}
period_s=${PERIOD_S:-240}
duration_s=${DURATION_S:-45}
recovery_s=${RECOVERY_S:-15}
grace_s=${GRACE_S:-60}

bin=${WATCHPOST_BIN:-${CARGO_TARGET_DIR:-target}/debug/watchpost}
[ -x "$bin" ] || cargo build
for tool in tmux sqlite3; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done

dir=$(mktemp -d)
sock="watchpost-false-pages-$$"
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
record=${keep_record:-$dir/record.db}
if [ -e "$record" ]; then
  echo "$record exists; the demo would resume it: give a new path" >&2
  exit 2
fi

# 120 columns, the width the dashboard is designed to read well at.
tmux -L "$sock" new-session -d -s demo -x 120 -y 40 "$bin demo --record $record; sleep 5"
echo "watchpost demo --record $record: running for ${secs}s" >&2
sleep "$secs"
tmux -L "$sock" send-keys -t demo q
# Wait for the demo to quit (it flushes its record on the way out).
for _ in $(seq 50); do
  pgrep -f "^$bin demo --record $record" >/dev/null || break
  sleep 0.2
done
tmux -L "$sock" kill-server 2>/dev/null || true
[ -s "$record" ] || { echo "no record at $record" >&2; exit 2; }

start_ms=$(sqlite3 "$record" \
  "SELECT CAST(strftime('%s', json_extract(value, '\$.start')) AS INTEGER) * 1000
     FROM meta WHERE key = 'window'")
[ -n "$start_ms" ] || { echo "the record has no window start" >&2; exit 2; }

# Which incident (1, 2, ...) an alert at `at` (ms) belongs to, or 0 for none.
incident_of="CASE WHEN (at - $start_ms) >= $first_s * 1000
      AND ((at - $start_ms) - $first_s * 1000) % ($period_s * 1000)
          < ($duration_s + $recovery_s + $grace_s) * 1000
    THEN ((at - $start_ms) - $first_s * 1000) / ($period_s * 1000) + 1 ELSE 0 END"

of="CASE WHEN figure LIKE 'host.%' OR figure LIKE 'local.%' THEN 'machine'
    ELSE 'deployment' END"

echo "Every alert event in the record (t = seconds since the start of the window;"
echo "incident = the scripted incident it falls in, '-' for none):"
sqlite3 -header -column "$record" "
  SELECT (at - $start_ms) / 1000 AS t, kind, priority, severity, condition, figure, value,
         CASE ($incident_of) WHEN 0 THEN '-' ELSE ($incident_of) END AS incident, $of AS 'of'
    FROM alerts ORDER BY seq"
echo

pages="priority IN ('P0', 'P1') AND kind IN ('fired', 'changed')"
count() { sqlite3 "$record" "SELECT COUNT(*) FROM alerts WHERE $pages AND $1"; }
inside=$(count "$of = 'deployment' AND ($incident_of) > 0")
outside=$(count "$of = 'deployment' AND ($incident_of) = 0")
machine=$(count "$of = 'machine'")
incidents=$(( secs > first_s ? (secs - first_s + period_s - 1) / period_s : 0 ))
echo "demo run: ${secs}s, ${incidents} scripted incident(s) began"
echo "P0/P1 pages inside the incident: $inside"
echo "P0/P1 pages outside the incident: $outside"
echo "P0/P1 pages on this machine's own figures (host, local Docker): $machine"
if [ "$machine" -gt 0 ]; then
  sqlite3 -header -column "$record" "
    SELECT (at - $start_ms) / 1000 AS t, kind, priority, condition, figure, value
      FROM alerts WHERE $pages AND $of = 'machine' ORDER BY seq"
fi
if [ "$outside" -gt 0 ]; then
  echo "False pages (outside the incident):"
  sqlite3 -header -column "$record" "
    SELECT (at - $start_ms) / 1000 AS t, kind, priority, condition, figure, value
      FROM alerts WHERE $pages AND $of = 'deployment' AND ($incident_of) = 0 ORDER BY seq"
  exit 1
fi
