#!/bin/sh
# SPDX-License-Identifier: MIT
# `make install-test`: install libiofault into a scratch root the way a
# distribution package would (DESTDIR, PREFIX=/usr), check what was
# installed (the soname, the symbol versions, exactly the functions the
# headers declare exported, the pkg-config file), then build
# tests/consumer.c with pkg-config against the installed copy, shared and
# static, and run both.
#
#   CC=... KHDR=... OUT=... MAKE=... sh tests/install.sh
set -eu
: "${CC:=cc}" "${KHDR:?}" "${OUT:?}" "${MAKE:=make}"
root=$OUT/install-test/root
work=$OUT/install-test
rm -rf "$work"
mkdir -p "$work"
fail() {
	echo "install-test: FAILED: $*"
	exit 1
}

$MAKE -s install DESTDIR="$root" PREFIX=/usr OUT="$OUT" KHDR="$KHDR" >/dev/null
lib=$root/usr/lib
for f in libiofault.so.2.0.0 libiofault.so.2 libiofault.so libiofault.a \
	 pkgconfig/libiofault.pc; do
	[ -e "$lib/$f" ] || fail "no $lib/$f"
done
for f in iofault.h iofault_msg.h iofault_vevent.h; do
	[ -f "$root/usr/include/$f" ] || fail "no $root/usr/include/$f"
done
[ "$(readlink "$lib/libiofault.so.2")" = libiofault.so.2.0.0 ] ||
	fail "libiofault.so.2 is no link to libiofault.so.2.0.0"

soname=$(readelf -d "$lib/libiofault.so.2.0.0" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libiofault.so.2 ] || fail "soname '$soname'"

# Every exported function is versioned, and they are the headers' own
objdump -T "$lib/libiofault.so.2.0.0" | awk '$2 == "g" && $4 == ".text" { print $6 " " $7 }' |
	sort >"$work/exported"
if grep -v '^LIBIOFAULT_2\.0 ' "$work/exported"; then
	fail "symbols outside LIBIOFAULT_2.0 (above)"
fi
awk '{ print $2 }' "$work/exported" | sort >"$work/exported.names"
sed -n '/^extern "C"/,$p' "$root/usr/include/iofault.h" \
	"$root/usr/include/iofault_vevent.h" |
	grep -o '\biof_[a-z0-9_]*(' | sed 's/($//' | sort -u >"$work/declared"
if ! cmp -s "$work/exported.names" "$work/declared"; then
	diff "$work/declared" "$work/exported.names" | sed 's/^/    /'
	fail "the exported functions are not the declared ones (< declared, > exported)"
fi

# pkg-config, as a consumer's build finds it
export PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_LIBDIR="$lib/pkgconfig"
# /usr/include is a system folder pkgconf leaves out; in the scratch root
# it is not the system's
export PKG_CONFIG_SYSTEM_INCLUDE_PATH=/nonexistent
export PKG_CONFIG_SYSTEM_LIBRARY_PATH=/nonexistent
ver=$(pkg-config --modversion libiofault)
[ "$ver" = 2.0.0 ] || fail "pkg-config version '$ver'"
cflags=$(pkg-config --cflags libiofault)
libs=$(pkg-config --libs libiofault)
slibs=$(pkg-config --static --libs libiofault)
# The kernel's uAPI headers are the system's: a build host has them
# shellcheck disable=SC2086
$CC -Wall -Wextra -Wno-unused-parameter -Werror -isystem "$KHDR" $cflags tests/consumer.c $libs \
	-o "$work/consumer-shared" || fail "building the shared consumer"
# shellcheck disable=SC2086
$CC -Wall -Wextra -Wno-unused-parameter -Werror -isystem "$KHDR" $cflags tests/consumer.c \
	-static $slibs -o "$work/consumer-static" ||
	fail "building the static consumer"
needed=$(readelf -d "$work/consumer-shared" | sed -n 's/.*(NEEDED).*\[\(libiofault[^]]*\)\]/\1/p')
[ "$needed" = libiofault.so.2 ] || fail "the consumer needs '$needed'"
LD_LIBRARY_PATH="$lib" "$work/consumer-shared" || fail "the shared consumer"
# It ran the installed copy, not another
LD_LIBRARY_PATH="$lib" ldd "$work/consumer-shared" | grep -q "$lib/libiofault.so.2" ||
	fail "the shared consumer did not load $lib/libiofault.so.2"
"$work/consumer-static" || fail "the static consumer"
if command -v g++ >/dev/null; then
	echo '#include <iofault.h>' | g++ -x c++ -fsyntax-only -Wall \
		-isystem "$KHDR" $cflags - || fail "iofault.h in C++"
fi
echo "install-test: libiofault $ver installed, soname $soname," \
     "$(wc -l <"$work/exported.names") versioned functions, consumers ran"
