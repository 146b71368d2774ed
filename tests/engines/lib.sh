# Shared helpers for the engine tests (podman_test.sh, containerd_test.sh): sourced, not run.
# Each test script makes a private temp dir, runs its engine with roots and sockets inside it,
# checks after every test that nothing was left behind, and cleans up on any exit.

ENG_PASSED=0
ENG_FAILED=0
ENG_FAILED_NAMES=()
ENG_TMP=""
ENG_CG_CREATED=()  # cgroup dirs (relative to a controller's mount) to rmdir at exit if empty

# 60 s bounds every engine command; -k sends SIGKILL 5 s after the SIGTERM.
T60=(timeout -k 5 60)

# Runs a command on a real pseudo-terminal (script(1)) and prints what it wrote, without CRs.
# script runs the command with $SHELL -c; SHELL is pinned so the behaviour does not depend on
# the caller's environment. The inner timeout uses --foreground: a plain timeout puts itself in a
# new process group, which is then a background group on the pty, and the engine's first
# tcsetattr (raw mode for -it) stops it with SIGTTOU until the outer timeout fires.
eng_in_tty() {
  local cmd
  cmd=$(printf '%q ' timeout --foreground -k 5 60 "$@")
  SHELL=/bin/sh "${T60[@]}" script -qec "$cmd" /dev/null </dev/null 2>&1 | tr -d '\r\000'
}

eng_log() { printf '%s\n' "$*" >&2; }

# eng_skip MESSAGE: exit 77, which CTest reports as skipped.
eng_skip() {
  echo "SKIP: $*"
  echo "0 passed, 0 failed"
  exit 77
}

# eng_init NAME BINARY: checks the environment and makes the temp dir ($ENG_TMP).
eng_init() {
  local name=$1 bin=$2
  [ -n "$bin" ] || { echo "usage: $0 /path/to/forker-oci" >&2; exit 2; }
  [ "$(id -u)" = 0 ] || eng_skip "engine tests need root"
  [ -x "$bin" ] || { echo "$bin: not an executable" >&2; exit 2; }
  [ -x /bin/busybox ] || eng_skip "/bin/busybox (busybox-static) is not installed"
  ENG_TMP=$(mktemp -d "/tmp/forker-eng-$name.XXXXXX")
  chmod 755 "$ENG_TMP"
}

# eng_busybox_rootfs DIR: a minimal root filesystem: static busybox and its applet links.
eng_busybox_rootfs() {
  local root=$1 applet
  mkdir -p "$root"/{bin,dev,etc,proc,sys,tmp,root,run,var}
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
    >"$root/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"
}

# eng_mounts_under DIR: the mount points below DIR (mountinfo's field 5), one a line.
eng_mounts_under() {
  awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo
}

# eng_unmount_under DIR: lazily unmounts everything below DIR, deepest first.
eng_unmount_under() {
  local m
  for m in $(eng_mounts_under "$1" | sort -r); do umount -l "$m" 2>/dev/null || true; done
}

# eng_cgroups_named WORD: cgroup directories (any hierarchy, 4 levels deep) whose name holds WORD.
eng_cgroups_named() {
  find /sys/fs/cgroup/ -mindepth 2 -maxdepth 5 -type d -name "*$1*" 2>/dev/null
}

# eng_note_cgroup REL: remembers that cgroup REL (e.g. "forker-test") may be made by the test,
# unless it exists already in some hierarchy; eng_cleanup_cgroups removes it if empty.
eng_note_cgroup() {
  local rel=$1 d
  for d in /sys/fs/cgroup/*/"$rel"; do [ -d "$d" ] && return 0; done
  ENG_CG_CREATED+=("$rel")
}

eng_cleanup_cgroups() {
  local rel d
  for rel in "${ENG_CG_CREATED[@]}"; do
    # Deepest first; rmdir fails harmlessly on a cgroup that still has processes.
    for d in $(find /sys/fs/cgroup/*/"$rel" -depth -type d 2>/dev/null); do
      rmdir "$d" 2>/dev/null || true
    done
  done
}

# eng_procs_under DIR: pids of processes whose command line mentions DIR (shims, conmon, ...).
eng_procs_under() {
  local p
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$1" && echo "${p#/proc/}"
  done
  return 0
}

# eng_kill_procs_under DIR: SIGKILLs, by pid, the processes eng_procs_under finds.
eng_kill_procs_under() {
  local pid
  for pid in $(eng_procs_under "$1"); do kill -9 "$pid" 2>/dev/null || true; done
}

pass() { ENG_PASSED=$((ENG_PASSED + 1)); echo "PASS: $1"; }
fail() {
  ENG_FAILED=$((ENG_FAILED + 1)); ENG_FAILED_NAMES+=("$1"); echo "FAIL: $1${2:+: $2}"
}

# expect_eq WHAT EXPECTED ACTUAL: prints a diagnosis and returns 1 if they differ.
expect_eq() {
  if [ "$2" != "$3" ]; then
    echo "  $1: expected [$2], got [$3]"
    return 1
  fi
}

# expect_match WHAT REGEX TEXT
expect_match() {
  if ! printf '%s' "$3" | grep -qE -- "$2"; then
    echo "  $1: expected to match /$2/, got [$3]"
    return 1
  fi
}

# run_test NAME FUNCTION: runs FUNCTION (which returns non-zero on failure), then the script's
# after_each hook (leftover checks), and counts one pass or fail. ENG_ONLY=REGEX (in the
# environment) runs only the tests whose names match; ENG_REPEAT=N runs each N times.
run_test() {
  local name=$1 fn=$2 start=$SECONDS i
  if [ -n "${ENG_ONLY:-}" ] && ! [[ $name =~ $ENG_ONLY ]]; then return 0; fi
  for ((i = 1; i < ${ENG_REPEAT:-1}; i++)); do run_test_once "$name" "$fn"; done
  run_test_once "$name" "$fn"
}

run_test_once() {
  local name=$1 fn=$2 start=$SECONDS
  echo "--- $name"
  if "$fn" && after_each "$name"; then
    pass "$name ($((SECONDS - start)) s)"
  else
    fail "$name" "($((SECONDS - start)) s)"
  fi
}

eng_summary() {
  [ ${#ENG_FAILED_NAMES[@]} -eq 0 ] || echo "failed: ${ENG_FAILED_NAMES[*]}"
  echo "$ENG_PASSED passed, $ENG_FAILED failed"
  [ "$ENG_FAILED" -eq 0 ]
}
