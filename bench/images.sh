#!/usr/bin/env bash
# Image throughput benchmark: docker import, save and load of a ~SIZE MiB
# image through the real docker CLI, with the daemon's peak RSS per phase,
# for skiffd and, when Debian's docker.io is installed, dockerd (see
# lib.sh), one after the other (the phases are disk-bound). Needs root.
#
#   bash bench/images.sh [size-in-MiB]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
size_mb=${1:-200}
bench_init ibench
echo "building skiffd and a ${size_mb} MiB rootfs in $work" >&2
build_skiffd
mkdir -p "$work/rootfs/data"
cp /bin/busybox "$work/rootfs/"
for i in $(seq 1 "$size_mb"); do head -c 1048576 /dev/urandom >"$work/rootfs/data/f$i"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
bytes=$(stat -c %s "$work/rootfs.tar")
sync
echo "image of $((bytes / 1000000)) MB ($bytes bytes)"

label import "\`docker import\` MB/s (s, daemon peak RSS MiB)"
label save "\`docker save\` MB/s (s, daemon peak RSS MiB)"
label load "\`docker load\` MB/s (s, daemon peak RSS MiB)"

for d in $(daemons); do
  "start_$d" "$d"
  h=${d}_host
  phase "$d" import import "$work/rootfs.tar" bench:1
  phase "$d" save save bench:1 -o "$work/save.tar"
  DOCKER_HOST=${!h} docker rmi bench:1 >/dev/null
  sync
  phase "$d" load load -i "$work/save.tar"
  DOCKER_HOST=${!h} docker rmi bench:1 >/dev/null
  rm -f "$work/save.tar"
done
print_table
