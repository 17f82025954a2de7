#!/bin/sh
# The image's build step (infrastructure/docker/Dockerfile, builder stage),
# kept in a script so tests/deploy/images.sh runs exactly the same commands
# outside a container engine.
#   build.sh SOURCE_DIR BUILD_DIR STAGING_DIR
# Configures a Release build without tests and benchmarks, builds it and
# installs it into STAGING_DIR/usr/local, then removes what only a
# developer needs (headers, static archives, CMake and pkg-config files):
# what is left is what the runtime stage copies to /usr/local.
set -eu
src=$1 build=$2 staging=$3

cmake -S "$src" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX=/usr/local \
  -DCMAKE_INSTALL_LIBDIR=lib \
  -DTE_BUILD_TESTS=OFF \
  -DTE_BUILD_BENCH=OFF \
  -DTE_BUILD_TOOLS=ON \
  -DTE_BUILD_DAEMONS=ON
cmake --build "$build" -j "$(nproc)"
rm -rf "$staging"
DESTDIR="$staging" cmake --install "$build" --strip

prefix="$staging/usr/local"
rm -rf "$prefix/include" "$prefix/lib/cmake" "$prefix/lib/pkgconfig"
rm -f "$prefix"/lib/*.a
for d in todo-api todo-worker todo-reminder todo-sync todoctl; do
  [ -x "$prefix/bin/$d" ] || { echo "build.sh: $prefix/bin/$d was not installed" >&2; exit 1; }
done
