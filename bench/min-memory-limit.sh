#!/usr/bin/env bash
# The smallest linux.resources.memory.limit under which `RUNTIME run` of /bin/true exits 0, found
# by bisection for forker-oci, runc and crun in one run, on the same bundle.
#
# usage: bench/min-memory-limit.sh [--forker PATH] [--runc PATH] [--crun PATH] [--tries N]
#   --forker PATH  forker-oci (default: build/forker-oci, else /work/build-cg/forker-oci)
#   --runc PATH    runc (default: runc on PATH); "" to skip
#   --crun PATH    crun (default: crun on PATH); "" to skip
#   --tries N      runs that must all exit 0 for a limit to count in the bisection (default 3)
#   --verify N     runs the result must then pass too, else it rises 16 KiB (default 10)
#
# The bundle: a busybox-static rootfs, runc's default config (`runc spec`) with /bin/true,
# terminal off, memory.limit set (memory+swap left alone: no swap needed to start /bin/true).
# The search is in 4 KiB pages between 0 and 64 MiB; a limit passes when every try exits 0, and
# the result is verified by --verify more runs (raised 16 KiB at a time until they all pass).
# crun 1.8 refuses hybrid hosts ("cgroups in hybrid mode not supported") whose cgroup2 mount
# has a controller: there it runs in a private mount namespace where /sys/fs/cgroup/unified is
# unmounted (as tests/conformance/run-runtime-tools.sh --hide-cgroup2-unified does), so it sees
# a v1 host; the limit lands in the same v1 memory controller as for the others.
# Prints one line per runtime: "NAME BYTES (KIB KiB)", or "NAME failed at 64 MiB".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
FORKER=
for f in "$REPO/build/forker-oci" /work/build-cg/forker-oci; do
  [[ -z $FORKER && -x $f ]] && FORKER=$f
done
RUNC=$(command -v runc || true)
CRUN=$(command -v crun || true)
TRIES=3
VERIFY=10
while (($#)); do
  case $1 in
    --forker) FORKER=$2; shift 2 ;;
    --runc) RUNC=$2; shift 2 ;;
    --crun) CRUN=$2; shift 2 ;;
    --tries) TRIES=$2; shift 2 ;;
    --verify) VERIFY=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "min-memory-limit.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "min-memory-limit.sh: must run as root" >&2; exit 2; }
[[ -x $FORKER ]] || { echo "min-memory-limit.sh: no forker-oci (--forker PATH)" >&2; exit 2; }
[[ -x /bin/busybox ]] || { echo "min-memory-limit.sh: needs /bin/busybox (busybox-static)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "min-memory-limit.sh: needs python3" >&2; exit 2; }
SPEC_TOOL=${RUNC:-$FORKER}  # runc's default spec; forker-oci spec writes the same one

WORK=$(mktemp -d /tmp/forker-minmem.XXXXXX)
CG_PARENT=forker-minmem-$$
cleanup() {
  local d
  for d in "$WORK"/state/*/*; do
    [[ -d $d ]] || continue
    local rt=${d%/*}; rt=${rt##*/}
    run_rt "$rt" delete -f "${d##*/}" >/dev/null 2>&1 || true
  done
  for d in /sys/fs/cgroup/*/"$CG_PARENT" /sys/fs/cgroup/"$CG_PARENT"; do
    [[ -d $d ]] && rmdir "$d"/* "$d" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/bundle/rootfs/bin" "$WORK/state"
cp /bin/busybox "$WORK/bundle/rootfs/bin/busybox"
ln -s busybox "$WORK/bundle/rootfs/bin/true"
(cd "$WORK/bundle" && "$SPEC_TOOL" spec)

HYBRID=0
mountpoint -q /sys/fs/cgroup/unified 2>/dev/null && HYBRID=1

declare -A BIN=([forker]=$FORKER [runc]=$RUNC [crun]=$CRUN)
rt_cmd() {  # rt_cmd NAME: CMD=(the runtime with its own --root)
  CMD=("${BIN[$1]}" --root "$WORK/state/$1")
  if [[ $1 == crun && $HYBRID == 1 ]]; then
    CMD=(unshare -m --propagation slave /bin/sh -c 'umount -l /sys/fs/cgroup/unified && exec "$0" "$@"'
         "${CMD[@]}")
  fi
}
run_rt() { rt_cmd "$1"; shift; "${CMD[@]}" "$@"; }

set_limit() {  # set_limit BYTES: config.json with that memory limit
  python3 - "$WORK/bundle/config.json" "$1" "/$CG_PARENT" <<'EOF'
import json, sys
path, limit, parent = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = json.load(open(path))
c["root"]["path"] = "rootfs"
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
# runc's default spec asks for a cgroup namespace; every runtime here supports it, so it stays.
c["linux"].setdefault("resources", {})["memory"] = {"limit": limit}
json.dump(c, open(path, "w"), indent=2)
EOF
}

N=0
passes() {  # passes NAME BYTES: every try of `run` exits 0
  local name=$1 limit=$2 i id
  set_limit "$limit"
  for ((i = 0; i < TRIES; i++)); do
    N=$((N + 1)); id=mm-$$-$N
    python3 - "$WORK/bundle/config.json" "/$CG_PARENT/$name-$id" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["linux"]["cgroupsPath"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"), indent=2)
EOF
    rt_cmd "$name"
    if ! (cd "$WORK/bundle" && timeout 60 "${CMD[@]}" run "$id" </dev/null >/dev/null 2>&1); then
      run_rt "$name" delete -f "$id" >/dev/null 2>&1 || true
      rmdir /sys/fs/cgroup/*/"$CG_PARENT/$name-$id" 2>/dev/null || true
      return 1
    fi
    rmdir /sys/fs/cgroup/*/"$CG_PARENT/$name-$id" 2>/dev/null || true
  done
}

smallest() {  # smallest NAME: bisection over pages; prints bytes, or nothing
  local name=$1 lo=0 hi=$((64 << 20)) mid
  passes "$name" "$hi" || return 0
  while ((hi - lo > 4096)); do
    mid=$(((lo + hi) / 2 / 4096 * 4096))
    if passes "$name" "$mid"; then hi=$mid; else lo=$mid; fi
  done
  # Some runs need more than others (forker-oci here: most pass near 200 KiB, a few need ~300):
  # the figure must hold for VERIFY more runs, else it goes up 16 KiB at a time.
  local saved=$TRIES
  TRIES=$VERIFY
  while ((hi < (64 << 20))) && ! passes "$name" "$hi"; do hi=$((hi + 16384)); done
  TRIES=$saved
  echo "$hi"
}

echo "host: $(uname -r), cgroup $(if ((HYBRID)); then echo 'v1 hybrid (crun with cgroup2 hidden)'; elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then echo v2; else echo v1; fi), $TRIES tries per limit, result verified by $VERIFY runs"
for name in forker runc crun; do
  [[ -n ${BIN[$name]} && -x ${BIN[$name]} ]] || { echo "$name skipped (not installed)"; continue; }
  version=$("${BIN[$name]}" --version 2>/dev/null | head -1)
  bytes=$(smallest "$name")
  if [[ -n $bytes ]]; then
    printf '%-7s %9d bytes (%d KiB)  [%s]\n' "$name" "$bytes" $((bytes / 1024)) "$version"
  else
    printf '%-7s failed even at 64 MiB  [%s]\n' "$name" "$version"
  fi
done
