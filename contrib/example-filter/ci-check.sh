#!/bin/sh
# contrib/example-filter/ci-check.sh - CI's check that a plugin can be built
# out of the tree from what `make install` installs, and works:
#
#   1. install the sluice of BUILDDIR into a temporary DESTDIR;
#   2. build the example against that tree's sluice_filter.h and
#      sluice-filter.pc only (a copy of this folder, so the source checkout
#      stays clean), install it into the module directory the .pc names;
#   3. run its test: the installed daemon loads the installed example.so,
#      with dns_server.py and capture_server.py from tests/integration.
#
# Usage: contrib/example-filter/ci-check.sh BUILDDIR   (a configured, built tree)
# Exit 0 when all passed; KEEP=1 keeps the temporary directory.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-example-ci.XXXXXX")
if [ -n "${KEEP:-}" ]; then
	trap 'echo "ci-check: kept $tmp"' EXIT
else
	trap 'rm -rf "$tmp"' EXIT
fi
trap 'exit 1' INT TERM

step() { echo "ci-check: $*"; }

step "make install DESTDIR=$tmp/root"
make -C "$build" install DESTDIR="$tmp/root" >"$tmp/install.log" 2>&1 || {
	cat "$tmp/install.log"; exit 1; }

pc=$(find "$tmp/root" -name sluice-filter.pc -type f | head -n 1)
[ -n "$pc" ] || { echo "ci-check: make install put no sluice-filter.pc in $tmp/root" >&2; exit 1; }
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
# The .pc names the configured prefix; what we installed lives under
# DESTDIR, so point prefix there (every other variable derives from it).
prefix=$(pkg-config --variable=prefix sluice-filter)
pkgconfig="pkg-config --define-variable=prefix=$tmp/root$prefix"
moduledir=$($pkgconfig --variable=moduledir sluice-filter)
sluice=$($pkgconfig --variable=sbindir sluice-filter)/sluice
case $moduledir in "$tmp"/*) ;; *)
	echo "ci-check: moduledir $moduledir is not under $tmp: is it relative to \${prefix}?" >&2
	exit 1;;
esac
[ -x "$sluice" ] || { echo "ci-check: no daemon at $sluice" >&2; exit 1; }

step "build the example against $pc"
cp -R "$here" "$tmp/example"
chmod -R u+w "$tmp/example"	# the source may be read-only (make distcheck)
rm -f "$tmp/example/example.so"
make -C "$tmp/example" PKG_CONFIG="$pkgconfig"

step "make install (to $moduledir, and to a DESTDIR)"
make -C "$tmp/example" install PKG_CONFIG="$pkgconfig"
[ -f "$moduledir/example.so" ] || { echo "ci-check: $moduledir/example.so missing" >&2; exit 1; }
make -C "$tmp/example" install PKG_CONFIG="$pkgconfig" DESTDIR="$tmp/stage"
[ -f "$tmp/stage$moduledir/example.so" ] || {
	echo "ci-check: DESTDIR install missing $tmp/stage$moduledir/example.so" >&2; exit 1; }

step "test $sluice with $moduledir/example.so"
make -C "$tmp/example" check PKG_CONFIG="$pkgconfig" SLUICE="$sluice" \
    EXAMPLE_SO="$moduledir/example.so" SLUICE_TEST_SCRIPTS="$top/tests/integration"
step "passed"
