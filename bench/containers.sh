#!/usr/bin/env bash
# Container benchmark through the real docker CLI: time per
# `docker run --rm --network none busybox true`, per `docker exec` into a
# running container, and the daemon's idle RSS, for skiffd and — when
# Debian's docker.io is installed — for a dockerd (with its containerd) this
# script starts itself on its own socket and roots. Needs root.
#
#   bash bench/containers.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
export PATH="/usr/local/go/bin:$PATH"
runs=${1:-20}
work=$(mktemp -d /tmp/skiffd-cbench-XXXXXX)
pids=()
cleanup() {
  for h in "unix://$work/skiffd.sock" "unix://$work/dockerd.sock"; do
    DOCKER_HOST=$h docker rm -f bench-web >/dev/null 2>&1 || true
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$work/skiffd" .
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
echo 'root:x:0:' > "$work/rootfs/etc/group"

rss() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
ms_per() { awk -v s="$1" -v e="$2" -v n="$3" 'BEGIN { printf "%.1f", (e - s) * 1000 / n }'; }

# bench NAME HOST PID
bench() {
  local name=$1 pid=$3 t0 t1
  export DOCKER_HOST=$2
  tar -C "$work/rootfs" -c . | docker import - bench-busybox:1 >/dev/null
  docker run --rm --network none bench-busybox:1 true   # warm caches
  idle=$(rss "$pid")
  t0=$(date +%s.%N)
  for _ in $(seq 1 "$runs"); do docker run --rm --network none bench-busybox:1 true; done
  t1=$(date +%s.%N)
  run_ms=$(ms_per "$t0" "$t1" "$runs")
  docker run -d --name bench-web --network none bench-busybox:1 sleep 1000 >/dev/null
  t0=$(date +%s.%N)
  for _ in $(seq 1 "$runs"); do docker exec bench-web true; done
  t1=$(date +%s.%N)
  exec_ms=$(ms_per "$t0" "$t1" "$runs")
  docker rm -f bench-web >/dev/null
  printf '%-8s docker run --rm true: %6s ms   docker exec true: %6s ms   daemon RSS idle: %s MiB\n' "$name" "$run_ms" "$exec_ms" "$idle"
  eval "${name}_run=$run_ms ${name}_exec=$exec_ms"
}

"$work/skiffd" -H "unix://$work/skiffd.sock" "${BENCH_SKIFFD_FLAGS[@]}" --data-root "$work/skiffd-root/data" --exec-root "$work/skiffd-root/exec" \
  --pidfile "$work/skiffd-root/skiffd.pid" 2>"$work/skiffd.log" &
pids+=($!)
wait_sock "unix://$work/skiffd.sock"
bench skiffd "unix://$work/skiffd.sock" "${pids[0]}"

if command -v dockerd >/dev/null 2>&1; then
  dockerd -H "unix://$work/dockerd.sock" --data-root "$work/dockerd/data" --exec-root "$work/dockerd/exec" \
    --pidfile "$work/dockerd/dockerd.pid" --iptables=false --bridge=none >"$work/dockerd.log" 2>&1 &
  pids+=($!)
  wait_sock "unix://$work/dockerd.sock"
  bench dockerd "unix://$work/dockerd.sock" "${pids[1]}"
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }
  echo "skiffd speed-up over dockerd: run $(ratio "$dockerd_run" "$skiffd_run"), exec $(ratio "$dockerd_exec" "$skiffd_exec") (dockerd RSS excludes its containerd)"
else
  echo "dockerd not installed (apt-get install docker.io): no comparison run"
fi
