#!/usr/bin/env bash
# Rootless podman with forker-oci as its runtime: a user made for the test (useradd, with
# /etc/subuid and /etc/subgid ranges) runs podman with vfs storage, the cgroupfs manager, file
# events, and its root and runroot under its own dirs; podman calls forker-oci as root of its
# user namespace. Checks: run, exit codes, the container's id map (the user + its subordinate
# ids), the process on the host runs as the user, exec, stop, podman's default seccomp profile
# (it denies personality(1) with ENOSYS when the probe is given), and that nothing is left.
# Usage: podman_rootless_test.sh /path/to/forker-oci [/path/to/probe]
# Exits 0 if all pass, 1 if any fails, 77 (skip) when podman, newuidmap or useradd is missing.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

command -v podman >/dev/null || eng_skip "podman is not installed (apt-get install podman)"
command -v newuidmap >/dev/null || eng_skip "newuidmap is not installed (apt-get install uidmap)"
command -v useradd >/dev/null || eng_skip "useradd is not installed (passwd)"
command -v setpriv >/dev/null || eng_skip "setpriv is not installed (util-linux)"
BIN=$(realpath -e "${1:-}" 2>/dev/null) || { echo "usage: $0 /path/to/forker-oci [probe]" >&2; exit 2; }
PROBE=${2:-}
eng_init podman-rootless "$BIN"
T=$ENG_TMP
NAME=fkrpod$$
IMAGE=localhost/busybox:forker-rootless

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  if id "$NAME" >/dev/null 2>&1; then
    as_user podman rm -a -f -t 0 >/dev/null 2>&1
    # The rootless pause process, conmon and anything a failed test left, by pid.
    for pid in $(ps -o pid= -u "$NAME" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    sleep 0.2
    userdel -r "$NAME" >/dev/null 2>&1
  fi
  rm -rf "$T" 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT INT TERM

useradd -m -U -s /bin/sh "$NAME" || { echo "useradd failed"; exit 1; }
U=$(id -u "$NAME")
G=$(id -g "$NAME")
if ! grep -q "^$NAME:" /etc/subuid || ! grep -q "^$NAME:" /etc/subgid; then
  base=$((700000 + ($$ % 1000) * 65536))
  usermod --add-subuids "$base-$((base + 65535))" --add-subgids "$base-$((base + 65535))" "$NAME"
fi
SUBUID=$(grep "^$NAME:" /etc/subuid | head -1 | cut -d: -f2)

mkdir -p "$T/xdg" "$T/home"
chmod 700 "$T/xdg"
cat >"$T/containers.conf" <<CONF
[containers]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/events.log"
runtime = "forker"
runtime_supports_json = ["forker"]
[engine.runtimes]
forker = ["$BIN"]
CONF
cat >"$T/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$T/storage"
runroot = "$T/xdg/containers"
CONF
eng_busybox_rootfs "$T/rootfs"
[ -z "$PROBE" ] || cp "$PROBE" "$T/rootfs/probe"
chown -R "$U:$G" "$T"

# as_user CMD...: CMD as the test user, with a clean environment.
as_user() {
  "${T60[@]}" setpriv --reuid "$U" --regid "$G" --init-groups \
    env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME="$T/home" \
    XDG_RUNTIME_DIR="$T/xdg" CONTAINERS_CONF="$T/containers.conf" \
    CONTAINERS_STORAGE_CONF="$T/storage.conf" "$@"
}
pm() { as_user podman --log-level=error "$@"; }
prun() { pm run --network none "$@"; }

after_each() {
  local ok=0 left
  left=$(pm ps -aq 2>&1)
  if [ -n "$left" ]; then
    echo "  containers left: $left"; ok=1
    pm rm -a -f -t 0 >/dev/null 2>&1
  fi
  left=$(ls -A "$T/xdg/forker-oci" 2>/dev/null | grep -E '^[0-9a-f]{64}$')
  [ -z "$left" ] || { echo "  forker-oci state left: $left"; ok=1; }
  return $ok
}

if ! tar -C "$T/rootfs" -c . | pm import -q - "$IMAGE" >"$T/import.log" 2>&1; then
  cat "$T/import.log"
  fail "import busybox image"
  eng_summary
  exit 1
fi

t_run_and_exit_code() {
  local out ok=0
  out=$(prun --rm "$IMAGE" echo hi 2>&1)
  expect_eq "output" "hi" "$out" || ok=1
  prun --rm "$IMAGE" sh -c 'exit 3'
  expect_eq "exit status" 3 $? || ok=1
  return $ok
}

t_user_namespace() {
  # podman's own namespace: the user as root, then its subordinate ids.
  local out
  out=$(prun --rm "$IMAGE" sh -c 'id -u; cat /proc/self/uid_map' 2>&1 | tr -s ' ' | sed 's/^ //')
  expect_eq "id and uid_map" "0
0 $U 1
1 $SUBUID 65536" "$out"
}

t_host_uid_exec_stop() {
  local pid status ok=0
  prun -d --name r1 "$IMAGE" sleep 600 >/dev/null || { echo "  run -d failed"; return 1; }
  pid=$(pm inspect --format '{{.State.Pid}}' r1)
  status=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
  expect_eq "host uid of the container's root" "$U" "$status" || ok=1
  expect_eq "exec" "exec-ok" "$(pm exec r1 echo exec-ok 2>&1)" || ok=1
  pm stop -t 1 r1 >/dev/null || { echo "  stop failed"; ok=1; }
  pm rm -f r1 >/dev/null || ok=1
  return $ok
}

t_seccomp_default_profile() {
  local out ok=0
  out=$(prun --rm "$IMAGE" grep '^Seccomp:' /proc/self/status 2>&1)
  expect_match "default profile" '^Seccomp:[[:space:]]+2$' "$out" || ok=1
  if [ -n "$PROBE" ]; then
    # podman's profile lets personality through only for the usual personas; the rest get
    # its default action, ENOSYS.
    out=$(prun --rm "$IMAGE" /probe personality 1 2>&1)
    expect_eq "personality(1) under podman's profile" "ERR personality: Function not implemented" \
      "$out" || ok=1
    out=$(prun --rm --security-opt seccomp=unconfined "$IMAGE" /probe personality 1 2>&1)
    expect_eq "personality(1) unconfined" "ok" "$out" || ok=1
  fi
  return $ok
}

run_test run_and_exit_code t_run_and_exit_code
run_test user_namespace t_user_namespace
run_test host_uid_exec_stop t_host_uid_exec_stop
run_test seccomp_default_profile t_seccomp_default_profile
eng_summary
