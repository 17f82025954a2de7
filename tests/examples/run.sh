#!/usr/bin/env bash
# Installs the library into a temporary prefix, then builds and runs every
# program in examples/ against that installation three ways: pkg-config
# (shared), pkg-config --static (static archive) and CMake find_package().
# Each example checks its own results and exits non-zero when wrong.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name todoevents.pc | head -1)
[ -n "$pc" ] || { echo "todoevents.pc was not installed"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH=$(dirname "$pc")
for f in include/todoevents/todoevents.h bin/todoctl; do
  [ -e "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
ls "$prefix"/share/todoevents/schemas/*.json >/dev/null 2>&1 || { echo "schemas not installed"; exit 1; }
[ "$(pkg-config --modversion todoevents)" = "$("$prefix/bin/todoctl" version | awk '{print $2}')" ] \
  || { echo "pkg-config version differs from todoctl version"; exit 1; }
# The installed todoctl finds the installed library through its RUNPATH.
"$prefix/bin/todoctl" version >/dev/null

# Only the public API may be exported from the shared library.
if nm -D --defined-only "$libdir"/libtodoevents.so | awk '{print $3}' | grep -v '^te_' | grep -q .; then
  echo "symbols exported without the te_ prefix:"; nm -D --defined-only "$libdir"/libtodoevents.so | awk '{print $3}' | grep -v '^te_'
  exit 1
fi
# SOVERSION = major version.
major=$(pkg-config --modversion todoevents | cut -d. -f1)
[ -e "$libdir/libtodoevents.so.$major" ] || { echo "libtodoevents.so.$major missing"; exit 1; }

n=0
for ex in "$src"/examples/*.c; do
  name=$(basename "$ex" .c)
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror -o "$tmp/$name" "$ex" $(pkg-config --cflags --libs todoevents)
  LD_LIBRARY_PATH=$libdir "$tmp/$name" > "$tmp/$name.out" || { echo "example $name failed:"; cat "$tmp/$name.out"; exit 1; }
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror -o "$tmp/$name-static" "$ex" $(pkg-config --cflags todoevents) \
    $(pkg-config --static --libs todoevents | sed "s|-ltodoevents|$libdir/libtodoevents.a|")
  "$tmp/$name-static" > "$tmp/$name-static.out" || { echo "static example $name failed"; exit 1; }
  cmp -s "$tmp/$name.out" "$tmp/$name-static.out" || { echo "static and shared $name differ"; exit 1; }
  echo "example $name: ok (pkg-config shared + static)"
  n=$((n + 1))
done
[ "$n" -ge 2 ] || { echo "expected at least two examples, found $n"; exit 1; }

cmake -S "$src/examples" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="-Werror" >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
for ex in "$src"/examples/*.c; do
  name=$(basename "$ex" .c)
  LD_LIBRARY_PATH=$libdir "$tmp/cmake-build/$name" > "$tmp/$name.cmake.out"
  cmp -s "$tmp/$name.out" "$tmp/$name.cmake.out" || { echo "CMake-built $name output differs"; exit 1; }
  echo "example $name: ok (find_package)"
done
