#!/usr/bin/env bash
# Image throughput benchmark: docker import, save and load of a ~200 MB
# image through the real docker CLI, with the daemon's peak RSS per phase.
# Runs against skiffd, and against a dockerd it starts itself when Debian's
# docker.io is installed (own socket, data root, exec root and pidfile),
# then prints the ratios. Needs root.
#
#   bash bench/images.sh [size-in-MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
export PATH="/usr/local/go/bin:$PATH"
size_mb=${1:-200}
work=$(mktemp -d /tmp/skiffd-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "building skiffd and a ${size_mb} MiB rootfs in $work" >&2
CGO_ENABLED=0 go build -o "$work/skiffd" .
mkdir -p "$work/rootfs/data"
cp /bin/busybox "$work/rootfs/" 2>/dev/null || true
for i in $(seq 1 "$size_mb"); do head -c 1048576 /dev/urandom > "$work/rootfs/data/f$i"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
bytes=$(stat -c %s "$work/rootfs.tar")
sync

now() { date +%s.%N; }
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
reset_hwm() { echo 5 > "/proc/$1/clear_refs"; }
hwm() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# run_workload NAME DOCKER_HOST PID-of-the-process-holding-image-data
run_workload() {
  local name=$1 host=$2 pid=$3 t0 t1
  export DOCKER_HOST=$host
  reset_hwm "$pid"; t0=$(now)
  docker import "$work/rootfs.tar" bench:1 >/dev/null
  t1=$(now); imp=$(echo "$t1 - $t0" | bc); imp_rss=$(hwm "$pid")
  reset_hwm "$pid"; t0=$(now)
  docker save bench:1 -o "$work/$name-save.tar"
  t1=$(now); sav=$(echo "$t1 - $t0" | bc); sav_rss=$(hwm "$pid")
  docker rmi bench:1 >/dev/null
  sync
  reset_hwm "$pid"; t0=$(now)
  docker load -i "$work/$name-save.tar" >/dev/null
  t1=$(now); lod=$(echo "$t1 - $t0" | bc); lod_rss=$(hwm "$pid")
  docker rmi bench:1 >/dev/null
  rm -f "$work/$name-save.tar"
  printf '%-8s import %7s MB/s (%ss, peak RSS %s MiB)  save %7s MB/s (%ss, %s MiB)  load %7s MB/s (%ss, %s MiB)\n' \
    "$name" "$(rate "$imp")" "$imp" "$imp_rss" "$(rate "$sav")" "$sav" "$sav_rss" "$(rate "$lod")" "$lod" "$lod_rss"
  eval "${name}_imp=$imp ${name}_sav=$sav ${name}_lod=$lod"
}

mkdir -p "$work/skiffd-root"
"$work/skiffd" -H "unix://$work/skiffd.sock" "${BENCH_SKIFFD_FLAGS[@]}" --data-root "$work/skiffd-root/data" --exec-root "$work/skiffd-root/exec" \
  --pidfile "$work/skiffd-root/skiffd.pid" 2>"$work/skiffd.log" &
pids+=($!)
wait_sock "unix://$work/skiffd.sock"
echo "image of $((bytes / 1000000)) MB ($bytes bytes)"
run_workload skiffd "unix://$work/skiffd.sock" "${pids[0]}"

if command -v dockerd >/dev/null 2>&1; then
  mkdir -p "$work/dockerd-root"
  dockerd -H "unix://$work/dockerd.sock" --data-root "$work/dockerd-root/data" --exec-root "$work/dockerd-root/exec" \
    --pidfile "$work/dockerd-root/dockerd.pid" --iptables=false --bridge=none >"$work/dockerd.log" 2>&1 &
  pids+=($!)
  wait_sock "unix://$work/dockerd.sock"
  run_workload dockerd "unix://$work/dockerd.sock" "${pids[1]}"
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
  echo "skiffd speed-up over dockerd: import $(ratio "$dockerd_imp" "$skiffd_imp"), save $(ratio "$dockerd_sav" "$skiffd_sav"), load $(ratio "$dockerd_lod" "$skiffd_lod")"
else
  echo "dockerd not installed (apt-get install docker.io): no comparison run"
fi
