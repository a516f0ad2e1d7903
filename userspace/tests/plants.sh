#!/bin/sh
# SPDX-License-Identifier: MIT
# Planted bugs: every "IOF_PLANT_<NAME>" in lib/iofault.c marks a small
# #ifdef/#ifndef that, when <NAME> is defined, puts back a bug the library
# must not have. For each one, build the library with -DIOF_PLANT_<NAME>,
# link the unit tests against it, run them, and name the tests that failed.
# A plant no test catches fails the run. `make plants` calls this with the
# compiler and flags of the normal build:
#
#   CC=... CFLAGS=... LDFLAGS=... OUT=... sh tests/plants.sh
set -u

lib=lib/iofault.c
: "${CC:=cc}" "${CFLAGS:=}" "${LDFLAGS:=}" "${OUT:?where the build goes}"

names=$(grep -o 'IOF_PLANT_[A-Z0-9_]\+' "$lib" | sed 's/^IOF_PLANT_//' | sort -u)
if [ -z "$names" ]; then
	echo "plants: none marked in $lib"
	exit 1
fi
# Without a plant every test must pass, or a failure proves nothing
if ! "$OUT/test_iofault" >"$OUT/plants-none.tap" 2>&1; then
	echo "plants: the unit tests fail without a plant:"
	grep '^not ok\|^#' "$OUT/plants-none.tap"
	exit 1
fi

missed=0 total=0
for name in $names; do
	total=$((total + 1))
	dir=$OUT/plants/$name
	mkdir -p "$dir"
	# shellcheck disable=SC2086 # CFLAGS and LDFLAGS are word lists
	if ! { $CC $CFLAGS "-DIOF_PLANT_$name" -c "$lib" -o "$dir/iofault.o" &&
	       ${AR:-ar} rcs "$dir/libiofault.a" "$dir/iofault.o" &&
	       $CC $CFLAGS tests/test_iofault.c "$dir/libiofault.a" $LDFLAGS \
		   -o "$dir/test_iofault"; } >"$dir/build.log" 2>&1; then
		echo "plant $name: DOES NOT BUILD"
		sed 's/^/    /' "$dir/build.log" | head -20
		missed=$((missed + 1))
		continue
	fi
	# The planted object must differ, or the mark is misspelt
	if cmp -s "$dir/iofault.o" "$OUT/iofault.o"; then
		echo "plant $name: PLANTS NOTHING (the object is the unplanted one)"
		missed=$((missed + 1))
		continue
	fi
	"$dir/test_iofault" >"$dir/tap" 2>&1
	caught=$(sed -n 's/^not ok [0-9]* //p' "$dir/tap" | paste -sd, - |
		 sed 's/,/, /g')
	if [ -n "$caught" ]; then
		echo "plant $name: caught by $caught"
	else
		echo "plant $name: NOT CAUGHT (tests: $dir/tap)"
		missed=$((missed + 1))
	fi
done
echo "plants: $((total - missed)) of $total caught"
[ "$missed" = 0 ]
