#!/usr/bin/env bash
# Installs forker's build dependencies (Debian 12, as root), builds it, and runs a busybox
# container offline twice: with forker-oci (`spec` + a busybox-static rootfs + `run`), and with
# forker (`forker run --rm busybox`, its built-in image made from the same busybox).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ cmake make pkg-config libseccomp-dev libcap-dev nlohmann-json3-dev libcli11-dev
          libgtest-dev libgmock-dev busybox-static
          libarchive-dev libcurl4-openssl-dev libssl-dev  # the image store: unpack, pull, digests
          nettle-dev libacl1-dev libxml2-dev libicu-dev liblzma-dev libzstd-dev liblz4-dev
          libbz2-dev zlib1g-dev  # the static archives that libarchive's static link needs
          libmnl-dev libnftables-dev nftables  # networking: netlink, the nftables table (nft: tests)
          slirp4netns  # rootless networking (--network slirp4netns)
          skopeo umoci docker-registry apache2-utils zstd bc curl  # image tests and bench/pull.sh
          podman containerd bsdutils iproute2 procps uidmap passwd util-linux  # engines and tools the tests drive
          tmux)  # a real terminal for forker_tty_test (run -it, exec -it)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build build -j"$(nproc)"

# The demo: a busybox rootfs and runc's default spec, run in the foreground.
demo=$(mktemp -d /tmp/forker-demo.XXXXXX)
trap 'rm -rf "$demo"' EXIT
mkdir -p "$demo/rootfs/bin"
cp /bin/busybox "$demo/rootfs/bin/busybox"
for applet in sh echo cat ls id hostname uname; do ln -s busybox "$demo/rootfs/bin/$applet"; done
source scripts/cgroup_parents.sh
parents_before=$(forker_cgroup_parents)
./build/forker-oci spec --bundle "$demo"
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from $(hostname): $(id); uname -sr"/' "$demo/config.json"
./build/forker-oci run --bundle "$demo" "forker-demo-$$"
# The default bridge network (forker0) is made on first use and kept, as docker keeps docker0;
# the demo removes it again when it made it, so that setup leaves the host as it found it.
had_network=0
./build/forker network ls -q 2>/dev/null | grep -qx forker0 && had_network=1
./build/forker run --rm busybox sh -c \
  'echo "hello from $(hostname), PID $$, in forker run, at $(ip -4 -o addr show eth0 | awk "{print \$4}")"'
[ "$had_network" = 1 ] || ./build/forker network rm forker0 >/dev/null
remove_new_forker_cgroup_parents "$parents_before"
