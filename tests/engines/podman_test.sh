#!/usr/bin/env bash
# podman with forker-oci as its OCI runtime: run, exit codes, -it through a real tty, exec,
# stop, kill, resource limits, seccomp. podman gets a private storage root, runroot, tmpdir,
# network config dir and containers.conf under a temp dir. forker-oci keeps its default --root
# (/run/forker-oci): podman passes runtime flags to its own runtime calls but not to the
# `podman container cleanup` that conmon runs when a container exits, so a private root given
# by --runtime-flag would not be seen there. After every test: no container left, no new
# container in forker-oci's state dir, no mount under the temp dir, no container cgroup, no
# conmon. Usage: podman_test.sh /path/to/forker-oci
# Exits 0 if all pass, 1 if any fails, 77 (skip) if podman is not installed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

command -v podman >/dev/null || eng_skip "podman is not installed (apt-get install podman)"
BIN=$(realpath -e "${1:-}" 2>/dev/null) || { echo "usage: $0 /path/to/forker-oci" >&2; exit 2; }
eng_init podman "$BIN"

T=$ENG_TMP
STATE=/run/forker-oci   # forker-oci's default --root
IMAGE=localhost/busybox:forker-test
mkdir -p "$T/libpod" "$T/cni"
# podman's container ids: 64 hex digits. Those in the state dir before the test are not ours.
state_ids() { ls -A "$STATE" 2>/dev/null | grep -E '^[0-9a-f]{64}$' | sort; }
state_ids >"$T/state-before"
# New podman-like ids in forker-oci's state dir (left by this test).
new_state_ids() { state_ids | comm -13 "$T/state-before" -; }

cat >"$T/containers.conf" <<EOF
[containers]
netns = "none"
[network]
network_config_dir = "$T/cni"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
tmp_dir = "$T/libpod"
volume_path = "$T/volumes"
runtime = "forker"
runtime_supports_json = ["forker"]
[engine.runtimes]
forker = ["$BIN"]
EOF
cat >"$T/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$T/storage"
runroot = "$T/run"
EOF
export CONTAINERS_CONF=$T/containers.conf CONTAINERS_STORAGE_CONF=$T/storage.conf
PODMAN=(podman --root "$T/storage" --runroot "$T/run" --storage-driver vfs
        --cgroup-manager cgroupfs --events-backend file --tmpdir "$T/libpod"
        --runtime forker)
