#!/bin/bash
# SPDX-License-Identifier: MIT
# The library's planted bugs against the real kernel: the kernel scenarios
# built once per plant (make -C userspace plants-kernel) run in one guest
# boot; for each plant, the scenarios that failed. The plants of items
# 8-11 and of the adoption must each be caught.
#
#   userspace/tests/plants-guest.sh base|patched [-k BZIMAGE]
set -euo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$TOP/build
# The userspace build folder (the Makefile's OUT); KHDR, MOCKINC pass through
UOUT=${OUT:-$UOUT}
export OUT=$UOUT
which=${1:?usage: plants-guest.sh base|patched [-k BZIMAGE]}
kernel=$BUILD/out/$which/arch/x86/boot/bzImage
[ "${2:-}" = -k ] && kernel=$3
expect=$([ "$which" = base ] && echo base || echo v3)
make -s -C "$TOP/userspace" plants-kernel >&2
dir=$UOUT/plants-guest
rm -rf "$dir"
mkdir -p "$dir"
for p in "$UOUT"/plants-kernel/*/kernel_scenarios; do
	name=$(basename "$(dirname "$p")")
	cp "$p" "$dir/$name"
done
cat >"$dir/run.sh" <<'EOS'
#!/bin/sh
# In the guest: each planted build, its failures
cd "$(dirname "$0")"
for p in *; do
	[ "$p" = run.sh ] && continue
	./"$p" --expect "$1" >"$p.tap" 2>&1
	echo "plant $p: $(sed -n 's/^not ok [0-9]* \([a-z0-9_]*\).*/\1/p' "$p.tap" | tr '\n' ' ')"
done
EOS
"$TOP/scripts/vm-run" -k "$kernel" --timeout 3000 -f "$dir" \
	-- sh plants-guest/run.sh "$expect" | tee "$UOUT/plants-guest.log"
missed=$(grep -c ': $' "$UOUT/plants-guest.log" || true)
total=$(grep -c '^plant ' "$UOUT/plants-guest.log" || true)
echo "plants in the guest ($which): $((total - missed)) of $total caught by a kernel scenario"
