#!/usr/bin/env bash
# Logs throughput benchmark (issue 13, rows 3-5) for skiffd and, when
# Debian's docker.io is installed, dockerd (see lib.sh), both running at
# once, each measurement alternating between them: a container writes ~MB
# MB of short lines to its json-file log; then
#   - GET /containers/{id}/logs after it exited (curl, the API alone), with
#     the MB sent per second of the daemon's own CPU time (what it would do
#     alone on a shared machine);
#   - the same with follow=1 from the start while a second container writes
#     it (bounded by the writer: the container cats a page-cached file, so
#     the shim's pipe-to-json-file copy is the bound, not busybox yes);
#   - `docker logs` through the real CLI.
# Each is the median of RUNS. Needs root.
#
#   bash bench/logs.sh [megabytes] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
mb=${1:-210}
runs=${2:-3}
bench_init lbench
start_daemons

# cpu PID: the process's user+system time in clock ticks.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rate() { awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.1f", b / (e - s) / 1e6 }'; }
# 44-byte lines of output, ~mb MB in all, made once on the host and read
# by the container from a read-only bind: busybox yes writes a line per
# write(2) and would be the bound of every row (~160 MB/s here).
{ yes "the quick brown fox jumps over the lazy d" || true; } | head -c "${mb}000000" >"$work/lines"
writer="cat /lines"
wopts=(--network none -v "$work/lines:/lines:ro")

label api "\`GET /containers/{id}/logs\` of ~$mb MB of short lines after exit (API, median of $runs), MB/s"
label apicpu "the same, MB per second of daemon CPU"
label follow "the same with \`follow=1\` while it is written (median of $runs), MB/s"
label writer "the writer alone (bound of follow=1), MB/s"
label cli "\`docker logs\` through the CLI, same log (median of $runs), MB/s"

for d in "${ds[@]}"; do
  h=${d}_host
  t0=$EPOCHREALTIME
  id=$(DOCKER_HOST=${!h} docker run -d "${wopts[@]}" bench-busybox:1 $writer)
  DOCKER_HOST=${!h} docker wait "$id" >/dev/null
  t1=$EPOCHREALTIME
  eval "${d}_id=$id ${d}_wt0=$t0 ${d}_wt1=$t1"
  # Warm the page cache and learn the size of the framed answer.
  bytes=$(curl -s --unix-socket "$work/$d.sock" "http://x/containers/$id/logs?stdout=1&stderr=1" | wc -c)
  eval "${d}_bytes=$bytes"
  echo "$d: $((bytes / 1000000)) MB framed"
  : >"$work/$d.api"
  : >"$work/$d.apicpu"
  : >"$work/$d.cli"
  : >"$work/$d.follow"
done
hz=$(getconf CLK_TCK)
for _ in $(seq 1 "$runs"); do
  for d in "${ds[@]}"; do
    id=${d}_id bytes=${d}_bytes pid=${d}_pid
    c0=$(cpu "${!pid}")
    t0=$EPOCHREALTIME
    curl -s --unix-socket "$work/$d.sock" "http://x/containers/${!id}/logs?stdout=1&stderr=1" >/dev/null
    t1=$EPOCHREALTIME
    c1=$(cpu "${!pid}")
    rate "${!bytes}" "$t0" "$t1" >>"$work/$d.api"
    echo >>"$work/$d.api"
    awk -v b="${!bytes}" -v c=$((c1 - c0)) -v hz="$hz" 'BEGIN { if (c == 0) c = 1; printf "%.0f\n", b / (c / hz) / 1e6 }' >>"$work/$d.apicpu"
  done
done
for _ in $(seq 1 "$runs"); do
  for d in "${ds[@]}"; do
    id=${d}_id bytes=${d}_bytes h=${d}_host
    t0=$EPOCHREALTIME
    DOCKER_HOST=${!h} docker logs "${!id}" >/dev/null 2>&1
    t1=$EPOCHREALTIME
    rate "${!bytes}" "$t0" "$t1" >>"$work/$d.cli"
    echo >>"$work/$d.cli"
  done
done
for _ in $(seq 1 "$runs"); do
  for d in "${ds[@]}"; do
    h=${d}_host
    t0=$EPOCHREALTIME
    fid=$(DOCKER_HOST=${!h} docker run -d "${wopts[@]}" bench-busybox:1 $writer)
    curl -s --unix-socket "$work/$d.sock" "http://x/containers/$fid/logs?stdout=1&stderr=1&follow=1" >"$work/follow.out"
    t1=$EPOCHREALTIME
    rate "$(wc -c <"$work/follow.out")" "$t0" "$t1" >>"$work/$d.follow"
    echo >>"$work/$d.follow"
    rm -f "$work/follow.out"
    DOCKER_HOST=${!h} docker rm -f "$fid" >/dev/null
  done
done
for d in "${ds[@]}"; do
  bytes=${d}_bytes wt0=${d}_wt0 wt1=${d}_wt1
  put api "$d" "$(median <"$work/$d.api")"
  put apicpu "$d" "$(median <"$work/$d.apicpu")"
  put follow "$d" "$(median <"$work/$d.follow")"
  # The writer's output is ~1/1.2 of the framed bytes.
  put writer "$d" "$(rate "${!bytes}" "${!wt0}" "${!wt1}")"
  put cli "$d" "$(median <"$work/$d.cli")"
done
print_table
