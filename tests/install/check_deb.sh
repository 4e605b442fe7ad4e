#!/usr/bin/env bash
# check_deb.sh SOURCE_DIR BUILD_DIR : build the .deb with cpack (a Release
# build for /usr), install it with dpkg on this Debian machine, check that the
# installed kgmon and pkg-config work, and remove the package again.  Needs
# root (CI runs as root); says so and fails otherwise.
set -euo pipefail
src=$(cd "$1" && pwd)
build=$2
if [[ $(id -u) -ne 0 ]]; then
  echo "check_deb.sh: needs root for dpkg -i" >&2
  exit 1
fi
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
      -DKG_BUILD_TESTS=OFF -DKG_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/kaygraph_*.deb)
echo "built $(basename "$deb"): $(dpkg-deb -f "$deb" Depends)"
dpkg -i "$deb" >/dev/null
trap 'dpkg -P kaygraph >/dev/null' EXIT
/usr/bin/kgmon --version
echo "pkg-config kaygraph-dashboard: $(pkg-config --modversion kaygraph-dashboard)," \
     "$(pkg-config --libs kaygraph-dashboard)"
