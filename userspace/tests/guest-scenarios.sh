#!/bin/bash
# SPDX-License-Identifier: MIT
# The kernel scenarios (userspace/tests/kernel_scenarios.c) in a guest:
# every behaviour libiofault relies on, on the real kernel with the mock
# driver, compared with the fake kernel line by line. TAP out; the exit
# status is kernel_scenarios'.
#
#   userspace/tests/guest-scenarios.sh base      the unpatched 7.3 kernel
#   userspace/tests/guest-scenarios.sh patched   the patched kernel (v3)
#   ... [-k BZIMAGE] [--record FILE]
#
# "base" builds the unpatched kernel first if needed, the way scripts/bench
# does (build/base-src from build/linux's base commit, then
# scripts/build-kernel base, which takes the kernel build lock). --record
# writes the kernel's transcripts to FILE (tests/transcripts/base.txt or
# v3.txt) for test_scenarios to compare the fakes with on the host.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$TOP/build
# The userspace build folder (the Makefile's OUT); KHDR, MOCKINC pass through
UOUT=${OUT:-$UOUT}
export OUT=$UOUT
which=${1:?usage: guest-scenarios.sh base|patched [-k BZIMAGE] [--record FILE]}
shift
kernel="" record=""
while [ $# -gt 0 ]; do
	case $1 in
	-k) kernel=$2; shift 2 ;;
	--record) record=$2; shift 2 ;;
	*) echo "guest-scenarios: unknown option '$1'" >&2; exit 2 ;;
	esac
done
case $which in
base) expect=base ;;
patched) expect=v3 ;;
*) echo "guest-scenarios: base or patched, not '$which'" >&2; exit 2 ;;
esac

if [ -z "$kernel" ] && [ "$which" = base ]; then
	base=$(git -C "$BUILD/linux" rev-parse base)
	if [ "$(cat "$BUILD/base-src/.base-commit" 2>/dev/null)" != "$base" ]; then
		echo "==> base source: git archive base -> build/base-src"
		rm -rf "$BUILD/base-src"
		mkdir -p "$BUILD/base-src"
		git -C "$BUILD/linux" archive base | tar -x -C "$BUILD/base-src"
		echo "$base" >"$BUILD/base-src/.base-commit"
	fi
	"$TOP/scripts/build-kernel" base >&2
fi
kernel=${kernel:-$BUILD/out/$which/arch/x86/boot/bzImage}
make -s -C "$TOP/userspace" "$UOUT/kernel_scenarios" >&2
if [ -n "$record" ]; then
	"$TOP/scripts/vm-run" -k "$kernel" --timeout 1200 \
		-f "$UOUT/kernel_scenarios" \
		-- ./kernel_scenarios --record >"$record.tmp"
	mv "$record.tmp" "$record"
	echo "guest-scenarios: $(grep -c '^=== ' "$record") transcripts in $record"
	exit 0
fi
exec "$TOP/scripts/vm-run" -k "$kernel" --timeout 1200 \
	-f "$UOUT/kernel_scenarios" \
	-- ./kernel_scenarios --expect "$expect"
