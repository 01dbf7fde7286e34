#!/usr/bin/env bash
# Logs throughput benchmark: a container writes ~210 MB of short lines to its
# json-file log; then GET /containers/{id}/logs after it exited (curl, the
# API alone), the same with follow=1 while a second container writes it, and
# `docker logs` through the real CLI. Runs skiffd, and dockerd when Debian's
# docker.io is installed, each on its own socket and roots. Needs root.
#
#   bash bench/logs.sh [megabytes]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
export PATH="/usr/local/go/bin:$PATH"
mb=${1:-210}
work=$(mktemp -d /tmp/skiffd-lbench-XXXXXX)
pids=()
cleanup() {
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

now() { date +%s.%N; }
# cpu PID: the process's user+system time in clock ticks.
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rate() { awk -v b="$1" -v s="$2" -v e="$3" 'BEGIN { printf "%.0f", b / (e - s) / 1e6 }'; }
# 44-byte lines of output, ~mb MB in all.
writer="yes 'the quick brown fox jumps over the lazy d' | head -c ${mb}000000"

# bench NAME SOCKET PID
bench() {
  local name=$1 sock=$2 pid=$3 id bytes t0 t1 c0 c1 api apicpu follow cli
  export DOCKER_HOST=unix://$sock
  tar -C "$work/rootfs" -c . | docker import - bench-busybox:1 >/dev/null
  t0=$(now)
  id=$(docker run -d --network none bench-busybox:1 sh -c "$writer")
  docker wait "$id" >/dev/null
  t1=$(now)
  local wt0=$t0 wt1=$t1
  curl -s --unix-socket "$sock" "http://x/containers/$id/logs?stdout=1&stderr=1" >/dev/null # warm the page cache
  c0=$(cpu "$pid")
  t0=$(now); bytes=$(curl -s --unix-socket "$sock" "http://x/containers/$id/logs?stdout=1&stderr=1" | wc -c); t1=$(now)
  c1=$(cpu "$pid")
  api=$(rate "$bytes" "$t0" "$t1")
  # The machine may be shared: the daemon's own CPU time says what it
  # would do alone (MB sent per CPU second it spent).
  apicpu=$(awk -v b="$bytes" -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { if (c == 0) c = 1; printf "%.0f", b / (c / hz) / 1e6 }')
  t0=$(now); docker logs "$id" >/dev/null; t1=$(now)
  cli=$(rate "$bytes" "$t0" "$t1")
  # Follow from the start while a second container writes the same log; the
  # rate is bounded by the writer (busybox yes through the shim) too.
  t0=$(now)
  id=$(docker run -d --network none bench-busybox:1 sh -c "$writer")
  curl -s --unix-socket "$sock" "http://x/containers/$id/logs?stdout=1&stderr=1&follow=1" >"$work/follow.out"
  t1=$(now)
  follow=$(rate "$(wc -c <"$work/follow.out")" "$t0" "$t1")
  rm -f "$work/follow.out"
  # The follower cannot outrun the writer: its rate alone (output bytes,
  # ~1/1.2 of the framed ones) bounds the follow=1 figure.
  printf '%-8s %s MB framed: logs after exit (API) %5s MB/s (%s MB per daemon CPU s)   follow=1 while written %5s MB/s (writer alone %s MB/s)   docker logs (CLI) %5s MB/s\n' \
    "$name" "$((bytes / 1000000))" "$api" "$apicpu" "$follow" "$(rate "$bytes" "$wt0" "$wt1")" "$cli"
}

"$work/skiffd" -H "unix://$work/skiffd.sock" "${BENCH_SKIFFD_FLAGS[@]}" --data-root "$work/skiffd-root/data" --exec-root "$work/skiffd-root/exec" \
  --pidfile "$work/skiffd-root/skiffd.pid" 2>"$work/skiffd.log" &
pids+=($!)
wait_sock "unix://$work/skiffd.sock"
bench skiffd "$work/skiffd.sock" "${pids[-1]}"

if command -v dockerd >/dev/null 2>&1; then
  dockerd -H "unix://$work/dockerd.sock" --data-root "$work/dockerd/data" --exec-root "$work/dockerd/exec" \
    --pidfile "$work/dockerd/dockerd.pid" --iptables=false --bridge=none >"$work/dockerd.log" 2>&1 &
  pids+=($!)
  wait_sock "unix://$work/dockerd.sock"
  bench dockerd "$work/dockerd.sock" "${pids[-1]}"
else
  echo "dockerd not installed (apt-get install docker.io): no comparison run"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
