#!/usr/bin/env bash
# Run the opencontainers/runtime-tools validation suite against one or more
# OCI runtimes (forker, crun, runc, ...) and summarise the TAP results.
#
# Usage: tests/conformance/run-runtime-tools.sh [options]
#
#   --runtime [NAME=]PATH   runtime to test (repeatable). NAME defaults to the
#                           basename of PATH. Default: forker=<repo>/build/forker-oci
#   --rewrite-oci-version NAME[=VER]
#                           before `create`/`run`, rewrite "ociVersion" in
#                           <bundle>/config.json to VER (default 1.1.0) for
#                           runtime NAME (needed for crun 1.8, which rejects the
#                           1.3.0 written by runtime-tools HEAD). Repeatable.
#   --hide-cgroup2-unified NAME
#                           run runtime NAME (every call) in a private mount
#                           namespace where /sys/fs/cgroup/unified is unmounted,
#                           so it sees a pure cgroup-v1 host. crun 1.8 refuses
#                           *every* container on a hybrid host whose cgroup2
#                           mount has controllers ("cgroups in hybrid mode not
#                           supported"); this lets it serve as a baseline. The
#                           host itself is not modified. Repeatable.
#   --tools DIR             runtime-tools checkout (default /var/tmp/runtime-tools);
#                           cloned and built if missing.
#   --tools-src URL|GITDIR  where to clone runtime-tools from if DIR is missing
#                           (default: local mirror if present, else GitHub)
#   --workdir DIR           results root (default /var/tmp/forker-conformance);
#                           raw TAP goes to DIR/<runtime-name>/<test>.tap
#   --tests REGEX           only run tests whose name matches REGEX (grep -E)
#   --timeout SEC           per-test timeout (default 60)
#   --rebuild               force rebuilding the validation binaries
#   --no-setup              do not apt-get install / clone / build anything
#   -h, --help
#
# Exit status: 0 if every runtime had no "not ok" and no broken test binary,
# 1 if there were failures, 2 on harness/usage errors.
#
# Must run as root (the suite creates real containers). Tests run
# sequentially (some share state such as /cgrouptest).

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

RT_TOOLS_COMMIT=5e639034dcdc2422164e3d7d76a737e2fb451a67
DEFAULT_MIRROR=/work/.mirror/opencontainers+runtime-tools/repo
GO_DIR=/usr/lib/go-1.23/bin

TOOLS_DIR=/var/tmp/runtime-tools
TOOLS_SRC=
WORK_ROOT=/var/tmp/forker-conformance
TEST_REGEX=
TIMEOUT=60
REBUILD=0
SETUP=1
RUNTIME_SPECS=()
declare -A REWRITE=()
declare -A HIDE_CG2=()

die() { echo "run-runtime-tools: $*" >&2; exit 2; }
log() { echo "[conformance] $*" >&2; }

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

while (($#)); do
  case $1 in
    --runtime) RUNTIME_SPECS+=("${2:?}"); shift 2 ;;
    --runtime=*) RUNTIME_SPECS+=("${1#*=}"); shift ;;
    --rewrite-oci-version|--rewrite-oci-version=*)
      if [[ $1 == *=* && $1 == --rewrite-oci-version=* ]]; then arg=${1#--rewrite-oci-version=}; shift
      else arg=${2:?}; shift 2; fi
      if [[ $arg == *=* ]]; then REWRITE[${arg%%=*}]=${arg#*=}; else REWRITE[$arg]=1.1.0; fi ;;
    --hide-cgroup2-unified) HIDE_CG2[${2:?}]=1; shift 2 ;;
    --tools) TOOLS_DIR=${2:?}; shift 2 ;;
    --tools-src) TOOLS_SRC=${2:?}; shift 2 ;;
    --workdir) WORK_ROOT=${2:?}; shift 2 ;;
    --tests) TEST_REGEX=${2:?}; shift 2 ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --rebuild) REBUILD=1; shift ;;
    --no-setup) SETUP=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

