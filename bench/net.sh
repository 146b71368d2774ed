#!/usr/bin/env bash
# What bridge networking adds to a container start: `forker run --rm busybox true` on its default
# bridge (forker0) against `--network none`, beside the same pair for `podman run --rm` (crun,
# netavark's default bridge), all four in one run, interleaved. See bench/README.md ("Bridge
# networking: forker against podman").
#
# usage: bench/net.sh [--quick] [--iters N] [--no-setup] [--out DIR]
#   --quick     3 iterations (CI: catches a broken script; figures meaningless, not kept)
#   --iters N   iterations (default 30); each runs every contender once, order rotating
#   --no-setup  do not apt-get install anything
#   --out DIR   raw results directory (default bench/results/net-<UTC date-time>, not in git)
# environment:
#   FORKER      the forker CLI (default build/forker)
#
# Networks: podman's default network gets 10.213.50.0/24 (a private containers.conf), forker's
# 10.213.51.0/24 (FORKER_DEFAULT_SUBNET); the script refuses to start when either subnet is
# routed or a bridge forker0/podman0 exists. No traffic leaves the host: the containers run
# `true`, and podman's default network has no DNS server.
#
# Writes DIR/samples.csv (every sample: iter,pos,name,ns,status,maxrss_kb,minflt,tail_ns,
# tail_maxrss_kb,tail_minflt,load1), DIR/load.csv, DIR/machine.txt and DIR/report.md, prints the
# report, and (not with --quick) copies it to bench/results/net-latest.md. Everything the bench
# makes (stores, mounts, cgroups, the forker0 network and table inet forker, podman's bridge and
# netavark's iptables chains) is removed at exit.
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
    *) echo "net.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
((QUICK)) && ITERS=3
[[ $(id -u) == 0 ]] || { echo "net.sh: must run as root (bridges, nftables, podman)" >&2; exit 2; }
log() { printf '== %s\n' "$*" >&2; }

P_SUBNET=10.213.50.0/24
F_SUBNET=10.213.51.0/24
P_BRIDGE=podman0  # netavark's bridge for podman's default network (not configurable in podman 4)
F_BRIDGE=forker0

