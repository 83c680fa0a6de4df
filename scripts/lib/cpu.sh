# CPU time of processes from /proc, as a share of one core: sourced by the benchmark
# scripts (idle-cpu.sh, docker-cpu.sh, prometheus-load.sh), which set $secs, the length of
# one measured interval.
hz=$(getconf CLK_TCK)
# utime+stime of a whole process (every thread), in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# A difference of ticks over $secs seconds, as a percentage of one core.
pct() { awk -v d="$1" -v hz="$hz" -v t="$secs" 'BEGIN { printf "%.2f", 100 * d / hz / t }'; }
