# CPU time of processes from /proc, as a share of one core: sourced by the benchmark
# scripts (idle-cpu.sh, docker-cpu.sh, prometheus-load.sh), which set $secs, the length of
# one measured interval.
hz=$(getconf CLK_TCK)
# utime+stime of a whole process (every thread), in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# A difference of ticks over $secs seconds, as a percentage of one core.
pct() { awk -v d="$1" -v hz="$hz" -v t="$secs" 'BEGIN { printf "%.2f", 100 * d / hz / t }'; }
# Starts COMMAND in a detached 200x60 tmux session SESSION on socket SOCK and prints the
# pid of the process running it (waits up to 10 s for it to appear).
start_in_tmux() {
  local sock=$1 session=$2 command=$3 pid=""
  tmux -L "$sock" new-session -d -s "$session" -x 200 -y 60 "$command"
  for _ in $(seq 50); do
    pid=$(pgrep -n -f "^$command" || true)
    [ -n "$pid" ] && { echo "$pid"; return 0; }
    sleep 0.2
  done
  echo "$command did not start" >&2
  return 1
}