# ------------------------------------------------------------------ setup ---
if ((SETUP)); then
  # netavark is podman's network backend on Debian 12 (a Recommends; CNI is the fallback);
  # iptables is what netavark 1.4 programs its NAT with.
  need=()
  for p in podman crun conmon netavark iptables busybox-static gcc libc6-dev python3 nftables iproute2; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
  done
  if ((${#need[@]})); then
    log "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
FORKER=$(realpath -m "${FORKER:-$REPO/build/forker}")
[[ -x $FORKER ]] || { echo "net.sh: no forker CLI at $FORKER (cmake --build build --target forker-cli forker-init, or FORKER=path)" >&2; exit 2; }
CRUN=/usr/bin/crun
PODMAN=$(command -v podman || true)
[[ -x $CRUN && -x $PODMAN ]] || { echo "net.sh: podman and crun are needed (apt-get install podman crun)" >&2; exit 2; }
NETAVARK=
for d in /usr/lib/podman /usr/libexec/podman /usr/local/lib/podman; do
  [[ -x $d/netavark ]] && { NETAVARK=$d/netavark; break; }
done
[[ -n $NETAVARK ]] || { echo "net.sh: netavark is needed (apt-get install netavark)" >&2; exit 2; }
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX ]] || BUSYBOX=/usr/bin/busybox

# Refuse rather than collide: the subnets must be unrouted and the bridge names free (forker
# would take over a forker0 it does not know; podman0 may be someone's podman).
for s in "$P_SUBNET" "$F_SUBNET"; do
  if { ip -4 route show to match "$s"; ip -4 route show root "$s"; } | grep -qv '^default'; then
    echo "net.sh: $s is already routed here:" >&2
    { ip -4 route show to match "$s"; ip -4 route show root "$s"; } | grep -v '^default' >&2; exit 2
  fi
done
for b in "$F_BRIDGE" "$P_BRIDGE"; do
  if ip link show "$b" >/dev/null 2>&1; then
    echo "net.sh: a link $b exists already; not touching it" >&2; exit 2
  fi
done
# What exists before, so that only what the bench made is removed.
had_forker_table=0
nft list table inet forker >/dev/null 2>&1 && had_forker_table=1
had_tables=$(nft list tables 2>/dev/null || true)
had_netavark_chains=0
for ipt in iptables ip6tables; do
  for t in nat filter mangle; do
    "$ipt" -t "$t" -S 2>/dev/null | grep -q NETAVARK && had_netavark_chains=1
  done
done
had_netns=$(ls /run/netns 2>/dev/null || true)

T=$(mktemp -d /tmp/forker-bench-net.XXXXXX)
OUT=${OUT:-$BENCH/results/net-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

# podman's state, storage, temp files and network config all live in $T; its containers.conf
# is private too (CONTAINERS_CONF: only that file is read), giving the default network our subnet.
mkdir -p "$T/podman-net"
cat >"$T/containers.conf" <<EOF
[network]
network_backend = "netavark"
network_config_dir = "$T/podman-net"
default_subnet = "$P_SUBNET"
default_subnet_pools = []
EOF
export CONTAINERS_CONF=$T/containers.conf
export FORKER_DEFAULT_SUBNET=$F_SUBNET
P=("$PODMAN" --root "$T/podman-root" --runroot "$T/podman-run" --tmpdir "$T/podman-tmp"
   --volumepath "$T/podman-volumes" --network-config-dir "$T/podman-net" --storage-driver overlay
   --runtime "$CRUN" --cgroup-manager cgroupfs --events-backend file)
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"

# crun refuses a cgroup-v1 host whose cgroup2 mount (/sys/fs/cgroup/unified) has a controller.
# There every contender runs in a private mount namespace made by spawntime ("ns"), and podman's
# also has that mount detached ("hide"), so crun sees a pure v1 host; the host is untouched.
# Bridge and none of one runtime share the wrapper, so it cancels in their difference.
HYBRID=0
if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null && [[ -n $(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null) ]]; then
  HYBRID=1
fi
if ((HYBRID)); then W=ns PW=hide; else W=direct PW=direct; fi
in_hidden() {  # runs sh -c "$1" with the cgroup2 mount detached (crun's leftovers lie underneath)
  unshare -m sh -c "mount --make-rslave / && umount -l /sys/fs/cgroup/unified && $1"
}

had_libpod=()
for c in /sys/fs/cgroup/*/; do [[ -d ${c}libpod_parent ]] && had_libpod+=("$c"); done
had_hidden_libpod=0
((HYBRID)) && in_hidden '[ -d /sys/fs/cgroup/unified/libpod_parent ]' 2>/dev/null && had_hidden_libpod=1

# shellcheck disable=SC2317  # the cleanup functions run from the EXIT trap
mounts_under() { awk -v t="$1" 'index($5, t "/") == 1 || $5 == t {print $5}' /proc/self/mountinfo | sort -ru; }
# netavark 1.4 leaves its shared chains (NETAVARK_FORWARD, NETAVARK-HOSTPORT-*) and the jumps to
# them when its last network goes; drop every NETAVARK rule and chain in one iptables-restore
# per table (only when there were none before the bench).
# shellcheck disable=SC2317
drop_netavark_chains() {
  local ipt t script
  for ipt in iptables ip6tables; do
    for t in nat filter mangle; do
      "$ipt" -t "$t" -S 2>/dev/null | grep -q NETAVARK || continue
      script=$(
        echo "*$t"
        "$ipt" -t "$t" -S | grep '^-A ' | grep -v '^-A NETAVARK' | grep -- '-j NETAVARK' | sed 's/^-A /-D /'
        "$ipt" -t "$t" -S | awk '$1 == "-N" && $2 ~ /^NETAVARK/ {print "-F " $2}'
        "$ipt" -t "$t" -S | awk '$1 == "-N" && $2 ~ /^NETAVARK/ {print "-X " $2}'
        echo COMMIT
      )
      printf '%s\n' "$script" | "${ipt}-restore" --noflush ||
        echo "net.sh: could not remove netavark's chains from $ipt -t $t" >&2
    done
  done
  # Tables iptables-nft made for netavark and that are empty again.
  local fam
  for fam in ip ip6; do
    ipt=iptables; [[ $fam == ip6 ]] && ipt=ip6tables
    for t in nat filter mangle; do
      grep -qx "table $fam $t" <<<"$had_tables" && continue
      nft list table "$fam" "$t" >/dev/null 2>&1 || continue
      "$ipt" -t "$t" -S 2>/dev/null | grep -qv '^-P ' || nft delete table "$fam" "$t"
    done
  done
}
# shellcheck disable=SC2317
cleanup() {
  set +e
  # forker: `network rm` deletes the bridge and rebuilds table inet forker, deleting it when no
  # network is left.
  if [[ -d $T/store ]]; then
    "$FORKER" --storage-root "$T/store" network rm "$F_BRIDGE" >/dev/null 2>"$T/network-rm.err" ||
      { grep -q 'no such network' "$T/network-rm.err" || cat "$T/network-rm.err" >&2; }
  fi
  if ip link show "$F_BRIDGE" >/dev/null 2>&1; then
    echo "net.sh: $F_BRIDGE survived network rm; deleting it" >&2
    ip link del "$F_BRIDGE"
  fi
  if ((!had_forker_table)) && nft list table inet forker >/dev/null 2>&1; then
    if [[ -z $(ls /run/forker-network/networks 2>/dev/null) ]]; then
      echo "net.sh: table inet forker survived network rm; deleting it" >&2
      nft delete table inet forker
    else
      echo "net.sh: table inet forker stays: other forker networks exist now" >&2
    fi
  fi
  # podman: reset removes the containers (and their netns) and the store.
  if [[ -d $T/podman-root ]]; then "${P[@]}" system reset -f >/dev/null 2>&1; fi
  if ip link show "$P_BRIDGE" >/dev/null 2>&1; then ip link del "$P_BRIDGE"; fi
  ((had_netavark_chains)) || drop_netavark_chains
  local n
  for n in /run/netns/*; do
    [[ -e $n ]] || continue
    n=${n##*/}
    grep -qx "$n" <<<"$had_netns" && continue
    echo "net.sh: netns $n left; removing it" >&2
    umount "/run/netns/$n" 2>/dev/null; rm -f "/run/netns/$n"
  done
  local m
  for m in $(mounts_under "$T"); do umount -R "$m" 2>/dev/null || umount -R -l "$m"; done
  if [[ -n $(mounts_under "$T") ]]; then
    echo "net.sh: mounts left under $T:" >&2; mounts_under "$T" >&2
  else
    rm -rf "$T"
  fi
  local c
  for c in /sys/fs/cgroup/*/; do
    [[ -d ${c}libpod_parent && " ${had_libpod[*]} " != *" $c "* ]] || continue
    find "${c}libpod_parent" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null
    rmdir "${c}libpod_parent" 2>/dev/null || echo "net.sh: could not remove ${c}libpod_parent" >&2
  done
  if ((HYBRID && !had_hidden_libpod)); then
    in_hidden 'rm -rf /sys/fs/cgroup/unified/libpod_parent' 2>/dev/null
  fi
  # Say what is left, if anything.
  ip link show "$F_BRIDGE" >/dev/null 2>&1 && echo "net.sh: link $F_BRIDGE is still there" >&2
  ip link show "$P_BRIDGE" >/dev/null 2>&1 && echo "net.sh: link $P_BRIDGE is still there" >&2
  ((had_forker_table)) || ! nft list table inet forker >/dev/null 2>&1 ||
    echo "net.sh: table inet forker is still there" >&2
  return 0
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

F=("$FORKER" --storage-root "$T/store" run --rm)
F_BR=("${F[@]}" busybox true)
F_NONE=("${F[@]}" --network none busybox true)
P_NONE=("${P[@]}" run --rm --network none)
P_BR=("${P[@]}" run --rm)
P_IMG=(localhost/bench-busybox true)

# Untimed first runs: forker makes its built-in image and its default network, both fill the
# page cache. Where podman's default RLIMIT_NOFILE/NPROC are above the hard limits and crun lacks
# CAP_SYS_RESOURCE to raise them (`setrlimit ... Operation not permitted`), podman gets small
# fixed ones, on both of its contenders.
log "first runs (untimed)"
first() {  # NAME MODE ARGV...: one untimed run; its output in $T/first-NAME.err
  local name=$1; shift
  "$ST" -n 0 -w 1 "$name" "$@" 2>"$T/first-$name.err"
}
for c in forker-none forker-bridge; do
  if [[ $c == forker-none ]]; then a=("${F_NONE[@]}"); else a=("${F_BR[@]}"); fi
  first "$c" "$W" "${a[@]}" || { echo "net.sh: $c failed:" >&2; cat "$T/first-$c.err" >&2; exit 1; }
done
ULIMITS=()
if ! first podman-none "$PW" "${P_NONE[@]}" "${P_IMG[@]}"; then
  if grep -q 'setrlimit' "$T/first-podman-none.err"; then
    ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
    log "podman run needs ${ULIMITS[*]} here"
    first podman-none "$PW" "${P_NONE[@]}" "${ULIMITS[@]}" "${P_IMG[@]}" ||
      { echo "net.sh: podman run failed:" >&2; cat "$T/first-podman-none.err" >&2; exit 1; }
  else
    echo "net.sh: podman run failed:" >&2; cat "$T/first-podman-none.err" >&2; exit 1
  fi
fi
P_NONE+=("${ULIMITS[@]}" "${P_IMG[@]}")
P_BR+=("${ULIMITS[@]}" "${P_IMG[@]}")
first podman-bridge "$PW" "${P_BR[@]}" ||
  { echo "net.sh: podman run (bridge) failed:" >&2; cat "$T/first-podman-bridge.err" >&2; exit 1; }

# What stays between runs: forker keeps its bridge and table; netavark deletes its bridge (and
# the network's NAT chains) when the network's last container goes.
f_keep=absent p_keep=absent
ip link show "$F_BRIDGE" >/dev/null 2>&1 && f_keep=present
ip link show "$P_BRIDGE" >/dev/null 2>&1 && p_keep=present
P_BACKEND=$("${P[@]}" info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo '?')

# ------------------------------------------------------------------- run ---
CMDS=(forker-bridge "$W" "${F_BR[@]}" --- forker-none "$W" "${F_NONE[@]}"
      --- podman-bridge "$PW" "${P_BR[@]}" --- podman-none "$PW" "${P_NONE[@]}")

{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "kernel=$(uname -r)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "cgroup=$(if ((HYBRID)); then echo 'v1 hybrid (cgroup2 with controllers at /sys/fs/cgroup/unified)'; elif [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then echo v2; else echo v1; fi)"
  echo "forker=$("$FORKER" --version 2>&1 | head -1) ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+dirty'))"
  echo "podman=$("$PODMAN" --version | head -1)"
  echo "crun=$("$CRUN" --version | head -1)"
  echo "conmon=$(conmon --version 2>/dev/null | head -1)"
  echo "netavark=$("$NETAVARK" --version 2>/dev/null | head -1)"
  echo "iptables=$(iptables -V 2>/dev/null | head -1)"
  echo "podman_backend=$P_BACKEND"
  echo "busybox=$("$BUSYBOX" 2>&1 | head -1)"
  echo "wrapper=$W/$PW"
  echo "ulimits=${ULIMITS[*]}"
  echo "forker_bridge_kept=$f_keep"
  echo "podman_bridge_kept=$p_keep"
  echo "forker_cmd=FORKER_DEFAULT_SUBNET=$F_SUBNET forker --storage-root \$T/store run --rm [--network none] busybox true"
  echo "podman_cmd=podman --root \$T/... --runtime $CRUN --cgroup-manager cgroupfs --events-backend file --storage-driver overlay run --rm [--network none] ${ULIMITS[*]} localhost/bench-busybox true"
  echo "subnets=podman $P_SUBNET ($P_BRIDGE), forker $F_SUBNET ($F_BRIDGE)"
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
order = [n for n in ["forker-bridge", "forker-none", "podman-bridge", "podman-none"] if n in names]

def med(xs):
    return statistics.median(xs) if xs else float("nan")

def quart(xs):
    if len(xs) < 4:
        return (min(xs), max(xs)) if xs else (float("nan"),) * 2
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]

def diffs(a, b, key="ns"):  # per-iteration a - b, iterations where both succeeded
    common = sorted(set(rows[a]) & set(rows[b]))
    return [rows[a][i][key] - rows[b][i][key] for i in common]

ms = lambda ns: f"{ns / 1e6:.1f}"
print("# Bridge networking: what it adds to `forker run` and to `podman run`\n")
if kv.get("quick") == "1":
    print("**--quick: 3 iterations, figures meaningless.**\n")
print(f"{kv.get('date')}, {kv.get('cpu')}, Linux {kv.get('kernel')}, cgroup {kv.get('cgroup')}.  ")
print(f"{kv.get('forker')}; {kv.get('podman')} (network backend {kv.get('podman_backend')}, "
      f"{kv.get('netavark')}, {kv.get('iptables')}), {kv.get('crun')}, {kv.get('conmon')}.  ")
print(f"{kv.get('iters')} iterations, interleaved (every contender once per iteration, order rotating), one warm-up iteration dropped.\n")

added = {}
for rt in ["forker", "podman"]:
    d = diffs(f"{rt}-bridge", f"{rt}-none")
    added[rt] = d
fa, pa = med(added["forker"]), med(added["podman"])
target = 0.2
if added["forker"] and added["podman"] and pa > 0:
    ratio = fa / pa
    verdict = "met" if ratio <= target else "not met"
    print(f"**Added by the bridge: forker {ms(fa)} ms, podman {ms(pa)} ms; forker / podman = {ratio:.3f}** "
          f"(medians over iterations of bridge − none; target ≤ {target}: {verdict})\n")
else:
    print("**Added by the bridge: not enough successful pairs (or podman's added time is not positive)**\n")

print("| runtime | added ms (median of bridge − none) | quartiles ms | min(bridge) − min(none) ms | added minor faults | added after exit ms | pairs |")
print("|---|---:|---:|---:|---:|---:|---:|")
for rt in ["forker", "podman"]:
    b, n = f"{rt}-bridge", f"{rt}-none"
    d = added[rt]
    if not d:
        print(f"| {rt} | – | – | – | – | – | 0 |")
        continue
    q1, q3 = quart(d)
    mins = min(x["ns"] for x in rows[b].values()) - min(x["ns"] for x in rows[n].values())
    print(f"| {rt} | {ms(med(d))} | {ms(q1)} … {ms(q3)} | {ms(mins)} | {med(diffs(b, n, 'flt')):.0f} | "
          f"{ms(med(diffs(b, n, 'tns')))} | {len(d)} |")
print()
print("| contender | median ms | min ms | peak RSS KiB | minor faults | after exit: ms, peak RSS KiB, minor faults | failed |")
print("|---|---:|---:|---:|---:|---:|---:|")
for n in order:
    s = list(rows[n].values())
    t = [x["ns"] for x in s]
    tail = f"{med([x['tns'] for x in s]) / 1e6:.1f}, {med([x['trss'] for x in s]):.0f}, {med([x['tflt'] for x in s]):.0f}" if s else "–"
    print(f"| {n} | {ms(med(t)) if t else '–'} | {ms(min(t)) if t else '–'} | "
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
print(f"- Contenders: `{kv.get('forker_cmd')}` and `{kv.get('podman_cmd')}`; subnets {kv.get('subnets')}.")
print("- Added time: per iteration, the bridge run's wall time minus the same runtime's `--network none` run "
      "in that iteration; the median of those differences is the figure, the quartiles show their spread. "
      "The ratio is forker's median over podman's.")
print("- Wall time: CLOCK_MONOTONIC around clone+execve and wait4 of the command itself (bench/src/spawntime.c). "
      "Peak RSS and minor faults: wait4's rusage of the command and the descendants it reaped. Processes that "
      "outlive it (podman's conmon and its cleanup command) are waited for, untimed, before the next sample: "
      "\"after exit\" is that wait.")
fk, pk = kv.get("forker_bridge_kept"), kv.get("podman_bridge_kept")
print(f"- After a run, forker's bridge was {fk} (forker keeps it and its nftables table; both were made by "
      f"an untimed first run) and podman's was {pk}"
      + (" (netavark deletes the bridge and the network's NAT chains with the network's last container, "
         "so every podman bridge run makes them again)." if pk == "absent" else "."))
w = kv.get("wrapper", "direct/direct")
if w != "direct/direct":
    print("- cgroup v1 hybrid host: every contender runs in a private mount namespace; for podman the cgroup2 "
          "mount is detached there too (crun refuses hybrid hosts). Both contenders of a runtime share the "
          "wrapper, so it cancels in the added time.")
if kv.get("ulimits"):
    print(f"- podman gets `{kv['ulimits']}` on both its contenders: its default limits are above this host's "
          "hard limits and crun may not raise them.")
EOF
((QUICK)) || cp "$OUT/report.md" "$BENCH/results/net-latest.md"
cat "$OUT/report.md"
log "raw samples: $OUT"
exit "$rc"
