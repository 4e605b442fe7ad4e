#!/usr/bin/env bash
# check_install.sh BUILD_DIR : what a team adopting kaygraph-c does with it.
#   1. cmake --install into a fresh prefix, then MOVE the tree elsewhere
#      (an install must be relocatable);
#   2. the installed shared libraries export only the public API;
#   3. the installed kgmon starts from that prefix (its $ORIGIN run path)
#      with no LD_LIBRARY_PATH;
#   4. an out-of-tree consumer builds and runs against it through the CMake
#      package (find_package(kaygraph CONFIG)) and through pkg-config.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/staged" >/dev/null
mv "$work/staged" "$work/moved"
prefix=$work/moved
libdir=$(dirname "$(find "$prefix" -name 'libkaygraph.so' | head -n 1)")
echo "installed and moved to $prefix (libdir ${libdir#"$prefix"/})"

# 2. the public surface of what was installed
headers=("$prefix"/include/kaygraph/*.h)
core_headers=()
for h in "${headers[@]}"; do [[ $h == */dashboard.h ]] || core_headers+=("$h"); done
"$here/../abi/check_exports.sh" "$libdir/libkaygraph.so" "${core_headers[@]}"
"$here/../abi/check_exports.sh" "$libdir/libkaygraph_dashboard.so" \
  "$prefix/include/kaygraph/dashboard.h"

# 3. kgmon from a non-system prefix
env -u LD_LIBRARY_PATH "$prefix/bin/kgmon" --version

# 4a. CMake package
cmake -S "$here/consumer" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
echo -n "find_package: "
"$work/cmake-build/consumer"

# 4b. pkg-config (paths from ${pcfiledir}: nothing points at the staging prefix)
export PKG_CONFIG_PATH=$libdir/pkgconfig
if grep -rq "$work/staged" "$libdir/pkgconfig" "$libdir/cmake"; then
  echo "an installed package file names the prefix it was installed to" >&2
  exit 1
fi
# shellcheck disable=SC2046
cc -o "$work/pc-consumer" "$here/consumer/main.c" $(pkg-config --cflags --libs kaygraph-dashboard) \
   -Wl,-rpath,"$libdir"
echo -n "pkg-config:   "
"$work/pc-consumer"
