#!/usr/bin/env bash
# A dashboard of 200 PromQL figures refreshed every 5 s, against a real Prometheus
# (Debian's package) on 127.0.0.1 that scrapes itself every 5 s: watchpost's CPU and the
# load it puts on Prometheus (instant queries per second, Prometheus's own extra CPU),
# side by side in one run with a reference client that asks every panel's query each
# round (curl, 8 in parallel, as a dashboard without de-duplication does).
#
# The 200 figures are 150 distinct expressions (10 kinds x 15 windows) plus 50 that repeat
# one of them with other thresholds (warn and crit on the same expression, as in
# examples/meatymusic.toml). watchpost asks each distinct expression once per round, 8 at a
# time, never overlapping rounds; range queries run only at start-up (history = "0s" here,
# so the steady state is what is measured).
#
# Each run measures three phases of SECONDS each: Prometheus alone (its baseline),
# with `watchpost run` in a 200x60 tmux pane showing the Figures pane (zoomed), and
# with the reference client. Prints each run and
# the medians. Usage: scripts/prometheus-load.sh [seconds-per-phase] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
runs=${2:-3}
bin=target/release/watchpost
[ -x "$bin" ] || cargo build --release
for tool in prometheus tmux curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install prometheus tmux curl)" >&2; exit 1; }
done
. scripts/lib/cpu.sh
free_port() {
  local p
  while :; do
    p=$(( 20000 + RANDOM % 20000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

work=$(mktemp -d)
sock="watchpost-promload-$$"
prom_pid=""
cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  [ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(free_port)
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 5s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$port" >"$work/prometheus.log" 2>&1 &
prom_pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$url/-/ready" >/dev/null && break; sleep 0.2; done
curl -sf "$url/-/ready" >/dev/null || { cat "$work/prometheus.log" >&2; exit 1; }

# The dashboard: 10 kinds of expression over Prometheus's own metrics, 15 windows each.
kinds=(
  'sum(rate(prometheus_http_requests_total[W]))'
  'sum by (handler) (rate(prometheus_http_requests_total[W]))'
  'histogram_quantile(0.95, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[W])))'
  'rate(process_cpu_seconds_total[W])'
  'avg_over_time(go_goroutines[W])'
  'max_over_time(process_resident_memory_bytes[W])'
  'sum(rate(prometheus_tsdb_head_samples_appended_total[W]))'
  'sum(rate(prometheus_engine_query_duration_seconds_count[W]))'
  'avg_over_time(prometheus_tsdb_head_series[W])'
  'sum by (slice) (rate(prometheus_engine_query_duration_seconds_sum[W]))'
)
windows=(1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 11m 12m 13m 14m 15m)
exprs=()
for k in "${kinds[@]}"; do for w in "${windows[@]}"; do exprs+=("${k//W/$w}"); done; done
config="$work/dashboard.toml"
{
  printf '[deployment]\nname = "promload"\n\n[prometheus.p]\nurl = "%s"\ninterval = "5s"\nhistory = "0s"\n' "$url"
  n=0
  for e in "${exprs[@]}"; do
    printf '\n[[prometheus.p.figure]]\nid = "f%03d"\nquery = "%s"\nwarn = "> 1e12"\n' "$n" "$e"
    n=$((n + 1))
  done
  for i in $(seq 0 49); do
    printf '\n[[prometheus.p.figure]]\nid = "f%03d"\nquery = "%s"\ncrit = "> 1e15"\n' "$n" "${exprs[$((i * 3))]}"
    n=$((n + 1))
  done
} >"$config"
"$bin" validate --config "$config" >/dev/null
queries=()
for i in $(seq 0 149); do queries+=("${exprs[$i]}"); done
for i in $(seq 0 49); do queries+=("${exprs[$((i * 3))]}"); done

# Instant queries Prometheus has answered so far (its own counter; this read is one more).
answered() {
  curl -sf "$url/api/v1/query" --data-urlencode \
    'query=sum(prometheus_http_requests_total{handler="/api/v1/query"})' |
    sed -E 's/.*"value":\[[^,]*,"([0-9.e+]+)"\].*/\1/'
}
qps() { awk -v a="$1" -v b="$2" -v t="$secs" 'BEGIN { printf "%.1f", (b - a - 1) / t }'; }

# The reference: every panel's query, every 5 s, 8 at a time.
reference_round() {
  local args=() q
  for q in "${queries[@]}"; do
    args+=(-o /dev/null --get "$url/api/v1/query" --data-urlencode "query=$q")
    args+=(--next)
  done
  curl -s --no-progress-meter --parallel --parallel-max 8 "${args[@]}" -o /dev/null "$url/-/healthy" 2>/dev/null
}

sleep 10 # a few scrapes in, so the queries have data
w_cpu=(); w_qps=(); w_prom=(); r_cpu=(); r_qps=(); r_prom=(); base_prom=()
for run in $(seq "$runs"); do
  # Prometheus alone.
  p1=$(ticks "$prom_pid"); sleep "$secs"; p2=$(ticks "$prom_pid")
  base=$(pct $(( p2 - p1 )))

  # watchpost with the 200-figure dashboard.
  pid=$(start_in_tmux "$sock" load "$bin run --no-record --config $config")
  sleep 3
  # The dashboard on screen: the Figures pane, zoomed, redrawn as figures come. Its number
  # depends on the panes the config feeds: Tab until it has the focus.
  for _ in 1 2 3 4 5 6 7 8 9; do
    tmux -L "$sock" capture-pane -p -t load | grep -q '▶[0-9] Figures' && break
    tmux -L "$sock" send-keys -t load Tab
    sleep 0.3
  done
  tmux -L "$sock" send-keys -t load Enter
  sleep 3 # the first round and the first frames
  t1=$(ticks "$pid"); p1=$(ticks "$prom_pid"); q1=$(answered)
  sleep "$secs"
  t2=$(ticks "$pid"); p2=$(ticks "$prom_pid"); q2=$(answered)
  tmux -L "$sock" send-keys -t load q
  sleep 1
  tmux -L "$sock" kill-server 2>/dev/null || true
  wcpu=$(pct $(( t2 - t1 ))); wq=$(qps "$q1" "$q2"); wp=$(pct $(( p2 - p1 )))

  # The reference client, for as long.
  p1=$(ticks "$prom_pid"); q1=$(answered)
  start=$SECONDS
  # `times` in the child shell reports what its curl children used.
  usage=$(bash -c "$(declare -f reference_round); $(declare -p queries url); end=\$((SECONDS + $secs)); while [ \$SECONDS -lt \$end ]; do reference_round; sleep 5; done; times" | tail -1)
  p2=$(ticks "$prom_pid"); q2=$(answered)
  elapsed=$(( SECONDS - start ))
  rcpu=$(awk -v u="$usage" -v t="$elapsed" 'BEGIN { split(u, f, " "); s = 0; for (i = 1; i <= 2; i++) { m = f[i]; sub(/s$/, "", m); split(m, p, "m"); s += p[1] * 60 + p[2] } printf "%.2f", 100 * s / t }')
  rq=$(awk -v a="$q1" -v b="$q2" -v t="$elapsed" 'BEGIN { printf "%.1f", (b - a - 1) / t }')
  rp=$(pct $(( p2 - p1 )))

  echo "run $run: watchpost ${wcpu}% of one core, ${wq} queries/s, Prometheus ${wp}% | reference (curl) ${rcpu}%, ${rq} queries/s, Prometheus ${rp}% | Prometheus alone ${base}%"
  w_cpu+=("$wcpu"); w_qps+=("$wq"); w_prom+=("$wp"); r_cpu+=("$rcpu"); r_qps+=("$rq"); r_prom+=("$rp"); base_prom+=("$base")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median: watchpost $(median "${w_cpu[@]}")% of one core, $(median "${w_qps[@]}") queries/s, Prometheus $(median "${w_prom[@]}")%;" \
  "reference $(median "${r_cpu[@]}")%, $(median "${r_qps[@]}") queries/s, Prometheus $(median "${r_prom[@]}")%;" \
  "Prometheus alone $(median "${base_prom[@]}")%"
