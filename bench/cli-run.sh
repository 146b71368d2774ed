#!/usr/bin/env bash
# `forker run --rm busybox true` against `podman run --rm` (crun) on the same busybox image, side
# by side in one run, interleaved. See bench/README.md ("forker run against podman run").
#
# usage: bench/cli-run.sh [--quick] [--iters N] [--no-setup] [--out DIR]
#   --quick     3 iterations (CI: catches a broken script; figures meaningless, not kept)
#   --iters N   iterations (default 30); each runs every contender once, order rotating
#   --no-setup  do not apt-get install anything
#   --out DIR   raw results directory (default bench/results/cli-run-<UTC date-time>, not in git)
# environment:
#   FORKER      the forker CLI (default build/forker)
#
# Writes DIR/samples.csv (every sample: iter,pos,name,ns,status,maxrss_kb,minflt,tail_ns,
# tail_maxrss_kb,tail_minflt,load1), DIR/load.csv, DIR/machine.txt and DIR/report.md, prints the
# report, and (not with --quick) copies it to bench/results/cli-run-latest.md. Everything the
# bench makes (stores, mounts, cgroups) is removed at exit.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
QUICK=0 ITERS=30 SETUP=1 OUT=
while (($#)); do
  case $1 in
    --quick) QUICK=1; shift ;;
    --iters) ITERS=${2:?}; shift 2 ;;
    --no-setup) SETUP=0; shift ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "cli-run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
((QUICK)) && ITERS=3
[[ $(id -u) == 0 ]] || { echo "cli-run.sh: must run as root (podman and forker run containers)" >&2; exit 2; }
log() { printf '== %s\n' "$*" >&2; }

# ------------------------------------------------------------------ setup ---
if ((SETUP)); then
  need=()
  for p in podman crun conmon busybox-static gcc libc6-dev python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
  done
  if ((${#need[@]})); then
    log "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
FORKER=$(realpath -m "${FORKER:-$REPO/build/forker}")
[[ -x $FORKER ]] || { echo "cli-run.sh: no forker CLI at $FORKER (cmake --build build --target forker-cli, or FORKER=path)" >&2; exit 2; }
CRUN=/usr/bin/crun
PODMAN=$(command -v podman || true)
[[ -x $CRUN && -x $PODMAN ]] || { echo "cli-run.sh: podman and crun are needed (apt-get install podman crun)" >&2; exit 2; }
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX ]] || BUSYBOX=/usr/bin/busybox

T=$(mktemp -d /tmp/forker-bench-cli-run.XXXXXX)
OUT=${OUT:-$BENCH/results/cli-run-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

# podman's state, storage, temp files and network config all live in $T.
P=("$PODMAN" --root "$T/podman-root" --runroot "$T/podman-run" --tmpdir "$T/podman-tmp"
   --volumepath "$T/podman-volumes" --network-config-dir "$T/podman-net" --storage-driver overlay
   --runtime "$CRUN" --cgroup-manager cgroupfs --events-backend file)
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"

# crun refuses a cgroup-v1 host whose cgroup2 mount (/sys/fs/cgroup/unified) has a controller.
# There every contender runs in a private mount namespace made by spawntime ("ns"), and podman's
# also has that mount detached ("hide"), so crun sees a pure v1 host; the host is untouched.
HYBRID=0
if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null && [[ -n $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null) ]]; then
  HYBRID=1
fi
if ((HYBRID)); then W=ns PW=hide; else W=direct PW=direct; fi
in_hidden() {  # runs sh -c "$1" with the cgroup2 mount detached (crun's leftovers lie underneath)
  unshare -m sh -c "mount --make-rslave / && umount -l /sys/fs/cgroup/unified && $1"
}

# Cgroups podman (cgroupfs manager) makes and leaves: libpod_parent (conmon's, and the parent of
# the containers') in every v1 hierarchy, and, with cgroup2 hidden, crun's directories in the
# tmpfs beneath it. Removed at exit if they were not there before.
had_libpod=()
for c in /sys/fs/cgroup/*/; do [[ -d ${c}libpod_parent ]] && had_libpod+=("$c"); done
had_hidden_libpod=0
((HYBRID)) && in_hidden '[ -d /sys/fs/cgroup/unified/libpod_parent ]' 2>/dev/null && had_hidden_libpod=1

# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
mounts_under() { awk -v t="$1" 'index($5, t "/") == 1 || $5 == t {print $5}' /proc/self/mountinfo | sort -ru; }
# shellcheck disable=SC2317
cleanup() {
  set +e
  if [[ -d $T/podman-root ]]; then "${P[@]}" system reset -f >/dev/null 2>&1; fi
  local m
  for m in $(mounts_under "$T"); do umount -R "$m" 2>/dev/null || umount -R -l "$m"; done
  if [[ -n $(mounts_under "$T") ]]; then
    echo "cli-run.sh: mounts left under $T:" >&2; mounts_under "$T" >&2
  else
    rm -rf "$T"
  fi
  local c
  for c in /sys/fs/cgroup/*/; do
    [[ -d ${c}libpod_parent && " ${had_libpod[*]} " != *" $c "* ]] || continue
    find "${c}libpod_parent" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
    rmdir "${c}libpod_parent" 2>/dev/null || echo "cli-run.sh: could not remove ${c}libpod_parent" >&2
  done
  if ((HYBRID && !had_hidden_libpod)); then
    in_hidden 'rm -rf /sys/fs/cgroup/unified/libpod_parent' 2>/dev/null
  fi
}
trap cleanup EXIT

