#!/bin/sh
# SPDX-License-Identifier: MIT
# Planted bugs: every "IOF_PLANT_<NAME>" in lib/*.c marks a small
# #ifdef/#ifndef that, when <NAME> is defined, puts back a bug the library
# must not have (most of them a bug it had: REVIEW.md Part 3, items 8-11).
# For each one, build the library with -DIOF_PLANT_<NAME>, link the unit
# tests and the scenarios against it, run them on the host, and name the
# tests that failed. A plant no test catches fails the run.
#
#   CC=... CFLAGS=... LDFLAGS=... OUT=... sh tests/plants.sh [--kernel]
#
# --kernel: instead, build the kernel scenarios once per plant into
# $OUT/plants-kernel/<NAME>/kernel_scenarios, for tests/plants-guest.sh
# to run in a guest against the real kernel.
set -u

: "${CC:=cc}" "${CFLAGS:=}" "${LDFLAGS:=}" "${MOCKFLAGS:=}"
: "${OUT:?where the build goes}"
kernel=0
[ "${1:-}" = --kernel ] && kernel=1
: "${UNIT:=msg parse table answer chan queue adopt vevent threads scenarios}"

names=$(grep -ho 'IOF_PLANT_[A-Z0-9_]\+' lib/*.c | sed 's/^IOF_PLANT_//' |
	sort -u)
if [ -z "$names" ]; then
	echo "plants: none marked in lib/"
	exit 1
fi

# The objects of a test program, but the library
objs_of() {
	case $1 in
	scenarios) echo "$OUT/tests/test_scenarios.o $OUT/tests/unit.o" \
		"$OUT/tests/helpers.o $OUT/tests/fake_*.o $OUT/mock.o" \
		"$OUT/tests/scenarios.o $OUT/tests/scen_*.o $OUT/tests/backend.o" ;;
	kernel) echo "$OUT/tests/kernel_scenarios.o $OUT/tests/fake_*.o" \
		"$OUT/mock.o $OUT/tests/scenarios.o $OUT/tests/scen_*.o" \
		"$OUT/tests/backend.o" ;;
	*) echo "$OUT/tests/test_$1.o $OUT/tests/unit.o $OUT/tests/helpers.o" \
		"$OUT/tests/fake_*.o $OUT/mock.o" ;;
	esac
}

if [ $kernel = 0 ]; then
	# Without a plant every test must pass, or a failure proves nothing
	for t in $UNIT; do
		if ! "$OUT/test_$t" >"$OUT/plants-none-$t.tap" 2>&1; then
			echo "plants: test_$t fails without a plant:"
			grep '^not ok\|^#' "$OUT/plants-none-$t.tap"
			exit 1
		fi
	done
fi

missed=0 total=0
for name in $names; do
	total=$((total + 1))
	dir=$OUT/plants$([ $kernel = 1 ] && echo -kernel)/$name
	mkdir -p "$dir"
	rm -f "$dir"/*.o "$dir/libiofault.a"
	ok=1
	for src in lib/*.c; do
		o=$dir/$(basename "$src" .c).o
		# shellcheck disable=SC2086 # CFLAGS is a word list
		$CC $CFLAGS -fPIC -fvisibility=hidden "-DIOF_PLANT_$name" \
			-c "$src" -o "$o" \
			>>"$dir/build.log" 2>&1 || ok=0
	done
	${AR:-ar} rcs "$dir/libiofault.a" "$dir"/*.o >>"$dir/build.log" 2>&1 ||
		ok=0
	if [ $ok = 0 ]; then
		echo "plant $name: DOES NOT BUILD"
		sed 's/^/    /' "$dir/build.log" | head -20
		missed=$((missed + 1))
		continue
	fi
	# The planted library must differ, or the mark is misspelt
	same=1
	for o in "$dir"/*.o; do
		cmp -s "$o" "$OUT/lib/$(basename "$o")" || same=0
	done
	if [ $same = 1 ]; then
		echo "plant $name: PLANTS NOTHING (the objects are the unplanted ones)"
		missed=$((missed + 1))
		continue
	fi
	if [ $kernel = 1 ]; then
		# shellcheck disable=SC2046,SC2086
		$CC $CFLAGS $(objs_of kernel) "$dir/libiofault.a" $LDFLAGS \
			-o "$dir/kernel_scenarios" >>"$dir/build.log" 2>&1 &&
			echo "plant $name: $dir/kernel_scenarios" ||
			{ echo "plant $name: DOES NOT LINK"; missed=$((missed + 1)); }
		continue
	fi
	caught=""
	for t in $UNIT; do
		# shellcheck disable=SC2046,SC2086
		if ! $CC $CFLAGS $(objs_of "$t") "$dir/libiofault.a" $LDFLAGS \
			-o "$dir/test_$t" >>"$dir/build.log" 2>&1; then
			echo "plant $name: test_$t DOES NOT LINK"
			continue
		fi
		"$dir/test_$t" >"$dir/$t.tap" 2>&1
		for c in $(sed -n 's/^not ok [0-9]* //p' "$dir/$t.tap"); do
			caught="$caught${caught:+, }$t:$c"
		done
	done
	if [ -n "$caught" ]; then
		echo "plant $name: caught by $caught"
	else
		echo "plant $name: NOT CAUGHT (tests: $dir/*.tap)"
		missed=$((missed + 1))
	fi
done
if [ $kernel = 1 ]; then
	echo "plants: $((total - missed)) of $total built for the guest" \
	     "(run: tests/plants-guest.sh)"
else
	echo "plants: $((total - missed)) of $total caught"
fi
[ "$missed" = 0 ]
