#!/usr/bin/env bash
# Registry benchmark (issue 11): docker push of a ~N MiB image to Debian's
# docker-registry on loopback, then docker pull of it back into an empty
# skiffd, through the real docker CLI, with time and the daemon's peak RSS
# per phase (which must not grow with the image). Needs root and
# /usr/bin/docker-registry.
#
#   bash bench/registry.sh [size-in-MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
export PATH="/usr/local/go/bin:$PATH"
size_mb=${1:-200}
work=$(mktemp -d /tmp/skiffd-regbench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

CGO_ENABLED=0 go build -o "$work/skiffd" .
mkdir -p "$work/rootfs/data"
for i in $(seq 1 "$size_mb"); do head -c 1048576 /dev/urandom > "$work/rootfs/data/f$i"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
bytes=$(stat -c %s "$work/rootfs.tar")

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/reg.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/reg
http:
  addr: 127.0.0.1:$port
YML
/usr/bin/docker-registry serve "$work/reg.yml" 2>"$work/reg.log" & pids+=($!)

now() { date +%s.%N; }
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
reset_hwm() { echo 5 > "/proc/$1/clear_refs"; }
hwm() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

mkdir -p "$work/d"
"$work/skiffd" -H "unix://$work/s.sock" "${BENCH_SKIFFD_FLAGS[@]}" --data-root "$work/d/data" --exec-root "$work/d/exec" --pidfile "$work/d/pid" 2>"$work/skiffd.log" &
spid=$!; pids+=($spid)
wait_sock "unix://$work/s.sock"
export DOCKER_HOST="unix://$work/s.sock" DOCKER_CONFIG="$work/cfg"
ref=127.0.0.1:$port/bench/img:1
docker import "$work/rootfs.tar" "$ref" >/dev/null
sync
reset_hwm "$spid"; t0=$(now)
docker push "$ref" >/dev/null
t1=$(now); push=$(echo "$t1 - $t0" | bc); push_rss=$(hwm "$spid")
docker rmi "$ref" >/dev/null
sync
reset_hwm "$spid"; t0=$(now)
docker pull "$ref" >/dev/null
t1=$(now); pull=$(echo "$t1 - $t0" | bc); pull_rss=$(hwm "$spid")
printf 'skiffd %d MiB image: push %s MB/s (%ss, peak RSS %s MiB)  pull %s MB/s (%ss, peak RSS %s MiB)\n' \
  "$size_mb" "$(rate "$push")" "$push" "$push_rss" "$(rate "$pull")" "$pull" "$pull_rss"
