#!/usr/bin/env bash
# Measures the CPU cost of watching N running containers, side by side in one run:
# `watchpost run` with one [docker] source, and `docker stats` on the same containers,
# each in its own tmux pane at 200x60, both started fresh for every run. CPU time is
# utime+stime of each client process (every thread) from /proc/PID/stat over the same
# interval, as a percentage of one core. Prints each run, the medians and their ratio.
# The engine's own work (dockerd reading cgroups for both clients) is printed apart.
#
# The containers run `sleep` in a FROM-scratch image with a static busybox (Debian:
# busybox-static), as in tests/it/docker.rs; everything the script creates is labelled and
# removed when it exits, however it exits.
#
# Usage: scripts/docker-cpu.sh [containers] [seconds-per-run] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-50}
secs=${2:-60}
runs=${3:-3}
bin=target/release/watchpost
[ -x "$bin" ] || cargo build --release
busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || {
  echo "needs a static busybox at $busybox (apt-get install -y busybox-static)" >&2
  exit 1
}

tag=$$
image="watchpost-bench-busybox:$tag"
project="watchpost-bench-$tag"
label="watchpost.bench=$tag"
work=$(mktemp -d)
sock="watchpost-bench-$tag"

cleanup() {
  tmux -L "$sock" kill-server 2>/dev/null || true
  rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$sock"
  docker ps -aq --filter "label=$label" | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The image: busybox and a `sleep` link, nothing else.
mkdir -p "$work/image/rootfs/bin"
cp "$busybox" "$work/image/rootfs/bin/busybox"
ln -s busybox "$work/image/rootfs/bin/sleep"
printf 'FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/sleep", "3600"]\n' >"$work/image/Dockerfile"
docker build -q --label "$label" -t "$image" "$work/image" >/dev/null 2>"$work/build.log" || {
  cat "$work/build.log" >&2
  exit 1
}

names=()
for i in $(seq "$count"); do
  name="$project-svc$i-1"
  docker run -d --name "$name" --label "$label" \
    --label "com.docker.compose.project=$project" \
    --label "com.docker.compose.service=svc$i" \
    "$image" >/dev/null
  names+=("$name")
done

cat >"$work/bench.toml" <<EOF
[deployment]
name = "docker-bench"

[docker.bench]
project = "$project"
interval = "2s"
EOF

. scripts/lib/cpu.sh
dockerd=$(pgrep -o -x dockerd || true)

ours=()
theirs=()
ratios=()
for run in $(seq "$runs"); do
  tmux -L "$sock" new-session -d -s watchpost -x 200 -y 60 \
    "exec $bin run --config $work/bench.toml --no-record"
  tmux -L "$sock" new-session -d -s stats -x 200 -y 60 "exec docker stats ${names[*]}"
  sleep 10 # start-up: the first listing, 50 inspects and stats streams, first frames
  wp=$(tmux -L "$sock" display-message -p -t watchpost '#{pane_pid}')
  ds=$(tmux -L "$sock" display-message -p -t stats '#{pane_pid}')
  grep -q watchpost "/proc/$wp/cmdline" || { echo "watchpost did not start" >&2; exit 1; }
  grep -q docker "/proc/$ds/cmdline" || { echo "docker stats did not start" >&2; exit 1; }
  w1=$(ticks "$wp"); s1=$(ticks "$ds"); e1=$([ -n "$dockerd" ] && ticks "$dockerd" || echo 0)
  sleep "$secs"
  w2=$(ticks "$wp"); s2=$(ticks "$ds"); e2=$([ -n "$dockerd" ] && ticks "$dockerd" || echo 0)
  shown=$(tmux -L "$sock" capture-pane -p -t watchpost | grep -c "svc" || true)
  tmux -L "$sock" send-keys -t watchpost q
  tmux -L "$sock" send-keys -t stats C-c
  sleep 1
  tmux -L "$sock" kill-server 2>/dev/null || true
  w=$(pct $((w2 - w1)))
  s=$(pct $((s2 - s1)))
  e=$(pct $((e2 - e1)))
  r=$(awk -v a="$w" -v b="$s" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }')
  echo "run $run: watchpost ${w}% · docker stats ${s}% of one core over ${secs}s (ratio ${r}; dockerd ${e}% serving both; ${shown} container rows on watchpost's screen)"
  ours+=("$w")
  theirs+=("$s")
  ratios+=("$r")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mo=$(median "${ours[@]}")
mt=$(median "${theirs[@]}")
echo "median of $runs runs, $count containers: watchpost ${mo}% · docker stats ${mt}% of one core · ratio of medians $(awk -v a="$mo" -v b="$mt" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }') · median ratio $(median "${ratios[@]}")"
