#!/usr/bin/env bash
# forker-oci beside crun and runc, side by side in one run. See bench/README.md.
#
# usage: bench/run.sh [--quick] [--iters N] [--no-setup] [--no-profile] [--out DIR]
#   --quick       a few iterations of everything (CI: catches a broken script, figures meaningless)
#   --iters N     iterations of the single-command measures (default 60)
#   --no-setup    do not apt-get install anything
#   --no-profile  skip the instruction-count and syscall views
#   --out DIR     results directory (default bench/results/<UTC date-time>)
# environment:
#   FORKER     forker-oci binary (default build/forker-oci; built there if missing)
#   CRUN_NEW   a newer crun to include (default /var/tmp/crun-1.27/bin/crun, if present;
#              bench/build-crun.sh builds it from a source checkout)
#
# Writes DIR/samples.csv (every sample), DIR/load.csv, DIR/memlimit.csv, DIR/profile/*,
# DIR/report.md and DIR/times.svg, and copies the report and the plot to
# bench/results/latest.md and latest.svg.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
QUICK=0 ITERS=60 SETUP=1 PROFILE=1 OUT=
while (($#)); do
  case $1 in
    --quick) QUICK=1; shift ;;
    --iters) ITERS=${2:?}; shift 2 ;;
    --no-setup) SETUP=0; shift ;;
    --no-profile) PROFILE=0; shift ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "run.sh: must run as root (it creates containers)" >&2; exit 2; }

log() { printf '== %s\n' "$*" >&2; }

