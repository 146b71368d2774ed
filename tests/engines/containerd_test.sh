#!/usr/bin/env bash
# containerd (its runc shim, io.containerd.runc.v2) with forker-oci as the runc binary, driven
# by ctr: run, exit codes, exec, kill, kill --all, delete, a tty. The test starts its own
# containerd with a private config, root, state and socket under a temp dir and stops it (by
# pid) at the end; forker-oci's state goes to a private --runc-root. The image is an OCI
# archive made here from a busybox rootfs. After every test: no task or container left, the
# runc root empty, no mount under the temp dir, no container cgroup, no shim.
# Usage: containerd_test.sh /path/to/forker-oci
# Exits 0 if all pass, 1 if any fails, 77 (skip) if containerd is not installed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

for tool in containerd ctr containerd-shim-runc-v2; do
  command -v $tool >/dev/null || eng_skip "$tool is not installed (apt-get install containerd)"
done
BIN=$(realpath -e "${1:-}" 2>/dev/null) || { echo "usage: $0 /path/to/forker-oci" >&2; exit 2; }
eng_init containerd "$BIN"

T=$ENG_TMP
SOCK=$T/containerd.sock
NS=forker-test
IMAGE=localhost/busybox:forker-test
RUNC_ROOT=$T/runc-root
CTD_PID=""
mkdir -p "$T/fifo" "$RUNC_ROOT"

cat >"$T/config.toml" <<EOF
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  level = "debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "$T/opt"
EOF

CTR=(ctr --address "$SOCK" --namespace "$NS")
RUNC_OPTS=(--runc-binary "$BIN" --runc-root "$RUNC_ROOT" --fifo-dir "$T/fifo")
c() { "${T60[@]}" "${CTR[@]}" "$@"; }
crun() { c run "${RUNC_OPTS[@]}" "$@"; }

