# Shared by the bench scripts (sourced from the repo root after `set -euo pipefail`).
#
# A script calls bench_init PREFIX first: it makes $work, a temp dir that
# holds every daemon's roots, sockets and logs, and traps EXIT, INT, TERM
# and HUP so that everything registered with on_exit (daemons, network
# namespaces, cgroups, mounts) is undone in reverse order even when the
# script is interrupted.
#
# Daemons: start_skiffd NAME [NETNS] [flags...] and start_dockerd NAME
# [NETNS] [flags...] start one on unix://$work/NAME.sock with roots under
# $work/NAME and set NAME_pid and NAME_host. dockerd (Debian's docker.io,
# when installed) runs in a private mount namespace whose /run is a tmpfs
# and whose /etc/docker is a directory of $work, so neither it nor the
# containerd it starts (state and root under $work/NAME too) writes to the
# host's /run or /etc; its containers' cgroups go under a cgroup parent
# named after $work, removed at exit. Without NETNS both run with
# BENCH_SKIFFD_FLAGS / --iptables=false --bridge=none and leave the host's
# links and firewall alone; with NETNS (made by make_netns) they run inside
# that network namespace, where their bridges and rules live and die.

# BENCH_SKIFFD_FLAGS turn bridge networking off: the benchmarks run their
# containers with --network none, and a benchmark daemon must leave the
# host's links and nf_tables alone.
BENCH_SKIFFD_FLAGS=(--bridge=none)
BENCH_DOCKERD_FLAGS=(--iptables=false --bridge=none)

export PATH="/usr/local/go/bin:$PATH"
_exit_cmds=()

# on_exit CMD registers CMD (a string for eval) to run at exit, last first.
on_exit() { _exit_cmds+=("$1"); }

