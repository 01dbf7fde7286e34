#!/usr/bin/env bash
# Registry benchmark (issue 11): docker push of a ~SIZE MiB image to
# Debian's docker-registry on loopback, then docker pull of it back after
# docker rmi, through the real docker CLI, with time and the daemon's peak
# RSS per phase (which must not grow with the image), for skiffd and, when
# Debian's docker.io is installed, dockerd (see lib.sh), one after the
# other, each with an empty registry of its own. Needs root and
# /usr/bin/docker-registry.
#
#   bash bench/registry.sh [size-in-MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
size_mb=${1:-200}
bench_init regbench
build_skiffd
mkdir -p "$work/rootfs/data"
for i in $(seq 1 "$size_mb"); do head -c 1048576 /dev/urandom >"$work/rootfs/data/f$i"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
bytes=$(stat -c %s "$work/rootfs.tar")
export DOCKER_CONFIG=$work/cfg

# registry NAME starts an empty docker-registry on a free loopback port
# and sets $port.
registry() {
  local pid
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$work/$1-reg.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/$1-reg
http:
  addr: 127.0.0.1:$port
YML
  /usr/bin/docker-registry serve "$work/$1-reg.yml" 2>"$work/$1-reg.log" &
  pid=$!
  on_exit "kill $pid; wait $pid"
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return 0; sleep 0.1; done
  echo "docker-registry did not start" >&2
  return 1
}

label push "\`docker push\` of a $size_mb MiB image, MB/s (s, daemon peak RSS MiB)"
label pull "\`docker pull\` of it, MB/s (s, daemon peak RSS MiB)"

for d in $(daemons); do
  registry "$d"
  "start_$d" "$d"
  h=${d}_host
  ref=127.0.0.1:$port/bench/img:1
  DOCKER_HOST=${!h} docker import "$work/rootfs.tar" "$ref" >/dev/null
  sync
  phase "$d" push push "$ref"
  DOCKER_HOST=${!h} docker rmi "$ref" >/dev/null
  sync
  phase "$d" pull pull "$ref"
done
print_table