[[ $(id -u) == 0 ]] || die "must run as root"
((${#RUNTIME_SPECS[@]})) || RUNTIME_SPECS=("forker=$REPO_ROOT/build/forker-oci")

# ---------------------------------------------------------------- setup ----

go_ok() {  # $1 = go binary; true if version >= 1.21
  local v
  v=$("$1" env GOVERSION 2>/dev/null) || return 1
  v=${v#go}
  local maj=${v%%.*} rest=${v#*.}
  local min=${rest%%.*}
  ((maj > 1 || (maj == 1 && min >= 21)))
}

find_go() {
  local g
  for g in "$GO_DIR/go" "$(command -v go 2>/dev/null || true)"; do
    [[ -n $g && -x $g ]] && go_ok "$g" && { echo "$g"; return 0; }
  done
  return 1
}

ensure_go() {
  GO=$(find_go) && return 0
  ((SETUP)) || die "no Go >= 1.21 found and --no-setup given"
  log "installing golang-1.23-go from bookworm-backports"
  local src=/etc/apt/sources.list.d/backports.sources
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat >"$src" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q golang-1.23-go >&2
  GO=$(find_go) || die "Go install failed"
}

ensure_pkg() {  # $1 = command, $2 = debian package
  command -v "$1" >/dev/null && return 0
  ((SETUP)) || die "$1 missing and --no-setup given"
  log "installing $2"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >&2 ||
    { apt-get update -q >&2; DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >&2; }
}

ensure_tools() {
  if [[ ! -d $TOOLS_DIR/validation ]]; then
    ((SETUP)) || die "$TOOLS_DIR is not a runtime-tools checkout and --no-setup given"
    local src=$TOOLS_SRC
    if [[ -z $src ]]; then
      if [[ -d $DEFAULT_MIRROR ]]; then src=$DEFAULT_MIRROR
      else src=https://github.com/opencontainers/runtime-tools.git; fi
    fi
    log "cloning runtime-tools from $src into $TOOLS_DIR"
    git clone -q "$src" "$TOOLS_DIR"
    git -C "$TOOLS_DIR" checkout -q "$RT_TOOLS_COMMIT" 2>/dev/null ||
      log "warning: pinned commit $RT_TOOLS_COMMIT not found; using $(git -C "$TOOLS_DIR" rev-parse --short HEAD)"
    REBUILD=1
  fi
  local missing=0 f
  [[ -x $TOOLS_DIR/runtimetest ]] || missing=1
  for f in "$TOOLS_DIR"/validation/*/*.go; do
    [[ $f == */util/* ]] && continue
    [[ -x ${f%.go}.t ]] || missing=1
  done
  if ((REBUILD || missing)); then
    ((SETUP)) || die "validation binaries missing in $TOOLS_DIR and --no-setup given"
    ensure_go
    ensure_pkg make make
    log "building runtimetest + validation binaries in $TOOLS_DIR ($("$GO" env GOVERSION))"
    (cd "$TOOLS_DIR" &&
      PATH=$(dirname "$GO"):$PATH GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local \
      GOCACHE=${GOCACHE:-/var/tmp/forker-gocache} \
      make runtimetest validation-executables >"$WORK_ROOT/build.log" 2>&1) ||
      { tail -30 "$WORK_ROOT/build.log" >&2; die "build failed (see $WORK_ROOT/build.log)"; }
  fi
  [[ -f $TOOLS_DIR/rootfs-amd64.tar.gz ]] || die "rootfs-amd64.tar.gz missing in $TOOLS_DIR"
}

mkdir -p "$WORK_ROOT"
ensure_tools
if ((${#REWRITE[@]})); then ensure_pkg jq jq; fi
command -v timeout >/dev/null || die "coreutils timeout missing"

mapfile -t TESTS < <(cd "$TOOLS_DIR" && ls validation/*/*.t | sed 's|^validation/||; s|/.*||' | sort -u)
if [[ -n $TEST_REGEX ]]; then
  mapfile -t TESTS < <(printf '%s\n' "${TESTS[@]}" | grep -E -- "$TEST_REGEX" || true)
fi
((${#TESTS[@]})) || die "no tests selected"

# ------------------------------------------------------ state snapshots ----
# Used to detect (and clean up) what a test leaves behind. We only ever remove
# things that appeared during the test *and* look like the suite's own:
# containers in `<runtime> list` with a uuid id (the suite's ids), mounts under /tmp/ocitest*, cgroups named
# after the suite's cgroupsPath (cgrouptest/testdir) or a container id (uuid),
# bundle dirs /tmp/ocitest*, and processes living in such bundles or named
# runtimetest / "sleep 10000" (the ns-path tests' helpers).

# Tests that pass when the runtime refuses the config (util.RuntimeInsideValidate
# with no TAP writer: exit 0 = rejected = pass).
NEGATIVE_TESTS="process_rlimits_fail process_capabilities_fail"

UUID_RE='[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

snap_containers() { "$1" list -q 2>/dev/null | sort || true; }
snap_mounts()     { awk '{print $5}' /proc/self/mountinfo | sort; }
snap_cgroups()    { find /sys/fs/cgroup -mindepth 2 -type d 2>/dev/null | sort; }
snap_bundles()    { ls -d /tmp/ocitest* 2>/dev/null | sort || true; }
snap_procs()      { local d; for d in /proc/[0-9]*; do echo "${d#/proc/}"; done | sort; }

suite_proc() {  # $1 pid: is this a process the suite (or its containers) left?
  local p=$1 cmd root cwd
  [[ -d /proc/$p ]] || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || return 1
  root=$(readlink "/proc/$p/root" 2>/dev/null || true)
  cwd=$(readlink "/proc/$p/cwd" 2>/dev/null || true)
  [[ $cmd == "/runtimetest"* || $cmd == "sleep 10000 " || $cmd == *"unshare "*"sleep 10000"* ||
     $root == /tmp/ocitest* || $cwd == /tmp/ocitest* ]]
}

# cleanup_after RUNTIME_CMD BEFORE_DIR LEAKFILE : diff against snapshots, clean, log leaks
cleanup_after() {
  local rt=$1 before=$2 leak=$3 x
  : >"$leak"
  # containers
  for x in $(comm -13 "$before/containers" <(snap_containers "$rt") | grep -E "^$UUID_RE\$" || true); do
    echo "container $x" >>"$leak"
    # SIGPIPE ignored: a poststop hook that does not read its stdin can kill
    # the runtime with SIGPIPE in the middle of delete (seen with crun 1.8)
    local _try
    for _try in 1 2 3; do
      (trap '' PIPE
       timeout 10 "$rt" kill "$x" KILL >/dev/null 2>&1
       timeout 10 "$rt" delete -f "$x" >/dev/null 2>&1 || timeout 10 "$rt" delete "$x" >/dev/null 2>&1) || true
      snap_containers "$rt" | grep -qx -- "$x" || break
      sleep 0.5
    done
    if snap_containers "$rt" | grep -qx -- "$x"; then echo "container $x STILL PRESENT (could not delete)" >>"$leak"; fi
  done
  # processes
  for x in $(comm -13 "$before/procs" <(snap_procs)); do
    if suite_proc "$x"; then
      echo "process $x $(tr '\0' ' ' 2>/dev/null <"/proc/$x/cmdline")" >>"$leak"
      kill -KILL "$x" 2>/dev/null || true
    fi
  done
  # mounts (deepest first)
  for x in $(comm -13 "$before/mounts" <(snap_mounts) | sort -r); do
    echo "mount $x" >>"$leak"
    if [[ $x == /tmp/ocitest* ]]; then umount -l "$x" 2>/dev/null || true; fi
  done
  # cgroups (deepest first)
  for x in $(comm -13 "$before/cgroups" <(snap_cgroups) | sort -r); do
    if [[ $x =~ /(cgrouptest|testdir)(/|$) || $x =~ $UUID_RE ]]; then
      echo "cgroup $x" >>"$leak"
      rmdir "$x" 2>/dev/null || true
    fi
  done
  # bundle dirs
  for x in $(comm -13 "$before/bundles" <(snap_bundles)); do
    echo "bundle $x" >>"$leak"
    rm -rf --one-file-system "$x" 2>/dev/null || true
  done
}

# ---------------------------------------------------------- run tests ----

make_wrapper() {  # $1 name, $2 real runtime, $3 rewrite version or "", $4 out path, $5 hide cg2 (0/1)
  cat >"$4" <<EOF
#!/usr/bin/env bash
# Generated by run-runtime-tools.sh: logs every call, optionally rewrites
# ociVersion in <bundle>/config.json on create/run, then execs the runtime.
REAL=$(printf %q "$2")
VER=$(printf %q "$3")
HIDE_CG2=${5:-0}
CALLS=$(printf %q "$(dirname "$4")/runtime-calls.log")
EOF
  cat >>"$4" <<'EOF'
[[ -n ${CONFORMANCE_TEST:-} ]] &&
  printf '%s [%s] %s\n' "$(date +%T.%N)" "$CONFORMANCE_TEST" "$*" >>"$CALLS" 2>/dev/null
if [[ -n $VER ]]; then
  args=("$@"); n=$#; i=0
  while ((i < n)); do            # skip global options
    case ${args[i]} in
      --root|--log|--log-format|--log-level|--criu|--rootless|--cgroup-manager) i=$((i+2)) ;;
      -*) i=$((i+1)) ;;
      *) break ;;
    esac
  done
  if [[ ${args[i]:-} == create || ${args[i]:-} == run ]]; then
    bundle=.; j=$((i+1))
    while ((j < n)); do
      case ${args[j]} in
        --bundle|-b) bundle=${args[j+1]:-.}; j=$((j+2)) ;;
        --bundle=*|-b=*) bundle=${args[j]#*=}; j=$((j+1)) ;;
        *) j=$((j+1)) ;;
      esac
    done
    cfg=$bundle/config.json
    if [[ -f $cfg ]]; then
      tmp=$(jq --arg v "$VER" '.ociVersion = $v' "$cfg") && printf '%s\n' "$tmp" >"$cfg"
    fi
  fi
fi
if ((HIDE_CG2)) && mountpoint -q /sys/fs/cgroup/unified; then
  # private mount namespace in which the runtime sees a pure cgroup v1 host
  exec unshare -m --propagation slave /bin/sh -c \
    'umount -l /sys/fs/cgroup/unified && exec "$0" "$@"' "$REAL" "$@"
fi
exec "$REAL" "$@"
EOF
  chmod +x "$4"
}

# Most informative line of a test binary's stderr (skip the generic ones).
stderr_reason() {
  grep -v -E '^(failed to (create|start|delete) the container|exit status [0-9]+|Clean: .*)$' "$1" 2>/dev/null |
    grep -v '^[[:space:]]*$' | head -1 | cut -c1-200 || true
}

# Parse a .tap file: prints "OK NOTOK SKIP PLAN" (PLAN = planned count or -)
tap_counts() {
  awk '
    /^ok( |$)/      { ok++; if ($0 ~ /# *[Ss][Kk][Ii][Pp]/) skip++ }
    /^not ok( |$)/  { nok++ }
    /^1\.\.[0-9]+/  { split($0, a, /\.\./); plan += a[2]+0; hasplan=1 }
    END { printf "%d %d %d %s\n", ok, nok, skip, (hasplan ? plan : "-") }' "$1"
}

case $(stat -fc %T /sys/fs/cgroup) in
  cgroup2fs) CG_MODE="v2 (unified)" ;;
  *) if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
       CG_MODE="hybrid (v1 + cgroup2 at /sys/fs/cgroup/unified, controllers: $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null))"
     else CG_MODE="v1 (legacy)"; fi ;;
esac

RESULT=0
SUMMARY_ALL=$WORK_ROOT/summary.txt
: >"$SUMMARY_ALL"
declare -A R_OK R_NOK R_SKIP R_BROKEN R_TIME

for spec in "${RUNTIME_SPECS[@]}"; do
  if [[ $spec == *=* ]]; then name=${spec%%=*}; path=${spec#*=}; else path=$spec; name=$(basename "$spec"); fi
  real=$(command -v "$path" 2>/dev/null) || die "runtime $name: $path not found/executable"
  [[ -x $real ]] || die "runtime $name: $real not executable"
  real=$(readlink -f "$real")
  out=$WORK_ROOT/$name
  rm -rf "$out"; mkdir -p "$out/.snap"
  wrapper=$out/runtime
  make_wrapper "$name" "$real" "${REWRITE[$name]:-}" "$wrapper" "${HIDE_CG2[$name]:-0}"

  log "runtime $name ($real${REWRITE[$name]:+, ociVersion->${REWRITE[$name]}}${HIDE_CG2[$name]:+, cgroup2 hidden}): ${#TESTS[@]} tests, timeout ${TIMEOUT}s, results in $out"
  # whole-pass baseline for the final leak check
  mkdir -p "$out/.snap/pass"
  snap_containers "$wrapper" >"$out/.snap/pass/containers"
  snap_mounts >"$out/.snap/pass/mounts"; snap_cgroups >"$out/.snap/pass/cgroups"
  snap_bundles >"$out/.snap/pass/bundles"; snap_procs >"$out/.snap/pass/procs"

  t_start=$(date +%s)
  tot_ok=0 tot_nok=0 tot_skip=0 broken=()
  printf '%-36s %5s %6s %5s %5s %6s  %s\n' TEST OK NOT_OK SKIP PLAN RC NOTE >"$out/tests.tsv"
  : >"$out/failures.txt"
  for t in "${TESTS[@]}"; do
    snap=$out/.snap/t
    mkdir -p "$snap"
    snap_containers "$wrapper" >"$snap/containers"; snap_mounts >"$snap/mounts"
    snap_cgroups >"$snap/cgroups"; snap_bundles >"$snap/bundles"; snap_procs >"$snap/procs"

    ts=$(date +%s.%N)
    rc=0
    (cd "$TOOLS_DIR" && CONFORMANCE_TEST=$t RUNTIME=$wrapper \
      timeout -k 10 "$TIMEOUT" "./validation/$t/$t.t" </dev/null >"$out/$t.tap" 2>"$out/$t.stderr") || rc=$?
    dur=$(awk -v a="$ts" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')

    cleanup_after "$wrapper" "$snap" "$out/$t.leaks"
    read -r ok nok skip plan < <(tap_counts "$out/$t.tap")
    note=""
    if [[ " $NEGATIVE_TESTS " == *" $t "* ]]; then
      # negative tests: the runtime must REJECT the config (test exits 0,
      # no TAP). If it accepts, runtimetest's TAP is printed and the test
      # exits 1; those inner "ok"s must not count. Score as one assertion.
      if ((rc == 0)); then
        ok=1 nok=0 skip=0 plan=1
        echo "ok 1 - runtime rejected the invalid config (harness verdict)" >>"$out/$t.tap"
      elif ((rc != 124 && rc != 137)); then
        ok=0 nok=1 skip=0 plan=1
        echo "not ok 1 - runtime accepted an invalid config (harness verdict)" >>"$out/$t.tap"
        echo "# $(stderr_reason "$out/$t.stderr")" >>"$out/$t.tap"
      fi
    fi
    ((rc == 124 || rc == 137)) && note="TIMEOUT"
    if [[ -z $note && $plan == - ]]; then note="NO-PLAN"; fi
    if [[ -z $note && $plan != - ]] && ((ok + nok != plan)); then note="PLAN-MISMATCH($((ok + nok))/$plan)"; fi
    if [[ -z $note && $rc != 0 ]] && ((nok == 0)); then note="EXIT-$rc"; fi
    # lifecycle/hook tests (hooks, prestart, poststop, ...) report failure only
    # as a YAML "error" diagnostic with zero assertions ("1..0")
    if [[ -z $note ]] && ((ok + nok == 0)) && grep -q '^ *"error": ' "$out/$t.tap"; then note="DIAG-ERROR"; fi
    [[ -s $out/$t.leaks ]] && note+="${note:+,}LEAKED($(wc -l <"$out/$t.leaks"))"
    printf '%-36s %5d %6d %5d %5s %6s  %s %ss\n' "$t" "$ok" "$nok" "$skip" "$plan" "$rc" "$note" "$dur" >>"$out/tests.tsv"
    tot_ok=$((tot_ok + ok)); tot_nok=$((tot_nok + nok)); tot_skip=$((tot_skip + skip))
    if [[ $note == DIAG-ERROR* ]]; then
      broken+=("$t: DIAG-ERROR  [$(grep -m1 '^ *"error": ' "$out/$t.tap" | sed 's/^ *"error": *"//; s/",\{0,1\} *$//' | cut -c1-200)]")
    elif [[ $note == *TIMEOUT* || $note == *NO-PLAN* || $note == *PLAN-MISMATCH* || $note == *EXIT-* ]]; then
      broken+=("$t: ${note%%,LEAKED*}  [$(stderr_reason "$out/$t.stderr")]")
    fi
    # failing assertions, each with its most useful diagnostic: the YAML
    # "stderr" (runtime's complaint), else "error", else a "# expect" comment,
    # else (for bare "exit status N") the test binary's stderr.
    why=$(stderr_reason "$out/$t.stderr")
    awk -v t="$t" -v why="$why" '
      function flush() {
        if (!p) return
        d = dst != "" ? dst : (der != "" ? der : dc)
        if (d == "" && p ~ /- exit status [0-9]+$/) d = why
        print p (d != "" ? "  [" substr(d, 1, 220) "]" : "")
        p = ""
      }
      function val(line) { sub(/^ *"[a-z]+": *"/, "", line); sub(/",? *$/, "", line); gsub(/\\n/, " ", line); return line }
      /^not ok/ { flush(); p = t ": " $0; dst = der = dc = ""; next }
      /^(ok|1\.\.)/ { flush(); next }
      p && /^ *"stderr": / && dst == "" { dst = val($0) }
      p && /^ *"error": / && der == "" { der = val($0) }
      p && /^# / && dc == "" { dc = substr($0, 3) }
      END { flush() }' "$out/$t.tap" >>"$out/failures.txt"
    printf '  %-36s ok=%-4d not_ok=%-3d skip=%-4d %s %ss\n' "$t" "$ok" "$nok" "$skip" "$note" "$dur" >&2
  done
  t_end=$(date +%s)

  # final leak check against the pass baseline (after per-test cleanup)
  cleanup_after "$wrapper" "$out/.snap/pass" "$out/pass.leaks"

  R_OK[$name]=$tot_ok; R_NOK[$name]=$tot_nok; R_SKIP[$name]=$tot_skip
  R_BROKEN[$name]=${#broken[@]}; R_TIME[$name]=$((t_end - t_start))
  ((tot_nok == 0 && ${#broken[@]} == 0)) || RESULT=1

  {
    echo "=== $name ($real${REWRITE[$name]:+, ociVersion rewritten to ${REWRITE[$name]}}${HIDE_CG2[$name]:+, cgroup2 unified mount hidden})"
    echo "host: $(uname -r), cgroups: $CG_MODE; suite: runtime-tools $(git -C "$TOOLS_DIR" describe --always --tags 2>/dev/null || echo '?')"
    echo "tests: ${#TESTS[@]}  ok: $tot_ok (of which skip: $tot_skip)  not ok: $tot_nok  broken test binaries: ${#broken[@]}  time: $((t_end - t_start))s"
    if ((${#broken[@]})); then echo "broken test binaries (timeout / no plan / exit without 'not ok' / error with 0 assertions):"; printf '  %s\n' "${broken[@]}"; fi
    if [[ -s $out/failures.txt ]]; then echo "failing assertions:"; sed 's/^/  /' "$out/failures.txt"; fi
    leaky=$(for f in "$out"/*.leaks; do
      [[ -s $f && $f != "$out/pass.leaks" ]] || continue
      printf '  %s: %s\n' "$(basename "$f" .leaks)" "$(awk '{print $1}' "$f" | sort | uniq -c | awk '{printf "%s%d %s", (NR>1?", ":""), $1, $2}')"
    done)
    if [[ -n $leaky ]]; then echo "left behind by individual tests (cleaned up by the harness; details in <test>.leaks):"; echo "$leaky"; fi
    if [[ -s $out/pass.leaks ]]; then echo "LEFT BEHIND after pass (cleaned up):"; sed 's/^/  /' "$out/pass.leaks"
    else echo "left behind after pass: nothing"; fi
    echo "per-test table: $out/tests.tsv   raw TAP: $out/<test>.tap (+ .stderr)   runtime calls: $out/runtime-calls.log"
    echo
  } | tee "$out/summary.txt" >>"$SUMMARY_ALL"
  cat "$out/summary.txt"
  rm -rf "$out/.snap"
done

if ((${#RUNTIME_SPECS[@]} > 1)); then
  {
    echo "=== totals"
    printf '%-12s %6s %6s %6s %7s %6s\n' RUNTIME OK NOT_OK SKIP BROKEN TIME
    for spec in "${RUNTIME_SPECS[@]}"; do
      if [[ $spec == *=* ]]; then name=${spec%%=*}; else name=$(basename "$spec"); fi
      printf '%-12s %6d %6d %6d %7d %5ds\n' "$name" "${R_OK[$name]}" "${R_NOK[$name]}" "${R_SKIP[$name]}" "${R_BROKEN[$name]}" "${R_TIME[$name]}"
    done
  } | tee -a "$SUMMARY_ALL"
fi
log "summary: $SUMMARY_ALL"
exit $RESULT
