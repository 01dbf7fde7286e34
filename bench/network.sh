#!/usr/bin/env bash
# Network benchmark (issue 14) for skiffd and, when Debian's docker.io is
# installed, dockerd. Each daemon runs with its default networking (skiffd:
# its bridge and nf_tables table; dockerd: docker0, iptables and
# docker-proxy) inside a network namespace this script creates, and the
# load clients run there too, so bridges, rules and the FORWARD policy live
# and die in those namespaces and the host's firewall and links are never
# touched. bench/loadgen.go is both the server (in a container) and the
# client:
#   - TCP throughput of one stream through a port published on 127.0.0.1
#     (median of RUNS runs of 3 s);
#   - TCP connection rate through it: connect, one byte each way, server
#     closes; 4 clients (median of RUNS runs of 3 s);
#   - container-to-container TCP throughput on a user-defined network
#     (median of RUNS);
#   - `docker run --rm busybox true` on the default bridge and with
#     --network none (medians of 4*RUNS, alternating), and the difference:
#     the time networking adds.
# Needs root, ip (iproute2) and unshare.
#
#   bash bench/network.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
runs=${1:-5}
bench_init nbench
build_skiffd
build_rootfs "$work/rootfs"
mapfile -t ds < <(daemons)
for d in "${ds[@]}"; do
  ns=skb-$(basename "$work" | tr -dc 'a-zA-Z0-9' | tail -c 6)-$d
  eval "${d}_ns=$ns"
  make_netns "$ns"
  "start_$d" "$d" "$ns"
  h=${d}_host
  import_image "${!h}" "$work/rootfs" bench-busybox:1
  export DOCKER_HOST=${!h}
  docker run -d --name bench-pub -p 127.0.0.1:15000:5000 bench-busybox:1 loadgen serve -l :5000 >/dev/null
  docker network create bench-net >/dev/null
  docker run -d --name bench-peer --network bench-net bench-busybox:1 loadgen serve -l :5000 >/dev/null
  ip netns exec "$ns" "$loadgen" wait -addr 127.0.0.1:15000
  if [ "$d" = dockerd ]; then
    # What carries the published port: docker-proxy, dockerd's child.
    echo "dockerd's docker-proxy processes: $(ps -o comm= --ppid "$dockerd_pid" | grep -c docker-proxy)"
  fi
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' bench-peer)
  eval "${d}_peer=$ip:5000"
  docker run --rm --network none bench-busybox:1 true # warm caches
  docker run --rm bench-busybox:1 true
  unset DOCKER_HOST
  : >"$work/$d.tput"
  : >"$work/$d.conn"
  : >"$work/$d.c2c"
  : >"$work/$d.none"
  : >"$work/$d.bridge"
done

label tput "TCP throughput, one stream through \`-p 127.0.0.1:15000:5000\` (median of $runs × 3 s), MB/s"
label conn "TCP connections through the published port, 4 clients (median of $runs × 3 s), conn/s"
label c2c "container-to-container TCP throughput, user-defined network (median of $runs × 3 s), MB/s"
label none "\`docker run --rm --network none busybox true\` (median of $((4 * runs))), ms"
label bridge "\`docker run --rm busybox true\`, default bridge (median of $((4 * runs))), ms"
label netcost "time networking adds to \`docker run --rm\` (bridge − none), ms"

for _ in $(seq 1 "$runs"); do
  for d in "${ds[@]}"; do
    ns=${d}_ns
    ip netns exec "${!ns}" "$loadgen" tput -addr 127.0.0.1:15000 -d 3s | awk '{ print $2 }' >>"$work/$d.tput"
  done
done
for _ in $(seq 1 "$runs"); do
  for d in "${ds[@]}"; do
    ns=${d}_ns
    ip netns exec "${!ns}" "$loadgen" conn -addr 127.0.0.1:15000 -d 3s -c 4 | awk '{ print $2 }' >>"$work/$d.conn"
  done
done
for _ in $(seq 1 "$runs"); do
  for d in "${ds[@]}"; do
    h=${d}_host peer=${d}_peer
    DOCKER_HOST=${!h} docker run --rm --network bench-net bench-busybox:1 loadgen tput -addr "${!peer}" -d 3s |
      awk '{ print $2 }' >>"$work/$d.c2c"
  done
done

# time_run DAEMON ARGS... prints the milliseconds `docker run --rm ARGS` takes.
time_run() {
  local h=${1}_host t0 t1
  shift
  t0=$EPOCHREALTIME
  DOCKER_HOST=${!h} docker run --rm "$@" >/dev/null
  t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'
}
for _ in $(seq 1 $((4 * runs))); do
  for d in "${ds[@]}"; do
    time_run "$d" --network none bench-busybox:1 true >>"$work/$d.none"
    time_run "$d" bench-busybox:1 true >>"$work/$d.bridge"
  done
done

for d in "${ds[@]}"; do
  put tput "$d" "$(median <"$work/$d.tput")"
  put conn "$d" "$(median <"$work/$d.conn")"
  put c2c "$d" "$(median <"$work/$d.c2c")"
  none=$(median <"$work/$d.none")
  bridge=$(median <"$work/$d.bridge")
  put none "$d" "$none"
  put bridge "$d" "$bridge"
  put netcost "$d" "$(awk -v a="$bridge" -v b="$none" 'BEGIN { printf "%.1f", a - b }')"
done
print_table
