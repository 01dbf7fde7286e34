#!/usr/bin/env bash
# Memory benchmark through the real docker CLI (issue 13, items 3 and 5):
# the idle daemon's RSS and PSS, then the daemon-side memory per running
# container: PSS of the daemon plus every shim with N sleeping containers,
# minus the idle daemon's PSS, divided by N. It also prints one shim's
# smaps_rollup and the names ps shows for it. Needs root.
#
#   bash bench/memory.sh [containers] [skiffd binary]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
export PATH="/usr/local/go/bin:$PATH"
n=${1:-50}
bin=${2:-}
work=$(mktemp -d /tmp/skiffd-mbench-XXXXXX)
pids=()
cleanup() {
  export DOCKER_HOST=unix://$work/skiffd.sock
  docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1 || true
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
echo 'root:x:0:' > "$work/rootfs/etc/group"

pss() { awk '/^Pss:/ { s += $2 } END { print s + 0 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
rss() { awk '/^Rss:/ { s += $2 } END { print s + 0 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
kib2mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }
# shims lists the pids of the shims of this daemon: their command line
# names a directory under this benchmark's exec root.
shims() {
  for d in /proc/[0-9]*; do
    if tr '\0' ' ' 2>/dev/null <"$d/cmdline" | grep -q " shim $work/root/exec"; then echo "${d#/proc/}"; fi
  done
}

export DOCKER_HOST=unix://$work/skiffd.sock
"$bin" -H "$DOCKER_HOST" "${BENCH_SKIFFD_FLAGS[@]}" --data-root "$work/root/data" --exec-root "$work/root/exec" \
  --pidfile "$work/root/skiffd.pid" 2>"$work/skiffd.log" &
pids+=($!)
daemon=${pids[0]}
for _ in $(seq 1 300); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
tar -C "$work/rootfs" -c . | docker import - bench-busybox:1 >/dev/null
docker run --rm --network none bench-busybox:1 true
sleep 2
idle_pss=$(pss "$daemon")
idle_rss=$(rss "$daemon")
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "idle daemon: RSS $(kib2mib "$idle_rss") MiB, PSS $(kib2mib "$idle_pss") MiB"

for i in $(seq 1 "$n"); do docker run -d --network none bench-busybox:1 sleep 100000 >/dev/null; done
sleep 2
total=$(pss "$daemon")
count=0
for p in $(shims); do total=$((total + $(pss "$p"))); count=$((count + 1)); done
echo "$count shims; daemon PSS now $(kib2mib "$(pss "$daemon")") MiB"
echo "daemon-side memory per running container: $(awk -v t="$total" -v i="$idle_pss" -v n="$n" 'BEGIN { printf "%.3f", (t - i) / n / 1024 }') MiB"
one=$(shims | sed -n 1p)
echo "one shim (pid $one): comm=$(cat "/proc/$one/comm") cmdline=$(tr '\0' ' ' <"/proc/$one/cmdline") threads=$(ls "/proc/$one/task" | wc -l)"
grep -E '^(Rss|Pss|Pss_Anon|Pss_File|Anonymous)' "/proc/$one/smaps_rollup"
