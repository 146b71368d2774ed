#!/usr/bin/env bash
# Builds a crun release from its source for bench/run.sh (Debian 12, as root).
#
# usage: bench/build-crun.sh SRC [PREFIX]
#   SRC     a crun source tree at the release tag (1.27) with its submodules in place:
#           libocispec, and inside it runtime-spec, image-spec and yajl (a `git clone
#           --recursive --branch 1.27` of containers/crun gives exactly that)
#   PREFIX  install prefix (default /var/tmp/crun-1.27); the binary is PREFIX/bin/crun, where
#           run.sh looks for it (or set CRUN_NEW)
#
# yajl is only configured, not built: crun links Debian's libyajl (--enable-embedded-yajl is off).
set -euo pipefail
SRC=$(cd "${1:?usage: build-crun.sh SRC [PREFIX]}" && pwd)
PREFIX=${2:-/var/tmp/crun-1.27}
[[ -f $SRC/configure.ac && -f $SRC/libocispec/configure.ac ]] ||
  { echo "build-crun.sh: $SRC is not a crun tree with libocispec in place" >&2; exit 2; }
for d in runtime-spec image-spec yajl; do
  [[ -n $(ls -A "$SRC/libocispec/$d" 2>/dev/null) ]] ||
    { echo "build-crun.sh: submodule libocispec/$d is empty" >&2; exit 2; }
done

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make gcc pkgconf libtool autoconf automake \
  python3 go-md2man gperf libsystemd-dev libprotobuf-c-dev libcap-dev libseccomp-dev libyajl-dev \
  >/dev/null

cd "$SRC"
# A tree without .git (an archive of the tag) needs the version files a release tarball has.
if [[ ! -e .git && ! -f .tarball-version ]]; then
  ver=$(sed -n 's/^\* crun-\([0-9.]*\).*/\1/p' NEWS | head -1)
  echo "$ver" >.tarball-version
  echo "#define GIT_VERSION \"${GIT_VERSION:-unknown}\"" >.tarball-git-version.h
fi
mkdir -p m4
[[ -x configure ]] || autoreconf -fi >/dev/null
./configure --prefix="$PREFIX" >/dev/null
make -j"$(nproc)" >/dev/null
install -D -m 0755 crun "$PREFIX/bin/crun"
"$PREFIX/bin/crun" --version
