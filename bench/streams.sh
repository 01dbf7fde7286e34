#!/usr/bin/env bash
# Memory per open stream: the daemon's VmRSS and Pss (smaps_rollup) idle,
# with 120 streams open (40 each of logs follow=1, events, stats on one
# running container, held by curl), and a minute after they close. Needs root.
#
#   bash bench/streams.sh [per-kind] [settle-seconds] [skiffd binary]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
export PATH="/usr/local/go/bin:$PATH"
n=${1:-40}
settle=${2:-60}
bin=${3:-}
work=$(mktemp -d /tmp/skiffd-sbench-XXXXXX)
pids=()
curls=()
cleanup() {
  for p in "${curls[@]}"; do kill "$p" 2>/dev/null || true; done
  DOCKER_HOST=unix://$work/skiffd.sock docker rm -f bench-streams >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "$bin" ]; then
  CGO_ENABLED=0 go build -o "$work/skiffd" .
  bin=$work/skiffd
fi
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
mem() { printf 'VmRSS %6.1f MiB  Pss %6.1f MiB  threads %3d' "$(awk '/VmRSS/ {print $2/1024}' /proc/$1/status)" "$(awk '/^Pss:/ {print $2/1024}' /proc/$1/smaps_rollup)" "$(awk '/^Threads:/ {print $2}' /proc/$1/status)"; }

sock=$work/skiffd.sock
"$bin" -H "unix://$sock" "${BENCH_SKIFFD_FLAGS[@]}" --data-root "$work/root/data" --exec-root "$work/root/exec" \
  --pidfile "$work/root/skiffd.pid" 2>"$work/skiffd.log" &
pid=$!; pids+=($pid)
wait_sock "unix://$sock"
export DOCKER_HOST=unix://$sock
tar -C "$work/rootfs" -c . | docker import - bench-busybox:1 >/dev/null
docker run -d --name bench-streams --network none bench-busybox:1 sh -c 'while :; do echo tick; sleep 1; done' >/dev/null
sleep 2
idle_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "idle:            $(mem $pid)"
for _ in $(seq 1 "$n"); do
  curl -sN --unix-socket "$sock" "http://x/containers/bench-streams/logs?stdout=1&follow=1&tail=0" >/dev/null & curls+=($!)
  curl -sN --unix-socket "$sock" "http://x/events" >/dev/null & curls+=($!)
  curl -sN --unix-socket "$sock" "http://x/containers/bench-streams/stats" >/dev/null & curls+=($!)
done
sleep 5
open_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
echo "$((3 * n)) streams open: $(mem $pid)   per stream $(( (open_kb - idle_kb) / (3 * n) )) KiB"
for p in "${curls[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${curls[@]}"; do wait "$p" 2>/dev/null || true; done
curls=()
sleep "$settle"
echo "${settle}s after close: $(mem $pid)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
