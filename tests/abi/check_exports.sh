#!/usr/bin/env bash
# check_exports.sh LIB.so HEADER... : the dynamic symbols LIB.so defines must
# be exactly the functions the headers declare with KG_API - nothing internal
# exported, nothing public missing.  Prints the difference and fails on any.
set -euo pipefail
lib=$1
shift
want=$(grep -ohE 'KG_API[^;(]*\bkg_[a-z0-9_]+\(' "$@" | grep -oE 'kg_[a-z0-9_]+\($' | tr -d '(' | sort -u)
# Symbols every shared object defines for the linker, not ours.
have=$(nm -D --defined-only "$lib" | awk '{print $NF}' \
       | grep -vE '^(_init|_fini|_edata|_end|__bss_start)$' | sort -u)
extra=$(comm -13 <(echo "$want") <(echo "$have"))
missing=$(comm -23 <(echo "$want") <(echo "$have"))
status=0
if [[ -n "$extra" ]]; then
  echo "$lib exports symbols that no public header declares with KG_API:"
  sed 's/^/  /' <<<"$extra"
  status=1
fi
if [[ -n "$missing" ]]; then
  echo "$lib lacks public functions declared with KG_API:"
  sed 's/^/  /' <<<"$missing"
  status=1
fi
if ((status == 0)); then
  echo "$lib: exactly the $(wc -l <<<"$want") public functions of $(basename -a "$@" | tr '\n' ' ')"
fi
exit $status
