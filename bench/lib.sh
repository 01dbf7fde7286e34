# Shared by the bench scripts (sourced from the repo root).
#
# BENCH_SKIFFD_FLAGS turn bridge networking off: the benchmarks run their
# containers with --network none, and a benchmark daemon must leave the
# host's links and nf_tables alone.
BENCH_SKIFFD_FLAGS=(--bridge=none)

# wait_sock HOST waits up to 30 s for a daemon to answer at HOST.
wait_sock() {
  for _ in $(seq 1 300); do DOCKER_HOST=$1 docker version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "daemon at $1 did not start" >&2
  return 1
}