# The machine's hard RLIMIT_NOFILE is below podman's default ulimits.
RUNOPTS=(--network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

pm() { "${T60[@]}" "${PODMAN[@]}" "$@"; }
prun() { pm run "${RUNOPTS[@]}" "$@"; }

eng_note_cgroup libpod_parent
# podman 4.3 writes these whatever its --root and --runroot: removed at exit if made here.
GLOBAL_DIRS=()
for d in /run/containers /var/lib/containers; do [ -e "$d" ] || GLOBAL_DIRS+=("$d"); done

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  "${T60[@]}" "${PODMAN[@]}" rm -a -f -t 0 >/dev/null 2>&1
  eng_kill_procs_under "$T"
  local id
  for id in $(new_state_ids); do "${T60[@]}" "$BIN" delete --force "$id" >/dev/null 2>&1; done
  eng_unmount_under "$T"
  eng_cleanup_cgroups
  local d
  for d in "${GLOBAL_DIRS[@]}"; do
    # Only what podman puts there: an empty networks dir, its blob-info cache.
    rmdir "$d/networks" 2>/dev/null
    rm -f "$d/cache/blob-info-cache-v1.boltdb" 2>/dev/null && rmdir "$d/cache" 2>/dev/null
    rmdir "$d" 2>/dev/null
  done
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

# Waits (up to 5 s) for the conmons of removed containers to exit.
wait_no_procs() {
  local i
  for i in $(seq 50); do
    [ -z "$(eng_procs_under "$T/storage/vfs-containers")" ] && return 0
    sleep 0.1
  done
  return 1
}

after_each() {
  local ok=0 left id
  left=$(pm ps -aq 2>&1)
  if [ -n "$left" ]; then
    echo "  containers left: $left"; ok=1
    pm rm -a -f -t 0 >/dev/null 2>&1
  fi
  left=$(new_state_ids)
  if [ -n "$left" ]; then
    echo "  forker-oci state left in $STATE: $left"; ok=1
    for id in $left; do "${T60[@]}" "$BIN" delete --force "$id" >/dev/null 2>&1; done
  fi
  left=$(eng_mounts_under "$T")
  [ -z "$left" ] || { echo "  mounts left: $left"; ok=1; }
  left=$(find /sys/fs/cgroup/*/libpod_parent -mindepth 1 -maxdepth 1 -type d -name 'libpod-*' \
           2>/dev/null)
  [ -z "$left" ] || { echo "  cgroups left: $left"; ok=1; }
  wait_no_procs || { echo "  processes left: $(eng_procs_under "$T/storage/vfs-containers")"; ok=1; }
  return $ok
}

# Waits (up to 10 s) until the file $2 exists in container $1.
wait_ready() {
  local i
  for i in $(seq 100); do
    pm exec "$1" test -e "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "  container $1 did not create $2"
  return 1
}

# The tty tests: the command runs under script(1), which gives it a real pseudo-terminal.
in_tty() {
  eng_in_tty "${PODMAN[@]}" "$@"
}

# --- setup: the image -------------------------------------------------------------------------
eng_busybox_rootfs "$T/rootfs"
if ! tar -C "$T/rootfs" -c . | pm import -q - "$IMAGE" >"$T/import.log" 2>&1; then
  cat "$T/import.log"
  fail "import busybox image"
  eng_summary
  exit 1
fi

# --- tests --------------------------------------------------------------------------------------
t_run_echo() {
  local out
  out=$(prun --rm "$IMAGE" echo hi 2>&1)
  expect_eq "output" "hi" "$out"
}

t_exit_code() {
  prun --rm "$IMAGE" sh -c 'exit 3'
  expect_eq "exit status" 3 $?
}

t_missing_command() {
  # podman maps the runtime's "executable file not found" to 127.
  local out rc
  out=$(prun --rm "$IMAGE" /no/such/binary 2>&1)
  rc=$?
  expect_eq "exit status" 127 $rc || { echo "  $out"; return 1; }
}

t_env_user_cwd() {
  local out
  out=$(prun --rm -e FOO=bar --user 65534:65534 -w /tmp "$IMAGE" \
          sh -c 'echo "$FOO $(id -u):$(id -g) $(pwd) $HOSTNAME"' 2>&1)
  expect_match "output" '^bar 65534:65534 /tmp [0-9a-f]{12}$' "$out"
}

t_detached_exec() {
  local out rc ok=0
  prun -d --name fk-exec "$IMAGE" sleep 1000 >/dev/null || return 1
  out=$(pm exec fk-exec echo from-exec 2>&1)
  expect_eq "exec output" "from-exec" "$out" || ok=1
  pm exec fk-exec sh -c 'exit 5'
  rc=$?
  expect_eq "exec exit status" 5 $rc || ok=1
  out=$(pm exec --user 65534 -e X=y fk-exec sh -c 'echo $(id -u) $X' 2>&1)
  expect_eq "exec --user --env" "65534 y" "$out" || ok=1
  out=$(pm exec fk-exec sh -c 'cat /proc/1/cmdline | tr "\0" " "' 2>&1)
  expect_eq "pid 1 of the exec's namespace" "sleep 1000 " "$out" || ok=1
  out=$(pm inspect -f '{{.State.Status}}' fk-exec 2>&1)
  expect_eq "state" running "$out" || ok=1
  pm rm -f -t 0 fk-exec >/dev/null || ok=1
  return $ok
}

t_stop_sigterm() {
  # A container that handles SIGTERM: stop ends it with its own exit status, without SIGKILL.
  local out ok=0 start
  prun -d --name fk-term "$IMAGE" \
    sh -c 'trap "exit 7" TERM; touch /tmp/ready; while :; do sleep 0.2; done' >/dev/null || return 1
  wait_ready fk-term /tmp/ready || ok=1
  start=$SECONDS
  pm stop -t 30 fk-term >/dev/null || ok=1
  [ $((SECONDS - start)) -lt 20 ] || { echo "  stop waited for the timeout"; ok=1; }
  out=$(pm inspect -f '{{.State.Status}} {{.State.ExitCode}}' fk-term 2>&1)
  expect_eq "state after stop" "exited 7" "$out" || ok=1
  pm rm fk-term >/dev/null || ok=1
  return $ok
}

t_stop_sigkill_restart() {
  # sleep as pid 1 ignores SIGTERM: stop -t 1 falls back to SIGKILL (137). Then start it again.
  local out ok=0
  prun -d --name fk-stop "$IMAGE" sleep 1000 >/dev/null || return 1
  pm stop -t 1 fk-stop >/dev/null 2>&1 || ok=1
  out=$(pm inspect -f '{{.State.Status}} {{.State.ExitCode}}' fk-stop 2>&1)
  expect_eq "state after stop" "exited 137" "$out" || ok=1
  pm start fk-stop >/dev/null || ok=1
  out=$(pm exec fk-stop echo again 2>&1)
  expect_eq "exec after restart" again "$out" || ok=1
  pm rm -f -t 0 fk-stop >/dev/null || ok=1
  return $ok
}

t_kill() {
  local out ok=0
  prun -d --name fk-usr1 "$IMAGE" \
    sh -c 'trap "exit 9" USR1; touch /tmp/ready; while :; do sleep 0.2; done' >/dev/null || return 1
  wait_ready fk-usr1 /tmp/ready || ok=1
  pm kill -s USR1 fk-usr1 >/dev/null || ok=1
  out=$(pm wait fk-usr1 2>&1)
  expect_eq "exit status after SIGUSR1" 9 "$out" || ok=1
  prun -d --name fk-kill "$IMAGE" sleep 1000 >/dev/null || ok=1
  pm kill fk-kill >/dev/null || ok=1
  out=$(pm wait fk-kill 2>&1)
  expect_eq "exit status after kill" 137 "$out" || ok=1
  pm rm fk-usr1 fk-kill >/dev/null || ok=1
  return $ok
}

t_run_tty() {
  local out ok=0
  # The sleeps: podman may attach after a process that ends at once has written (also with
  # runc: about 1 run in 10 shows no output at all).
  out=$(in_tty run --rm -it "${RUNOPTS[@]}" "$IMAGE" sh -c 'sleep 0.3; tty; stty size; echo ok; sleep 0.3')
  expect_match "tty" '/dev/pts/0' "$out" || ok=1
  expect_match "output" '(^|[^a-z])ok' "$out" || ok=1
  return $ok
}

t_exec_tty() {
  local out ok=0
  prun -d --name fk-ttyexec "$IMAGE" sleep 1000 >/dev/null || return 1
  out=$(in_tty exec -it fk-ttyexec sh -c 'tty; echo ok')
  expect_match "tty" '/dev/pts/[0-9]' "$out" || ok=1
  expect_match "output" '(^|[^a-z])ok' "$out" || ok=1
  pm rm -f -t 0 fk-ttyexec >/dev/null || ok=1
  return $ok
}

t_memory_limit() {
  local out
  out=$(prun --rm --memory 64m "$IMAGE" cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)
  expect_eq "memory.limit_in_bytes" 67108864 "$out"
}

t_pids_limit() {
  local out
  out=$(prun --rm --pids-limit 32 "$IMAGE" cat /sys/fs/cgroup/pids/pids.max 2>&1)
  expect_eq "pids.max" 32 "$out"
}

t_cpu_shares() {
  local out
  out=$(prun --rm --cpu-shares 512 "$IMAGE" cat /sys/fs/cgroup/cpu/cpu.shares 2>&1)
  expect_eq "cpu.shares" 512 "$out"
}

t_seccomp() {
  # podman's default profile is applied (filter mode 2); unconfined turns it off.
  local out ok=0
  out=$(prun --rm "$IMAGE" grep '^Seccomp:' /proc/self/status 2>&1)
  expect_match "default profile" '^Seccomp:[[:space:]]+2$' "$out" || ok=1
  out=$(prun --rm --security-opt seccomp=unconfined "$IMAGE" grep '^Seccomp:' /proc/self/status 2>&1)
  expect_match "unconfined" '^Seccomp:[[:space:]]+0$' "$out" || ok=1
  return $ok
}

t_caps_readonly() {
  local out ok=0
  out=$(prun --rm --cap-drop all "$IMAGE" grep '^CapEff:' /proc/self/status 2>&1)
  expect_match "cap-drop all" '^CapEff:[[:space:]]+0+$' "$out" || ok=1
  out=$(prun --rm --read-only "$IMAGE" sh -c 'touch /x 2>/dev/null && echo writable; touch /tmp/y && echo tmp-ok' 2>&1)
  expect_eq "read-only root" "tmp-ok" "$out" || ok=1
  # --tmpfs mounts get "tmpcopyup": the image's files are copied into the new tmpfs.
  out=$(prun --rm --tmpfs /etc "$IMAGE" sh -c 'grep -c "^root:" /etc/passwd; grep " /etc " /proc/mounts | cut -d" " -f3' 2>&1)
  expect_eq "tmpfs with tmpcopyup" "1
tmpfs" "$out" || ok=1
  return $ok
}

run_test run_echo t_run_echo
run_test exit_code t_exit_code
run_test missing_command t_missing_command
run_test env_user_cwd t_env_user_cwd
run_test detached_exec t_detached_exec
run_test stop_sigterm t_stop_sigterm
run_test stop_sigkill_restart t_stop_sigkill_restart
run_test kill t_kill
if command -v script >/dev/null; then
  run_test run_tty t_run_tty
  run_test exec_tty t_exec_tty
else
  echo "note: script(1) (bsdutils) missing: the tty tests are not run"
fi
run_test memory_limit t_memory_limit
run_test pids_limit t_pids_limit
run_test cpu_shares t_cpu_shares
run_test seccomp t_seccomp
run_test caps_readonly_tmpfs t_caps_readonly

eng_summary