log "compiling bench/src/spawntime.c into $T/bin"
mkdir -p "$T/bin"
gcc -O2 -static -Wall -Wextra -o "$T/bin/spawntime" "$BENCH/src/spawntime.c"
ST=$T/bin/spawntime

# ------------------------------------------------------------------ image ---
# podman's image: the host's busybox, a symlink per applet where `busybox --list-full` puts it
# (busybox --install -s in a chroot), /etc/passwd and /etc/group as forker's built-in image has.
log "podman image localhost/bench-busybox from $BUSYBOX"
R=$T/rootfs
mkdir -p "$R"/{bin,dev,etc,home,proc,sys,usr/bin,usr/sbin,sbin,var/spool,var/www,root,tmp}
chmod 700 "$R/root"; chmod 1777 "$R/tmp"
cp "$BUSYBOX" "$R/bin/busybox"
chroot "$R" /bin/busybox --install -s
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$R/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$R/etc/group"
tar -C "$R" -c . | "${P[@]}" import - localhost/bench-busybox >/dev/null

F_RUN=("$FORKER" --storage-root "$T/store" run --rm --network none busybox true)
P_RUN=("${P[@]}" run --rm --network none)
P_IMG=(localhost/bench-busybox true)

# Untimed first runs: forker makes its built-in image, both fill the page cache. Where podman's
# default RLIMIT_NOFILE/NPROC are above the hard limits and crun lacks CAP_SYS_RESOURCE to raise
# them (`setrlimit ... Operation not permitted`), podman gets small fixed ones (crun still fails
# here with the host's hard NPROC, 96363, so not those).
log "first runs (untimed)"
if ! "$ST" -n 0 -w 1 forker "$W" "${F_RUN[@]}" 2>"$T/first-forker.err"; then
  echo "cli-run.sh: forker run failed:" >&2; cat "$T/first-forker.err" >&2; exit 1
fi
ULIMITS=()
if ! "$ST" -n 0 -w 1 podman "$PW" "${P_RUN[@]}" "${P_IMG[@]}" 2>"$T/first-podman.err"; then
  if grep -q 'setrlimit' "$T/first-podman.err"; then
    ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
    log "podman run needs ${ULIMITS[*]} here"
    "$ST" -n 0 -w 1 podman "$PW" "${P_RUN[@]}" "${ULIMITS[@]}" "${P_IMG[@]}" 2>"$T/first-podman.err" ||
      { echo "cli-run.sh: podman run failed:" >&2; cat "$T/first-podman.err" >&2; exit 1; }
  else
    echo "cli-run.sh: podman run failed:" >&2; cat "$T/first-podman.err" >&2; exit 1
  fi
fi
P_RUN+=("${ULIMITS[@]}" "${P_IMG[@]}")

# ------------------------------------------------------------------- run ---
CMDS=(forker "$W" "${F_RUN[@]}" --- podman "$PW" "${P_RUN[@]}")
# forker without the wrapper (its cost), and /bin/true through it: the method's floor.
((HYBRID)) && CMDS+=(--- forker-direct direct "${F_RUN[@]}")
CMDS+=(--- true "$W" /bin/true)

