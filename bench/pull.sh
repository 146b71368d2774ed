#!/usr/bin/env bash
# Pull + unpack of a multi-layer image from a local registry: `forker pull` against
# `skopeo copy` + `umoci unpack` and against `podman pull` (vfs), side by side in one run,
# interleaved, each from an empty store every time. Prints medians and ratios to skopeo+umoci.
# Usage (root): bench/pull.sh [FORKER_BIN] [ITERATIONS]   (default build/forker, 5)
# Needs docker-registry, skopeo, umoci (scripts/setup.sh installs them); podman is optional.
set -euo pipefail
cd "$(dirname "$0")/.."
FORKER=$(realpath "${1:-build/forker}")
N=${2:-5}
T=$(mktemp -d /tmp/forker-bench-pull.XXXXXX)
REG_PID=
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

# A private registry on a free loopback port.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$T/registry.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $T/registry
http:
  addr: 127.0.0.1:$PORT
YML
/usr/bin/docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && break; sleep 0.1; done

# Five layers of real files (busybox, then host directories), each one `umoci repack`.
umoci init --layout "$T/layout" >/dev/null
umoci new --image "$T/layout:bench" >/dev/null
umoci unpack --image "$T/layout:bench" "$T/bundle" >/dev/null
mkdir -p "$T/bundle/rootfs/bin"
cp /bin/busybox "$T/bundle/rootfs/bin/"
umoci repack --refresh-bundle --image "$T/layout:bench" "$T/bundle" >/dev/null
for d in /usr/share/perl /usr/lib/python3.11 /usr/share/i18n /usr/include; do
  [ -d "$d" ] || continue
  mkdir -p "$T/bundle/rootfs$(dirname "$d")"
  cp -a "$d" "$T/bundle/rootfs$d"
  umoci repack --refresh-bundle --image "$T/layout:bench" "$T/bundle" >/dev/null
done
REF=127.0.0.1:$PORT/bench/layers:1
skopeo copy -q --dest-tls-verify=false "oci:$T/layout:bench" "docker://$REF"
layers=$(skopeo inspect --tls-verify=false "docker://$REF" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["Layers"]))')
bytes=$(du -sb "$T/registry" | cut -f1)
echo "image: $REF, $layers layers, registry holds $((bytes / 1048576)) MiB"

now() { date +%s.%N; }
t_forker() {
  rm -rf "$T/f"
  local s; s=$(now)
  "$FORKER" --storage-root "$T/f" pull -q "$REF" >/dev/null
  echo "$(now) - $s" | bc
}
t_skopeo_umoci() {
  rm -rf "$T/s" "$T/u"
  local s; s=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$T/s:x" >/dev/null
  umoci unpack --image "$T/s:x" "$T/u" >/dev/null
  echo "$(now) - $s" | bc
}
t_podman() {
  rm -rf "$T/p"
  local s; s=$(now)
  podman --root "$T/p/root" --runroot "$T/p/run" --storage-driver vfs \
    pull -q --tls-verify=false "$REF" >/dev/null 2>&1
  echo "$(now) - $s" | bc
}
runners=(t_forker t_skopeo_umoci)
command -v podman >/dev/null && runners+=(t_podman)
declare -A times
for ((i = 0; i < N; i++)); do
  # Rotate the order so no runner always goes first (page cache, CPU frequency).
  for ((k = 0; k < ${#runners[@]}; k++)); do
    r=${runners[$(((i + k) % ${#runners[@]}))]}
    sync
    times[$r]+="$($r) "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${times[t_skopeo_umoci]}" | median)
printf '%-22s %10s %8s\n' runner "median s" ratio
for r in "${runners[@]}"; do
  m=$(echo "${times[$r]}" | median)
  printf '%-22s %10.3f %8.2f\n' "${r#t_}" "$m" "$(echo "$m / $base" | bc -l)"
done
rm -rf "$T/p" 2>/dev/null || true