# The shims' sockets go to /run/containerd/s (fixed in containerd 1.6): remove what we made.
RUN_CTD_EXISTED=0
[ -d /run/containerd ] && RUN_CTD_EXISTED=1
eng_note_cgroup "$NS"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$CTD_PID" ] && kill -0 "$CTD_PID" 2>/dev/null; then
    local id
    for id in $(c task ls -q 2>/dev/null); do c task kill -a -s KILL "$id" >/dev/null 2>&1; done
    sleep 0.5
    for id in $(c task ls -q 2>/dev/null); do c task delete -f "$id" >/dev/null 2>&1; done
    for id in $(c container ls -q 2>/dev/null); do c container delete "$id" >/dev/null 2>&1; done
    kill "$CTD_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$CTD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$CTD_PID" 2>/dev/null
    wait "$CTD_PID" 2>/dev/null
  fi
  eng_kill_procs_under "$T"
  for id in $(ls -A "$RUNC_ROOT/$NS" 2>/dev/null); do
    "$BIN" --root "$RUNC_ROOT/$NS" delete --force "$id" >/dev/null 2>&1
  done
  eng_unmount_under "$T"
  eng_cleanup_cgroups
  if [ "$RUN_CTD_EXISTED" = 0 ]; then
    rmdir /run/containerd/s /run/containerd/fifo /run/containerd/runc /run/containerd 2>/dev/null
  fi
  if [ "$rc" != 0 ] && [ -f "$T/containerd.log" ]; then
    echo "--- containerd log, errors and warnings:"
    grep -E 'level=(error|warning)' "$T/containerd.log" | tail -20
  fi
  [ -n "${ENG_LOGDIR:-}" ] && cp "$T/containerd.log" "$ENG_LOGDIR/" 2>/dev/null
  if [ -n "$(eng_mounts_under "$T")" ]; then
    echo "cleanup: mounts left under $T, not removing it:" >&2
    eng_mounts_under "$T" >&2
  else
    rm -rf --one-file-system "$T"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Processes of this test other than containerd itself (shims, containers' processes via shim).
stray_procs() { eng_procs_under "$T" | grep -vx "${CTD_PID:-none}"; }

after_each() {
  local ok=0 left
  left=$(c task ls -q 2>&1)
  [ -z "$left" ] || { echo "  tasks left: $left"; ok=1; }
  left=$(c container ls -q 2>&1)
  [ -z "$left" ] || { echo "  containers left: $left"; ok=1; }
  left=$(ls -A "$RUNC_ROOT/$NS" 2>/dev/null)
  [ -z "$left" ] || { echo "  forker-oci state left in $RUNC_ROOT/$NS: $left"; ok=1; }
  left=$(eng_mounts_under "$T")
  [ -z "$left" ] || { echo "  mounts left: $left"; ok=1; }
  left=$(find /sys/fs/cgroup/*/"$NS" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)
  [ -z "$left" ] || { echo "  cgroups left: $left"; ok=1; }
  for _ in $(seq 50); do [ -z "$(stray_procs)" ] && break; sleep 0.1; done
  left=$(stray_procs)
  [ -z "$left" ] || { echo "  processes left: $left"; ok=1; }
  if [ $ok != 0 ]; then
    # Leave a clean slate for the next test.
    for id in $(c task ls -q 2>/dev/null); do c task delete -f "$id" >/dev/null 2>&1; done
    for id in $(c container ls -q 2>/dev/null); do c container delete "$id" >/dev/null 2>&1; done
  fi
  return $ok
}

# task_status ID: RUNNING, STOPPED, ... (empty if there is no task).
task_status() { c task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'; }

# wait_status ID STATUS: up to 10 s.
wait_status() {
  for _ in $(seq 100); do
    [ "$(task_status "$1")" = "$2" ] && return 0
    sleep 0.1
  done
  echo "  task $1: expected $2, is [$(task_status "$1")]"
  return 1
}

# wait_ready ID FILE: until FILE exists in the task (up to 10 s), checked by exec.
wait_ready() {
  local i
  for i in $(seq 100); do
    c task exec --exec-id "ready$i" "$1" test -e "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "  task $1 did not create $2"
  return 1
}

in_tty() {
  eng_in_tty "${CTR[@]}" "$@"
}

# --- setup: containerd and the image -----------------------------------------------------------
# An OCI image layout (one uncompressed layer) made by hand: no registry, no other tool.
make_oci_archive() {
  local out=$1 dir=$T/oci arch
  case "$(uname -m)" in
    x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;;
  esac
  eng_busybox_rootfs "$T/rootfs"
  mkdir -p "$dir/blobs/sha256"
  tar -C "$T/rootfs" --numeric-owner -cf "$dir/layer.tar" . || return 1
  local layer_sha layer_size cfg cfg_sha man man_sha
  layer_sha=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
  layer_size=$(stat -c %s "$dir/layer.tar")
  mv "$dir/layer.tar" "$dir/blobs/sha256/$layer_sha"
  cfg='{"architecture":"'$arch'","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:'$layer_sha'"]}}'
  printf '%s' "$cfg" >"$dir/cfg"
  cfg_sha=$(sha256sum "$dir/cfg" | cut -d' ' -f1)
  mv "$dir/cfg" "$dir/blobs/sha256/$cfg_sha"
  man='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'$cfg_sha'","size":'${#cfg}'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:'$layer_sha'","size":'$layer_size'}]}'
  printf '%s' "$man" >"$dir/man"
  man_sha=$(sha256sum "$dir/man" | cut -d' ' -f1)
  mv "$dir/man" "$dir/blobs/sha256/$man_sha"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
  printf '%s' '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:'$man_sha'","size":'${#man}',"platform":{"architecture":"'$arch'","os":"linux"},"annotations":{"io.containerd.image.name":"'$IMAGE'","org.opencontainers.image.ref.name":"forker-test"}}]}' >"$dir/index.json"
  tar -C "$dir" -cf "$out" oci-layout index.json blobs
}

setup_failed() {
  fail "setup" "$1"
  eng_summary
  exit 1
}

containerd --config "$T/config.toml" >"$T/containerd.log" 2>&1 &
CTD_PID=$!
for _ in $(seq 100); do
  "${CTR[@]}" version >/dev/null 2>&1 && break
  kill -0 "$CTD_PID" 2>/dev/null || break
  sleep 0.1
done
"${CTR[@]}" version >/dev/null 2>&1 || { tail -20 "$T/containerd.log"; setup_failed "containerd did not start"; }
make_oci_archive "$T/image.tar" || setup_failed "could not make the image archive"
c images import "$T/image.tar" >"$T/import.log" 2>&1 || { cat "$T/import.log"; setup_failed "ctr images import"; }
c images ls -q | grep -qx "$IMAGE" || { c images ls; setup_failed "image $IMAGE not imported"; }

# --- tests --------------------------------------------------------------------------------------
t_run_echo() {
  local out
  out=$(crun --rm "$IMAGE" fk-echo echo hi 2>&1)
  expect_eq "output" "hi" "$out"
}

t_exit_code() {
  crun --rm "$IMAGE" fk-exit sh -c 'exit 3'
  expect_eq "exit status" 3 $?
}

t_run_env_cwd() {
  local out
  out=$(crun --rm --env FOO=bar --cwd /tmp "$IMAGE" fk-env \
          sh -c 'echo "$FOO $(id -u):$(id -g) $(pwd) $(hostname)"' 2>&1)
  # ctr sets no hostname: the new UTS namespace keeps the host's, as with runc.
  expect_eq "output" "bar 0:0 /tmp $(hostname)" "$out"
}

t_detached_exec() {
  local out rc ok=0
  crun -d "$IMAGE" fk-exec sleep 1000 >/dev/null || return 1
  wait_status fk-exec RUNNING || ok=1
  out=$(c task exec --exec-id x1 fk-exec echo from-exec 2>&1)
  expect_eq "exec output" from-exec "$out" || ok=1
  c task exec --exec-id x2 fk-exec sh -c 'exit 4'
  rc=$?
  expect_eq "exec exit status" 4 $rc || ok=1
  out=$(c task exec --exec-id x3 --user 65534 --cwd /tmp fk-exec sh -c 'echo $(id -u) $(pwd)' 2>&1)
  expect_eq "exec --user --cwd" "65534 /tmp" "$out" || ok=1
  out=$(c task ps fk-exec 2>&1 | awk 'NR > 1' | wc -l)
  expect_eq "task ps: processes" 1 "$out" || ok=1
  # SIGTERM to a pid 1 with no handler does nothing; SIGKILL ends it.
  c task kill fk-exec || ok=1
  sleep 0.3
  expect_eq "after SIGTERM" RUNNING "$(task_status fk-exec)" || ok=1
  c task kill -s KILL fk-exec || ok=1
  wait_status fk-exec STOPPED || ok=1
  out=$(c task delete fk-exec 2>&1) || ok=1
  expect_match "task delete" 'exit code 137' "$out" || ok=1
  c container delete fk-exec || ok=1
  return $ok
}

t_sigterm() {
  # ctr run in the foreground returns the task's status: here 7 from its SIGTERM handler.
  local ok=0 rc pid
  crun --rm "$IMAGE" fk-term \
    sh -c 'trap "exit 7" TERM; touch /tmp/ready; while :; do sleep 0.2; done' &
  pid=$!
  wait_status fk-term RUNNING && wait_ready fk-term /tmp/ready || ok=1
  c task kill fk-term || ok=1
  wait "$pid"
  rc=$?
  expect_eq "exit status after SIGTERM" 7 $rc || ok=1
  return $ok
}

t_kill_all() {
  # kill --all reaches every process of the container, not only pid 1.
  local ok=0 out
  crun -d "$IMAGE" fk-all sh -c 'sleep 1000 & sleep 1000 & wait' >/dev/null || return 1
  wait_status fk-all RUNNING || ok=1
  for _ in $(seq 50); do
    [ "$(c task ps fk-all 2>/dev/null | awk 'NR > 1' | wc -l)" = 3 ] && break
    sleep 0.1
  done
  out=$(c task ps fk-all 2>&1 | awk 'NR > 1' | wc -l)
  expect_eq "task ps: processes" 3 "$out" || ok=1
  c task kill --all -s KILL fk-all || ok=1
  wait_status fk-all STOPPED || ok=1
  c task delete fk-all >/dev/null 2>&1 || ok=1
  c container delete fk-all || ok=1
  return $ok
}

t_delete_force() {
  # task delete --force on a running task: the shim kills it and deletes the container.
  local ok=0
  crun -d "$IMAGE" fk-force sleep 1000 >/dev/null || return 1
  wait_status fk-force RUNNING || ok=1
  c task delete --force fk-force >/dev/null 2>&1 || ok=1
  c container delete fk-force || ok=1
  return $ok
}

t_run_tty() {
  local out ok=0
  out=$(in_tty run --rm -t "${RUNC_OPTS[@]}" "$IMAGE" fk-tty sh -c 'tty; echo ok')
  expect_match "tty" '/dev/pts/0' "$out" || ok=1
  expect_match "output" '(^|[^a-z])ok' "$out" || ok=1
  return $ok
}

t_exec_tty() {
  local out ok=0
  crun -d "$IMAGE" fk-ttyexec sleep 1000 >/dev/null || return 1
  wait_status fk-ttyexec RUNNING || ok=1
  # ctr may print "resize pty ... stopped" when the exec ends first: a ctr race, also with runc.
  out=$(in_tty task exec -t --exec-id xt fk-ttyexec sh -c 'tty; echo ok')
  expect_match "tty" '/dev/pts/[0-9]' "$out" || ok=1
  expect_match "output" '(^|[^a-z])ok' "$out" || ok=1
  c task kill -s KILL fk-ttyexec || ok=1
  wait_status fk-ttyexec STOPPED || ok=1
  c task delete fk-ttyexec >/dev/null 2>&1 || ok=1
  c container delete fk-ttyexec || ok=1
  return $ok
}

t_memory_limit() {
  # ctr's default spec mounts no cgroupfs in the container: read the limit on the host.
  local out ok=0 f=/sys/fs/cgroup/memory/$NS/fk-mem/memory.limit_in_bytes
  crun -d --memory-limit 67108864 "$IMAGE" fk-mem sleep 1000 >/dev/null || return 1
  wait_status fk-mem RUNNING || ok=1
  out=$(cat "$f" 2>&1)
  expect_eq "$f" 67108864 "$out" || ok=1
  c task delete --force fk-mem >/dev/null 2>&1 || ok=1
  c container delete fk-mem || ok=1
  return $ok
}

run_test run_echo t_run_echo
run_test exit_code t_exit_code
run_test run_env_cwd t_run_env_cwd
run_test detached_exec t_detached_exec
run_test sigterm t_sigterm
run_test kill_all t_kill_all
run_test delete_force t_delete_force
if command -v script >/dev/null; then
  run_test run_tty t_run_tty
  run_test exec_tty t_exec_tty
else
  echo "note: script(1) (bsdutils) missing: the tty tests are not run"
fi
if [ -d /sys/fs/cgroup/memory ]; then
  run_test memory_limit t_memory_limit
fi

# The runtime's errors, as the shim logged them (forker-oci --log FILE --log-format json).
if grep -q 'level=error' "$T/containerd.log"; then
  echo "note: containerd logged errors:"
  grep 'level=error' "$T/containerd.log" | tail -5
fi

eng_summary