{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "kernel=$(uname -r)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "cgroup=$(if ((HYBRID)); then echo 'v1 hybrid (cgroup2 with controllers at /sys/fs/cgroup/unified)'; elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then echo v2; else echo v1; fi)"
  echo "forker=$("$FORKER" --version 2>&1 | head -1) ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+dirty'))"
  echo "podman=$("$PODMAN" --version | head -1)"
  echo "crun=$("$CRUN" --version | head -1)"
  echo "conmon=$(conmon --version 2>/dev/null | head -1)"
  echo "busybox=$("$BUSYBOX" 2>&1 | head -1)"
  echo "wrapper=$W/$PW"
  echo "ulimits=${ULIMITS[*]}"
  echo "forker_cmd=forker --storage-root \$T/store run --rm --network none busybox true"
  echo "podman_cmd=podman --root \$T/... --runtime $CRUN --cgroup-manager cgroupfs --events-backend file --storage-driver overlay run --rm --network none ${ULIMITS[*]} localhost/bench-busybox true"
  echo "iters=$ITERS"
  echo "quick=$QUICK"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"
: >"$OUT/samples.csv"; : >"$OUT/load.csv"

log "$ITERS iterations of: ${CMDS[*]//$T/\$T}"
rc=0
"$ST" -n "$ITERS" -w 1 -o "$OUT/samples.csv" -l "$OUT/load.csv" "${CMDS[@]}" || rc=$?
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"
((rc == 0)) || log "some samples failed (see above); they are left out of the figures"

# ----------------------------------------------------------------- report ---
python3 - "$OUT" <<'EOF' >"$OUT/report.md"
import collections, csv, os, statistics, sys

out = sys.argv[1]
kv = dict(l.rstrip("\n").split("=", 1) for l in open(os.path.join(out, "machine.txt")) if "=" in l)
rows = collections.defaultdict(dict)  # name -> iter -> row
failed = collections.Counter()
names = set()
for r in csv.reader(open(os.path.join(out, "samples.csv"))):
    if len(r) != 11:
        continue
    it, pos, name, ns, st, rss, flt, tns, trss, tflt, load = r
    names.add(name)
    if int(st) != 0:
        failed[name] += 1
        continue
    rows[name][int(it)] = dict(ns=int(ns), rss=int(rss), flt=int(flt), tns=int(tns), trss=int(trss), tflt=int(tflt))
order = [n for n in ["forker", "podman", "forker-direct", "true"] if n in names]

def med(xs):
    return statistics.median(xs) if xs else float("nan")

def ratios(a, b):
    common = sorted(set(rows[a]) & set(rows[b]))
    return [rows[a][i]["ns"] / rows[b][i]["ns"] for i in common]

ms = lambda ns: f"{ns / 1e6:.1f}"
print("# `forker run --rm busybox true` against `podman run --rm` (crun)\n")
if kv.get("quick") == "1":
    print("**--quick: 3 iterations, figures meaningless.**\n")
print(f"{kv.get('date')}, {kv.get('cpu')}, Linux {kv.get('kernel')}, cgroup {kv.get('cgroup')}.  ")
print(f"{kv.get('forker')}; {kv.get('podman')}, {kv.get('crun')}, {kv.get('conmon')}.  ")
print(f"{kv.get('iters')} iterations, interleaved (every contender once per iteration, order rotating), one warm-up iteration dropped.\n")
r = ratios("forker", "podman")
target = 0.1
if r:
    verdict = "met" if med(r) <= target else "not met"
    print(f"**forker / podman: {med(r):.3f}** (median of {len(r)} per-iteration ratios; "
          f"min {min(r):.3f}, max {max(r):.3f}; target ≤ {target}: {verdict})\n")
else:
    print("**forker / podman: no iteration where both succeeded**\n")
print("| contender | median ms | min ms | ÷ podman (paired median) | peak RSS KiB | minor faults | after exit: ms, peak RSS KiB, minor faults | failed |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for n in order:
    s = list(rows[n].values())
    t = [x["ns"] for x in s]
    rr = ratios(n, "podman") if n != "podman" else []
    cell = f"{med(rr):.3f}" if rr else ("1" if n == "podman" else "–")
    tail = f"{med([x['tns'] for x in s]) / 1e6:.1f}, {med([x['trss'] for x in s]):.0f}, {med([x['tflt'] for x in s]):.0f}" if s else "–"
    print(f"| {n} | {ms(med(t)) if t else '–'} | {ms(min(t)) if t else '–'} | {cell} | "
          f"{med([x['rss'] for x in s]):.0f} | {med([x['flt'] for x in s]):.0f} | {tail} | {failed[n]} |")
print()
ld = [l.strip().split(",") for l in open(os.path.join(out, "load.csv")) if l.strip()]
print(f"Load average (1, 5, 15 min): {kv.get('loadavg_start')} at start, {kv.get('loadavg_end')} at end", end="")
if ld:
    secs, l0, l1, busy, own, cpus = ld[0]
    print(f"; over the {float(secs):.0f} s the machine's {cpus} CPUs were {float(busy) * 100:.0f}% busy, "
          f"the bench's own processes {float(own) * 100:.0f}% (shares of all CPU time).")
else:
    print(".")
print()
print("- Wall time: CLOCK_MONOTONIC around clone+execve and wait4 of the command itself (bench/src/spawntime.c).")
print("- Peak RSS and minor faults: wait4's rusage of the command and the descendants it reaped. "
      "Processes that outlive it (podman's conmon) are waited for by spawntime, untimed, before the next "
      "sample: \"after exit\" is that wait, their peak RSS and their summed minor faults.")
w = kv.get("wrapper", "direct/direct")
if w != "direct/direct":
    print("- cgroup v1 hybrid host: every contender runs in a private mount namespace; for podman the cgroup2 "
          "mount is detached there too (crun refuses hybrid hosts). `forker-direct` is forker without that "
          "wrapper; `true` is /bin/true through it (the method's floor).")
if kv.get("ulimits"):
    print(f"- podman gets `{kv['ulimits']}`: its default limits are above this host's hard limits and crun may not raise them.")
print("- Both with `--network none`, so that this compares the container start itself; `bench/net.sh` measures what bridge networking adds.")
EOF
((QUICK)) || cp "$OUT/report.md" "$BENCH/results/cli-run-latest.md"
cat "$OUT/report.md"
log "raw samples: $OUT"
exit "$rc"
