#!/usr/bin/env bash
# Container benchmark (issue 13, rows 1, 2 and 8) for skiffd and, when
# Debian's docker.io is installed, a dockerd (with its own containerd)
# started on its own socket and roots (see lib.sh); both run at once and
# every measurement alternates between them, so load from elsewhere hits
# both alike:
#   - `docker run --rm --network none busybox true` through the real CLI
#     (median of RUNS);
#   - `docker exec` of `true` in a running container (median of RUNS);
#   - API create / start / wait / rm of a `true` container, one client
#     (bench/loadgen.go; medians of RUNS), the daemons' containers
#     interleaved; and the same after 7 s without requests each time
#     (QUIET runs, 10 by default), what a host that runs a container now
#     and then sees: skiffd has by then given back what its work touched
#     (memtrim), which the next request faults back in;
#   - GET /containers/json?all=1 with 100 (created) containers, one client
#     on one kept-alive connection: requests a second (median of 5 runs).
# Needs root.
#
#   bash bench/containers.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
runs=${1:-20}
bench_init cbench
start_daemons
for d in "${ds[@]}"; do
  h=${d}_host
  DOCKER_HOST=${!h} docker run --rm --network none bench-busybox:1 true # warm caches
done

label run "\`docker run --rm --network none busybox true\` (CLI, median of $runs), ms"
label exec "\`docker exec\` true (CLI, median of $runs), ms"
label api "API create / start / wait / rm (medians of $runs), ms"
quiet_runs=${QUIET:-10}
label api_quiet "the same, each after 7 s without requests (medians of $quiet_runs), ms"
label list "\`GET /containers/json?all=1\`, 100 containers, one client, req/s (median of 5)"

# time_cli DAEMON ARGS... prints the milliseconds one docker command takes.
time_cli() {
  local h=${1}_host t0 t1
  shift
  t0=$EPOCHREALTIME
  DOCKER_HOST=${!h} docker "$@" >/dev/null
  t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'
}

for d in "${ds[@]}"; do : >"$work/$d.run"; done
for _ in $(seq 1 "$runs"); do
  for d in "${ds[@]}"; do time_cli "$d" run --rm --network none bench-busybox:1 true >>"$work/$d.run"; done
done
for d in "${ds[@]}"; do put run "$d" "$(median <"$work/$d.run")"; done

for d in "${ds[@]}"; do
  h=${d}_host
  DOCKER_HOST=${!h} docker run -d --name bench-exec --network none bench-busybox:1 sleep 100000 >/dev/null
  : >"$work/$d.exec"
done
for _ in $(seq 1 "$runs"); do
  for d in "${ds[@]}"; do time_cli "$d" exec bench-exec true >>"$work/$d.exec"; done
done
for d in "${ds[@]}"; do
  put exec "$d" "$(median <"$work/$d.exec")"
  h=${d}_host
  DOCKER_HOST=${!h} docker rm -f bench-exec >/dev/null
done

# One loadgen for all daemons, container by container in a shuffled order:
# run in blocks, one daemon after the other, drift on the host showed as
# a difference between them.
socks=$(for d in "${ds[@]}"; do printf '%s,' "$work/$d.sock"; done)
"$loadgen" api -sock "${socks%,}" -image bench-busybox:1 -n "$runs" >"$work/api.out"
i=0
for d in "${ds[@]}"; do
  i=$((i + 1))
  put api "$d" "$(sed -n "${i}p" "$work/api.out" | sed 's/^api //; s/ ms, medians.*//')"
done
"$loadgen" api -sock "${socks%,}" -image bench-busybox:1 -n "$quiet_runs" -pause 7s >"$work/api-quiet.out"
i=0
for d in "${ds[@]}"; do
  i=$((i + 1))
  put api_quiet "$d" "$(sed -n "${i}p" "$work/api-quiet.out" | sed 's/^api //; s/ ms, medians.*//')"
done

for d in "${ds[@]}"; do
  h=${d}_host
  for i in $(seq 1 100); do DOCKER_HOST=${!h} docker create --name "bench-list-$i" --network none bench-busybox:1 true >/dev/null; done
  : >"$work/$d.list"
done
for _ in 1 2 3 4 5; do
  for d in "${ds[@]}"; do
    "$loadgen" list -sock "$work/$d.sock" -d 2s -runs 1 | awk '{ print $2 }' >>"$work/$d.list"
  done
done
for d in "${ds[@]}"; do put list "$d" "$(median <"$work/$d.list")"; done

print_table