# ------------------------------------------------------------------ setup ---
if ((SETUP)); then
  need=()
  for p in crun runc busybox-static gcc g++ python3 gnuplot-nox valgrind strace; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
  done
  if ((${#need[@]})); then
    log "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

FORKER=${FORKER:-$REPO/build/forker-oci}
if [[ ! -x $FORKER ]]; then
  log "building forker-oci in $REPO/build"
  cmake -S "$REPO" -B "$REPO/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$REPO/build" --target forker-oci -j"$(nproc)" >/dev/null
  FORKER=$REPO/build/forker-oci
fi
CRUN_OLD=$(command -v crun || true)
RUNC=$(command -v runc || true)
CRUN_NEW=${CRUN_NEW:-/var/tmp/crun-1.27/bin/crun}
[[ -x $CRUN_OLD && -x $RUNC ]] || { echo "run.sh: crun and runc are needed (apt-get install crun runc)" >&2; exit 2; }

WORK=$BENCH/work
BIN=$WORK/bin
mkdir -p "$BIN"
log "compiling the driver and helpers into $BIN"
g++ -std=c++20 -O2 -Wall -Wextra -o "$BIN/benchd" "$BENCH/src/benchd.cpp"
gcc -O2 -static -Wall -Wextra -o "$BIN/floor" "$BENCH/src/floor.c"
gcc -O2 -static -Wall -Wextra -o "$BIN/rssprobe" "$BENCH/src/rssprobe.c"
gcc -O2 -Wall -Wextra -o "$BIN/stepcount" "$BENCH/src/stepcount.c"

# ---------------------------------------------------------------- bundles ---
# A busybox-static rootfs and runc's default config (`runc spec`), args /bin/true, terminal false.
ROOTFS=$WORK/rootfs
rm -rf "$ROOTFS" "$WORK/bundles"
mkdir -p "$ROOTFS/bin" "$ROOTFS/proc" "$ROOTFS/dev" "$ROOTFS/sys" "$ROOTFS/tmp"
cp /bin/busybox "$ROOTFS/bin/busybox"
for a in true sh sleep; do ln -s busybox "$ROOTFS/bin/$a"; done
spec() {  # spec DIR ARGS_JSON [MEMORY_LIMIT]
  mkdir -p "$1"
  rm -f "$1/config.json"
  (cd "$1" && "$RUNC" spec)
  python3 - "$1/config.json" "$ROOTFS" "$2" "${3:-}" <<'EOF'
import json, sys
path, rootfs, args, limit = sys.argv[1:5]
c = json.load(open(path))
c["root"]["path"] = rootfs
c["process"]["terminal"] = False
c["process"]["args"] = json.loads(args)
if limit:
    c["linux"].setdefault("resources", {})["memory"] = {"limit": int(limit)}
json.dump(c, open(path, "w"), indent=2)
EOF
}
RUN_B=$WORK/bundles/run
LONG_B=$WORK/bundles/long
spec "$RUN_B" '["/bin/true"]'
spec "$LONG_B" '["/bin/sleep", "100000"]'

# --------------------------------------------------------------- runtimes ---
# crun (1.8 and 1.27 alike) refuses a hybrid cgroup host, so on one every runtime runs in a
# private mount namespace made by benchd ("ns"); for crun /sys/fs/cgroup/unified is also
# detached there ("hide"). Same wrapper for all, so the ratios stay fair.
HYBRID=0
mountpoint -q /sys/fs/cgroup/unified 2>/dev/null && HYBRID=1
if ((HYBRID)); then W=ns CW=hide; else W=direct CW=direct; fi
RTS=(--rt "forker=oci:$W:$FORKER" --rt "crun-1.8=oci:$CW:$CRUN_OLD")
NAMES=(forker crun-1.8)
if [[ -x $CRUN_NEW ]]; then
  RTS+=(--rt "crun-1.27=oci:$CW:$CRUN_NEW"); NAMES+=(crun-1.27)
else
  log "no newer crun at $CRUN_NEW (bench/build-crun.sh): measuring crun 1.8 and runc only"
fi
RTS+=(--rt "runc=oci:$W:$RUNC"); NAMES+=(runc)
# Extra entries of the run measure: the physical floor, the floor plus one cgroup migration,
# /bin/true through the same wrapper (the wrapper's own cost) and without it, and forker/runc
# without the wrapper.
EXTRA=(--rt "floor=floor:$W:$BIN/floor" --rt "floor+cgroup=floorcg:$W:$BIN/floor"
       --rt "true=plain:$W:/bin/true")
if ((HYBRID)); then
  EXTRA+=(--rt "true-direct=plain:direct:/bin/true" --rt "forker-direct=oci:direct:$FORKER"
          --rt "runc-direct=oci:direct:$RUNC")
fi

if ((QUICK)); then
  ITERS=3; RSS_IT=2; SEQ_IT=2; SEQ_N=5; CONC_IT=2; CONC_N=3; WARM=1
else
  RSS_IT=10; SEQ_IT=5; SEQ_N=100; CONC_IT=15; CONC_N=10; WARM=2
fi

OUT=${OUT:-$BENCH/results/$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
STATE=/run/forker-bench
rm -rf "$STATE"
B=("$BIN/benchd" --rootfs "$ROOTFS" --csv "$OUT/samples.csv" --load-csv "$OUT/load.csv" --root "$STATE" --warmup "$WARM")
: >"$OUT/samples.csv"; : >"$OUT/load.csv"

{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "kernel=$(uname -r)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "cgroup=$(if ((HYBRID)); then echo 'v1 hybrid (cgroup2 at /sys/fs/cgroup/unified)'; elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then echo v2; else echo v1; fi)"
  echo "forker=$("$FORKER" --version 2>&1 | head -1) ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+dirty'))"
  echo "crun-1.8=$("$CRUN_OLD" --version | head -1)"
  [[ -x $CRUN_NEW ]] && echo "crun-1.27=$("$CRUN_NEW" --version | head -1)"
  echo "runc=$("$RUNC" --version | head -1)"
  echo "wrapper=$W/$CW"
  echo "quick=$QUICK"
  echo "iters=$ITERS rss=$RSS_IT seq=${SEQ_IT}x$SEQ_N conc=${CONC_IT}x$CONC_N"
} >"$OUT/machine.txt"

log "run of /bin/true ($ITERS iterations)"
"${B[@]}" --iters "$ITERS" "${RTS[@]}" "${EXTRA[@]}" run "$RUN_B"
log "peak RSS of run ($RSS_IT iterations)"
"${B[@]}" --iters "$RSS_IT" --rss-probe "$BIN/rssprobe" "${RTS[@]}" --rt "true=plain:$W:/bin/true" rss "$RUN_B"
log "create, state, start, kill, delete ($ITERS iterations)"
"${B[@]}" --iters "$ITERS" "${RTS[@]}" lifecycle "$LONG_B"
log "exec of /bin/true into a running container ($ITERS iterations)"
"${B[@]}" --iters "$ITERS" "${RTS[@]}" exec "$LONG_B"
log "$SEQ_N sequential runs ($SEQ_IT iterations)"
"${B[@]}" --iters "$SEQ_IT" --warmup 0 "${RTS[@]}" seq "$RUN_B" "$SEQ_N"
log "$CONC_N concurrent runs ($CONC_IT iterations)"
"${B[@]}" --iters "$CONC_IT" --warmup 1 "${RTS[@]}" conc "$RUN_B" "$CONC_N"
log "binary start: --version ($ITERS iterations)"
"${B[@]}" --iters "$ITERS" --rt "forker=oci:direct:$FORKER" --rt "crun-1.8=oci:direct:$CRUN_OLD" \
  $([[ -x $CRUN_NEW ]] && echo --rt "crun-1.27=oci:direct:$CRUN_NEW") --rt "runc=oci:direct:$RUNC" \
  --rt "true=plain:direct:/bin/true" version

# ------------------------------------------------------- smallest memory limit ---
# Binary search of linux.resources.memory.limit under which `run` of /bin/true still exits 0
# (two runs must pass at a value), in 4 KiB steps between 0 and 64 MiB.
log "smallest memory limit for run"
echo "runtime,limit_bytes,probes" >"$OUT/memlimit.csv"
MEMB=$WORK/bundles/mem
for i in "${!NAMES[@]}"; do
  name=${NAMES[$i]} spec_=${RTS[$((2 * i + 1))]}
  lo=0 hi=$((64 << 20)) probes=0 n=0
  ok_at() {
    spec "$MEMB" '["/bin/true"]' "$1" >/dev/null
    local k
    for k in 1 2; do
      probes=$((probes + 1)) n=$((n + 1))
      "$BIN/benchd" --root "$STATE" --timeout 20 --rt "$spec_" once -- --root "$STATE/$name" run --bundle "$MEMB" "bm-$$-$n" \
        >/dev/null 2>&1 || { "$BIN/benchd" --root "$STATE" --rt "$spec_" once -- --root "$STATE/$name" delete -f "bm-$$-$n" >/dev/null 2>&1 || true; return 1; }
    done
  }
  if ok_at "$hi"; then
    steps=$((QUICK ? 3 : 14))
    while ((steps-- > 0 && hi - lo > 4096)); do
      mid=$(((lo + hi) / 2 / 4096 * 4096))
      if ok_at "$mid"; then hi=$mid; else lo=$mid; fi
    done
    echo "$name,$hi,$probes" >>"$OUT/memlimit.csv"
  else
    echo "$name,,$probes" >>"$OUT/memlimit.csv"
  fi
done

# ------------------------------------------------------------------- profile ---
if ((PROFILE)); then
  P=$OUT/profile
  mkdir -p "$P"
  log "where forker's time goes: --debug steps, slow syscalls, instruction counts"
  (cd "$RUN_B" && for k in 1 2 3 4 5; do
     "$FORKER" --root "$STATE/forker" --debug run "bp-$$-$k" 2>&1 | sed "s/^/$k: /"
   done) >"$P/debug.txt" || true
  # Syscalls of forker-oci and its init slower than 0.5 ms (strace adds its own overhead); one
  # file per process (strace.PID), so no call is split into unfinished/resumed halves.
  (cd "$RUN_B" && strace -ff -T -o "$P/strace" "$FORKER" --root "$STATE/forker" run "bs-$$") || true
  # Instructions of the runtime's own process. callgrind first; valgrind 3.19 lacks openat2, so
  # the container init (which valgrind follows: it is a fork) fails there, and stepcount
  # (ptrace single-step of the parent only, ~40 us an instruction) gives the counts instead.
  if (cd "$RUN_B" && valgrind --tool=callgrind --callgrind-out-file="$P/callgrind-run.%p" \
        "$FORKER" --root "$STATE/forker" run "bc-$$") >"$P/callgrind-run.log" 2>&1; then
    main=$(ls -S "$P"/callgrind-run.[0-9]* | head -1)
    callgrind_annotate --inclusive=yes "$main" 2>/dev/null | sed -n '/file:function/,$p' | head -40 >"$P/callgrind-run.txt" || true
  else
    rm -f "$P"/callgrind-run.[0-9]*
    "$FORKER" --root "$STATE/forker" delete -f "bc-$$" >/dev/null 2>&1 || true
    echo "$(grep -m1 -o 'container init: .*' "$P/callgrind-run.log" || echo failed)" >"$P/callgrind-run-failed.txt"
    (cd "$RUN_B" && "$BIN/stepcount" -n $((QUICK ? 100000 : 20000000)) "$P/steps.txt" -- \
       "$FORKER" --root "$STATE/forker" run "bi-$$") 2>"$P/stepcount.log" || true
  fi
  # Commands without a container init run whole under callgrind.
  for cmd in version state; do
    case $cmd in
      version) args=(--version) ;;
      state) "$FORKER" --root "$STATE/forker" create --bundle "$LONG_B" "bv-$$" >/dev/null
             args=(--root "$STATE/forker" state "bv-$$") ;;
    esac
    valgrind --tool=callgrind --callgrind-out-file="$P/callgrind-$cmd.out" "$FORKER" "${args[@]}" \
      >/dev/null 2>"$P/callgrind-$cmd.log" || true
    callgrind_annotate --inclusive=yes "$P/callgrind-$cmd.out" 2>/dev/null |
      sed -n '/file:function/,$p' | head -25 >"$P/callgrind-$cmd.txt" || true
  done
  "$FORKER" --root "$STATE/forker" delete -f "bv-$$" >/dev/null 2>&1 || true
  nm -C -n --defined-only "$FORKER" >"$P/nm.txt" 2>/dev/null || true
fi

# Leftovers: crun, seeing no cgroup2 mount, makes directories in the tmpfs under the hidden
# /sys/fs/cgroup/unified mountpoint; remove those.
if ((HYBRID)); then
  unshare -m sh -c 'mount --make-rslave / && umount -l /sys/fs/cgroup/unified &&
    rm -rf /sys/fs/cgroup/unified/b[a-z]-[0-9]*; true' || true
fi
rm -rf "$STATE"

log "report"
python3 "$BENCH/src/report.py" "$OUT" "$FORKER"
if command -v gnuplot >/dev/null && [[ -f $OUT/plot.gp ]]; then
  gnuplot "$OUT/plot.gp" || log "gnuplot failed"
fi
if ((!QUICK)); then
  cp "$OUT/report.md" "$BENCH/results/latest.md"
  [[ -f $OUT/times.svg ]] && cp "$OUT/times.svg" "$BENCH/results/latest.svg"
fi
cat "$OUT/report.md"
log "raw samples: $OUT"
