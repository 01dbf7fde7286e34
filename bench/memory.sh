#!/usr/bin/env bash
# Memory benchmark (issue 13, rows 6 and 7) for skiffd and, when Debian's
# docker.io is installed, dockerd (see lib.sh), both running at once:
#   - the idle daemon's RSS and PSS (dockerd: dockerd + its containerd,
#     each also shown alone), after one container has run;
#   - daemon-side memory per running container: PSS of the daemon and
#     everything it runs for its containers (skiffd: its shims; dockerd:
#     containerd and the containerd-shim-runc-v2 processes) with N
#     sleeping containers, minus the idle PSS, divided by N;
#   - the same for N more containers that each wrote ~1 MB of output
#     (seq 1 150000, logged) before they went to sleep: what a shim keeps
#     after a burst of output.
# It also prints one skiffd shim's smaps_rollup and the names ps shows for
# it. Needs root.
#
#   bash bench/memory.sh [containers]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
n=${1:-50}
bench_init mbench
start_daemons
for d in "${ds[@]}"; do
  h=${d}_host
  DOCKER_HOST=${!h} docker run --rm --network none bench-busybox:1 true
done
# Idle is quiet: past skiffd's 5 s without requests, after which it gives
# back what the work left (memtrim), as a host that is not being driven
# sees it; its shims do so after 1 s.
quiet=7
sleep $quiet

label idle_rss "idle daemon RSS, MiB"
label idle_pss "idle daemon PSS, MiB"
label per "daemon-side memory per running container (PSS over $n sleeping containers, minus idle, / $n), MiB"
label per_out "the same per container that wrote ~1 MB of output first, MiB"
label procs "daemon-side processes with $n containers"

for d in "${ds[@]}"; do
  mapfile -t ps < <(daemon_procs "$d")
  idle_pss=$(pss_kib "${ps[@]}")
  eval "${d}_idle=$idle_pss"
  if [ "$d" = dockerd ]; then
    c=$(containerd_pid dockerd)
    put idle_rss "$d" "$(mib "$(rss_kib "${ps[@]}")") (dockerd $(mib "$(rss_kib "$dockerd_pid")") + containerd $(mib "$(rss_kib "$c")"))"
    put idle_pss "$d" "$(mib "$idle_pss") (dockerd $(mib "$(pss_kib "$dockerd_pid")") + containerd $(mib "$(pss_kib "$c")"))"
  else
    put idle_rss "$d" "$(mib "$(rss_kib "${ps[@]}")")"
    put idle_pss "$d" "$(mib "$idle_pss")"
  fi
done

for _ in $(seq 1 "$n"); do
  for d in "${ds[@]}"; do
    h=${d}_host
    DOCKER_HOST=${!h} docker run -d --network none bench-busybox:1 sleep 100000 >/dev/null
  done
done
sleep $quiet
for d in "${ds[@]}"; do
  mapfile -t ps < <(daemon_procs "$d")
  total=$(pss_kib "${ps[@]}")
  idle=${d}_idle
  eval "${d}_quiet=$total"
  put per "$d" "$(awk -v t="$total" -v i="${!idle}" -v n="$n" 'BEGIN { printf "%.2f", (t - i) / n / 1024 }')"
  put procs "$d" "${#ps[@]}"
done

for _ in $(seq 1 "$n"); do
  for d in "${ds[@]}"; do
    h=${d}_host
    DOCKER_HOST=${!h} docker run -d --network none bench-busybox:1 sh -c 'seq 1 150000; exec sleep 100000' >/dev/null
  done
done
sleep $quiet
for d in "${ds[@]}"; do
  mapfile -t ps < <(daemon_procs "$d")
  total=$(pss_kib "${ps[@]}")
  quiet=${d}_quiet
  put per_out "$d" "$(awk -v t="$total" -v q="${!quiet}" -v n="$n" 'BEGIN { printf "%.2f", (t - q) / n / 1024 }')"
done

shim=$(daemon_procs skiffd | grep -vx "$skiffd_pid" | sed -n 1p)
if [ -n "$shim" ]; then
  echo "one skiffd shim (pid $shim): comm=$(cat "/proc/$shim/comm") cmdline=$(tr '\0' ' ' <"/proc/$shim/cmdline") threads=$(ls "/proc/$shim/task" | wc -l)"
  grep -E '^(Rss|Pss|Pss_Anon|Pss_File|Anonymous)' "/proc/$shim/smaps_rollup"
fi
print_table