_run_exit_cmds() {
  local i
  trap '' INT TERM HUP
  for ((i = ${#_exit_cmds[@]} - 1; i >= 0; i--)); do eval "${_exit_cmds[$i]}" || true; done
  _exit_cmds=()
}

# bench_init PREFIX makes $work and sets the traps.
bench_init() {
  work=$(mktemp -d "/tmp/skiffd-$1-XXXXXX")
  on_exit "rm -rf '$work'"
  on_exit "_umount_under '$work'"
  trap _run_exit_cmds EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
}

# _umount_under DIR lazily unmounts whatever is still mounted below DIR in
# this mount namespace.
_umount_under() {
  grep -o " $1[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}

# have_dockerd reports whether dockerd, containerd and runc are installed
# and BENCH_DAEMONS (default "skiffd dockerd") asks for dockerd.
have_dockerd() {
  [[ " ${BENCH_DAEMONS:-skiffd dockerd} " == *" dockerd "* ]] &&
    command -v dockerd >/dev/null 2>&1 && command -v containerd >/dev/null 2>&1
}

# build_skiffd sets $skiffd_bin: $SKIFFD_BIN when set, else a build of the
# worktree.
build_skiffd() {
  if [ -n "${SKIFFD_BIN:-}" ]; then
    skiffd_bin=$SKIFFD_BIN
  else
    mkdir -p "$work/bin" && CGO_ENABLED=0 go build -o "$work/bin/skiffd" .
    skiffd_bin=$work/bin/skiffd
  fi
}

# build_rootfs DIR makes a busybox rootfs in DIR with bench/loadgen.go
# built static into /bin/loadgen (the load client and server).
build_rootfs() {
  local dir=$1 a
  mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp"
  cp /bin/busybox "$dir/bin/"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
  echo 'root:x:0:' >"$dir/etc/group"
  build_loadgen
  cp "$loadgen" "$dir/bin/loadgen"
}

# build_loadgen sets $loadgen to a static build of bench/loadgen.go.
build_loadgen() {
  if [ -z "${loadgen:-}" ]; then
    mkdir -p "$work/bin" && CGO_ENABLED=0 go build -o "$work/bin/loadgen" bench/loadgen.go
    loadgen=$work/bin/loadgen
  fi
}

# wait_sock HOST waits up to 60 s for a daemon to answer at HOST.
wait_sock() {
  for _ in $(seq 1 600); do DOCKER_HOST=$1 docker version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "daemon at $1 did not start" >&2
  return 1
}

# make_netns NAME creates a network namespace with loopback up, deleted at
# exit (after the daemons in it are stopped).
make_netns() {
  ip netns add "$1"
  on_exit "ip netns del '$1' 2>/dev/null"
  ip -n "$1" link set lo up
}

# in_netns NETNS CMD... runs CMD in NETNS ("" is this namespace).
in_netns() {
  local ns=$1
  shift
  if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

# _nsprefix NETNS PRIVATE_RUN sets _pre to the words that run a daemon:
# as it is, or (with NETNS) in that network namespace and a private mount
# namespace with a sysfs of that network namespace (the cgroup mounts
# carried over; `ip netns exec` would drop them), and (with PRIVATE_RUN, a
# directory) a tmpfs on /run and PRIVATE_RUN/etc-docker on /etc/docker
# when that exists (creating it would touch the host). Each step execs the
# next, so $! names the daemon itself.
_nsprefix() {
  local ns=$1 private=$2
  _pre=()
  if [ -z "$ns" ] && [ -z "$private" ]; then return; fi
  if [ -n "$ns" ]; then _pre=(nsenter "--net=/run/netns/$ns"); fi
  mkdir -p "$work/cgroup-carry"
  # shellcheck disable=SC2016
  _pre+=(unshare -m --propagation private env "BENCH_NETNS=$ns" "BENCH_PRIVATE_RUN=$private" "BENCH_CG=$work/cgroup-carry" sh -c '
    set -e
    if [ -n "$BENCH_NETNS" ]; then
      mount --rbind /sys/fs/cgroup "$BENCH_CG"
      mount -t sysfs bench-sysfs /sys
      mount --rbind "$BENCH_CG" /sys/fs/cgroup
    fi
    if [ -n "$BENCH_PRIVATE_RUN" ]; then
      mount -t tmpfs -o mode=755 bench-run /run
      if [ -d /etc/docker ]; then mount --bind "$BENCH_PRIVATE_RUN/etc-docker" /etc/docker; fi
    fi
    exec "$@"' sh)
}

# start_skiffd NAME [NETNS] [flags...]
start_skiffd() {
  local name=$1 ns=${2:-} pid
  shift $(($# < 2 ? $# : 2))
  local flags=("$@")
  [ -n "$ns" ] || flags=("${BENCH_SKIFFD_FLAGS[@]}" "${flags[@]}")
  [ -n "${skiffd_bin:-}" ] || build_skiffd
  mkdir -p "$work/$name"
  _nsprefix "$ns" ""
  "${_pre[@]}" "$skiffd_bin" -H "unix://$work/$name.sock" "${flags[@]}" --data-root "$work/$name/data" \
    --exec-root "$work/$name/exec" --pidfile "$work/$name/skiffd.pid" 2>"$work/$name.log" &
  pid=$!
  on_exit "stop_daemon '$name' $pid"
  eval "${name}_pid=$pid ${name}_host=unix://$work/$name.sock"
  wait_sock "unix://$work/$name.sock"
}

# start_before NAME [NETNS] [flags...]: start_skiffd with $SKIFFD_BEFORE_BIN.
start_before() {
  local keep=${skiffd_bin:-}
  [ -n "$keep" ] || { build_skiffd; keep=$skiffd_bin; }
  skiffd_bin=$SKIFFD_BEFORE_BIN
  start_skiffd "$@"
  skiffd_bin=$keep
}

# start_dockerd NAME [NETNS] [flags...]: dockerd with a containerd of its
# own, as described at the top. The private /run hides a system
# containerd's socket (dockerd would use it instead of starting its own)
# and keeps key.json, plugin and shim socket directories off the host.
start_dockerd() {
  local name=$1 ns=${2:-} pid dir=$work/$1
  shift $(($# < 2 ? $# : 2))
  local flags=("$@")
  [ -n "$ns" ] || flags=("${BENCH_DOCKERD_FLAGS[@]}" "${flags[@]}")
  local cgparent
  cgparent=skiffd-bench-$(basename "$work")-$name
  mkdir -p "$dir/etc-docker"
  on_exit "_rm_cgroups '$cgparent'"
  _nsprefix "$ns" "$dir"
  "${_pre[@]}" dockerd -H "unix://$work/$name.sock" "${flags[@]}" --data-root "$dir/data" \
    --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" --cgroup-parent "/$cgparent" >"$work/$name.log" 2>&1 &
  pid=$!
  on_exit "stop_daemon '$name' $pid"
  eval "${name}_pid=$pid ${name}_host=unix://$work/$name.sock"
  wait_sock "unix://$work/$name.sock"
}

# containerd_pid NAME prints the pid of the containerd dockerd NAME started.
containerd_pid() {
  local d
  for d in /proc/[0-9]*; do
    if [ "$(cat "$d/comm" 2>/dev/null)" = containerd ] && [[ $(tr '\0' ' ' 2>/dev/null <"$d/cmdline") == *"$work/$1/"* ]]; then
      echo "${d#/proc/}"
      return
    fi
  done
}

# daemon_procs NAME prints the pids of every process on the daemon side of
# daemon NAME: the daemon, containerd and the shims, each of whose command
# line names the daemon's directory (containers' processes do not).
daemon_procs() {
  local d ps=() p c
  for d in /proc/[0-9]*; do
    # Read whole, not piped into grep -q: under pipefail a grep that stops
    # early fails the pipe (tr's SIGPIPE) and drops the process.
    c=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    if [[ $c == *"$work/$1/"* || $c == *"$work/$1."* ]]; then ps+=("${d#/proc/}"); fi
  done
  # Helpers whose command line names no path of the run: skiffd's
  # pre-started shim and dockerd's docker-proxy (children of the daemon;
  # the containers' own processes are not counted).
  for p in "${ps[@]}"; do
    ps+=($( (ps -o pid=,comm= --ppid "$p" 2>/dev/null || true) | awk '$2 == "skiffd-shim" || $2 == "docker-proxy" { print $1 }'))
  done
  [ ${#ps[@]} -eq 0 ] || printf '%s\n' "${ps[@]}" | sort -un
}

# stop_daemon NAME PID removes the daemon's containers (skiffd keeps them
# running across its own stop: live restore), stops it (SIGTERM, SIGKILL
# after 30 s) and then ends what is left of its processes by pid.
stop_daemon() {
  local name=$1 pid=$2 p
  kill -0 "$pid" 2>/dev/null || return 0
  DOCKER_HOST=unix://$work/$name.sock timeout 120 sh -c 'docker ps -aq | xargs -r docker rm -f' >/dev/null 2>&1 || true
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in $(daemon_procs "$name"); do kill -9 "$p" 2>/dev/null || true; done
}

# _rm_cgroups PARENT ends the processes left in the cgroup PARENT (a
# dockerd's containers) and removes it in every hierarchy.
_rm_cgroups() {
  local c p
  for c in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
    [ -d "$c" ] || continue
    for p in $(cat $(find "$c" -name cgroup.procs) 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  done
  for c in /sys/fs/cgroup/*/"$1" /sys/fs/cgroup/"$1"; do
    [ -d "$c" ] || continue
    for _ in $(seq 1 50); do
      find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
      [ -d "$c" ] || break
      sleep 0.1
    done
  done
}

# daemons prints the daemons to measure: skiffd, and dockerd when installed.
daemons() {
  echo skiffd
  # SKIFFD_BEFORE_BIN adds a column for another skiffd build (an earlier
  # commit), measured in the same sitting as the others.
  if [ -n "${SKIFFD_BEFORE_BIN:-}" ]; then echo before; fi
  if have_dockerd; then echo dockerd; else echo "dockerd not installed (apt-get install docker.io): skiffd only" >&2; fi
}

# median reads numbers, one a line, and prints their median.
median() {
  sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# now_ms prints the wall clock in milliseconds (bash 5's EPOCHREALTIME: no
# process per reading).
now_ms() { awk -v t="$EPOCHREALTIME" 'BEGIN { printf "%.3f", t * 1000 }'; }

# Results: label KEY TEXT names a table row; put KEY DAEMON VALUE fills a
# cell; print_table prints every labelled row in order, one column per
# daemon measured.
declare -A _cells
_keys=()
_labels=()
label() { _keys+=("$1"); _labels+=("$2"); }
put() {
  _cells[$1,$2]=$3
  printf '  %-8s %-24s %s\n' "$2" "$1" "$3"
}
print_table() {
  local i d cols=() line
  mapfile -t cols < <(daemons 2>/dev/null)
  line="| what |"
  for d in "${cols[@]}"; do line+=" $d |"; done
  echo
  echo "$line"
  line="|---|"
  for d in "${cols[@]}"; do line+="---|"; done
  echo "$line"
  for i in "${!_keys[@]}"; do
    line="| ${_labels[$i]} |"
    for d in "${cols[@]}"; do line+=" ${_cells[${_keys[$i]},$d]:--} |"; done
    echo "$line"
  done
  echo
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# rss_kib PID... prints the sum of the processes' Rss, pss_kib their Pss
# (smaps_rollup), in KiB.
rss_kib() {
  local p s=0 v
  for p in "$@"; do v=$(awk '/^Rss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true); s=$((s + ${v:-0})); done
  echo "$s"
}
pss_kib() {
  local p s=0 v
  for p in "$@"; do v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true); s=$((s + ${v:-0})); done
  echo "$s"
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# start_daemons builds skiffd and the busybox rootfs, sets ds to the
# daemons to measure and starts each with bench-busybox:1 imported.
start_daemons() {
  local d h
  build_skiffd
  build_rootfs "$work/rootfs"
  mapfile -t ds < <(daemons)
  for d in "${ds[@]}"; do
    "start_$d" "$d"
    h=${d}_host
    import_image "${!h}" "$work/rootfs" bench-busybox:1
  done
}

# import_image HOST DIR REF imports DIR as image REF.
import_image() { tar -C "$2" -c . | DOCKER_HOST=$1 docker import - "$3" >/dev/null; }

# Transfer phases (images.sh, registry.sh): rate SECONDS is $bytes over
# SECONDS in MB/s; reset_hwm PID restarts PID's peak RSS, hwm PID prints it
# in MiB; secs T0 T1 is T1 - T0.
rate() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
reset_hwm() { echo 5 >"/proc/$1/clear_refs"; }
hwm() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# phase DAEMON KEY ARGS... times one docker command, with the daemon's
# peak RSS while it ran.
phase() {
  local d=$1 key=$2 pid h t0 t1 s
  shift 2
  pid=${d}_pid h=${d}_host
  reset_hwm "${!pid}"
  t0=$EPOCHREALTIME
  DOCKER_HOST=${!h} docker "$@" >/dev/null
  t1=$EPOCHREALTIME
  s=$(secs "$t0" "$t1")
  put "$key" "$d" "$(rate "$s") (${s} s, $(hwm "${!pid}") MiB)"
}
