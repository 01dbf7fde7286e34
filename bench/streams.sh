#!/usr/bin/env bash
# Memory per open stream (issue 13, row 9) for skiffd and, when Debian's
# docker.io is installed, dockerd (see lib.sh), both at once: the daemon
# process's VmRSS (and Pss) idle, with 3*N streams open (N each of logs
# follow=1, events and stats on one running container, held by curl) 5 s
# and again 11 s after they opened, and SETTLE seconds after they close. dockerd's figure is dockerd's alone (its
# containerd serves no stream). Needs root.
#
#   bash bench/streams.sh [per-kind] [settle-seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
n=${1:-40}
settle=${2:-60}
bench_init sbench
build_skiffd
build_rootfs "$work/rootfs"
curls=()
on_exit 'for p in "${curls[@]}"; do kill "$p" 2>/dev/null; done'
mapfile -t ds < <(daemons)
for d in "${ds[@]}"; do
  "start_$d" "$d"
  h=${d}_host
  import_image "${!h}" "$work/rootfs" bench-busybox:1
  DOCKER_HOST=${!h} docker run -d --name bench-streams --network none bench-busybox:1 sh -c 'while :; do echo tick; sleep 1; done' >/dev/null
done
# Idle is quiet: past the 5 s without requests after which skiffd gives
# back what the work left, the binary's pages that the work touched too
# (memtrim), as the held figure below is.
sleep 7

label idle "daemon RSS idle (one running container), MiB"
label open "daemon RSS with $((3 * n)) streams open ($n each of logs -f, events, stats), MiB"
label per "per open stream 5 s after they opened (with the code their opening faulted back in), KiB"
label held "per open stream 11 s after they opened (after the idle trim), KiB"
label anon "per open stream, private (RssAnon) at 11 s, KiB"
label after "daemon RSS ${settle} s after they close, MiB"
label back "after close minus idle, MiB"
label pss "daemon PSS idle / open / after, MiB"

vmrss() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
# RssAnon leaves out the binary's pages, which the first streams fault in
# once (skiffd: again after each quiet period) and which are shared with
# every other skiffd process.
rssanon() { awk '/RssAnon/ { print $2 }' "/proc/$1/status"; }
for d in "${ds[@]}"; do
  p=${d}_pid
  eval "${d}_idle=$(vmrss "${!p}") ${d}_idlepss=$(pss_kib "${!p}") ${d}_idleanon=$(rssanon "${!p}")"
done
for _ in $(seq 1 "$n"); do
  for d in "${ds[@]}"; do
    sock=$work/$d.sock
    curl -sN --unix-socket "$sock" "http://x/containers/bench-streams/logs?stdout=1&follow=1&tail=0" >/dev/null &
    curls+=($!)
    curl -sN --unix-socket "$sock" "http://x/events" >/dev/null &
    curls+=($!)
    curl -sN --unix-socket "$sock" "http://x/containers/bench-streams/stats" >/dev/null &
    curls+=($!)
  done
done
sleep 5 # every stream sent its first answer (stats: one a second)
for p in "${curls[@]}"; do kill -0 "$p" 2>/dev/null || { echo "a stream closed early" >&2; exit 1; }; done
for d in "${ds[@]}"; do
  p=${d}_pid
  eval "${d}_open=$(vmrss "${!p}") ${d}_openpss=$(pss_kib "${!p}")"
done
# The same streams, still open, once the API has been quiet for longer than
# the daemon's idle trim waits (5 s): what a host with long-lived streams
# sees, without the garbage of the burst that opened them (issue 13).
sleep 6
for p in "${curls[@]}"; do kill -0 "$p" 2>/dev/null || { echo "a stream closed early" >&2; exit 1; }; done
for d in "${ds[@]}"; do
  p=${d}_pid
  eval "${d}_held=$(vmrss "${!p}") ${d}_heldanon=$(rssanon "${!p}")"
done
for p in "${curls[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${curls[@]}"; do wait "$p" 2>/dev/null || true; done
curls=()
sleep "$settle"
for d in "${ds[@]}"; do
  p=${d}_pid idle=${d}_idle open=${d}_open ip=${d}_idlepss op=${d}_openpss
  after=$(vmrss "${!p}")
  put idle "$d" "$(mib "${!idle}")"
  put open "$d" "$(mib "${!open}")"
  put per "$d" "$(((${!open} - ${!idle}) / (3 * n)))"
  held=${d}_held
  put held "$d" "$(((${!held} - ${!idle}) / (3 * n)))"
  ia=${d}_idleanon ha=${d}_heldanon
  put anon "$d" "$(((${!ha} - ${!ia}) / (3 * n)))"
  put after "$d" "$(mib "$after")"
  put back "$d" "$(mib $((after - ${!idle})))"
  put pss "$d" "$(mib "${!ip}") / $(mib "${!op}") / $(mib "$(pss_kib "${!p}")")"
done
print_table
