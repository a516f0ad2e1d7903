#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the debug kernel (KASAN, lockdep, kmemleak, modular iommufd) of a
# kernel source snapshot into an O= folder of the fuzzer's own, as
# scripts/build-kernel builds build/out/debug:
#
#   userspace/fuzz/build-kernel.sh SOURCE OUT
#
# The fragments are scripts/build-kernel's debug ones (base, series, debug).
# A snapshot of the series in the middle of a rework may not have every
# option series.config names yet (the VT-d forwarding comes late in the
# series): those options, and only those, are left out, by name, when the
# source has no Kconfig symbol for them. Every other fragment option must
# survive olddefconfig, as scripts/build-kernel demands.
#
# Takes the machine's kernel build lock (build/.kbuild.lock) unless the
# caller holds it (KBUILD_LOCKED=1). Prints the bzImage's path last.
. "$(dirname "$0")/../../scripts/lib.sh"

src=${1:?usage: build-kernel.sh SOURCE OUT}
out=${2:?usage: build-kernel.sh SOURCE OUT}
[ -f "$src/Makefile" ] || die "no kernel source at $src"
src=$(cd "$src" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
JOBS=${JOBS:-2}
kbuild_lock

merged=$out/fragments.config
# The options only the series has that this source lacks
missing=" "
for sym in $(sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=.*/\1/p' "$TOP/config/series.config"); do
	grep -rqsE "^(menu)?config ${sym#CONFIG_}[[:space:]]*\$" \
		--include='Kconfig*' "$src" || missing+="$sym "
done
: >"$merged.new"
for f in base series debug; do
	while IFS= read -r line; do
		sym=$(sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=.*/\1/p' <<<"$line")
		if [ -n "$sym" ] && [[ $missing == *" $sym "* ]]; then
			info "left out: $line ($f.config; no such symbol in $src)"
			continue
		fi
		echo "$line" >>"$merged.new"
	done <"$TOP/config/$f.config"
done
mv "$merged.new" "$merged"

kmake() {
	make -C "$src" O="$out" -j"$JOBS" CC="ccache gcc" HOSTCC="ccache gcc" \
		KBUILD_BUILD_USER=iommufd KBUILD_BUILD_HOST=fault-queue \
		KBUILD_BUILD_TIMESTAMP="2024-11-17" "$@"
}

stage "fuzz kernel: configure ($out)"
kmake -s allnoconfig KCONFIG_ALLCONFIG="$merged" >"$out/config.log" 2>&1 ||
	{ cat "$out/config.log"; die "allnoconfig failed"; }
kmake -s olddefconfig >>"$out/config.log" 2>&1 ||
	{ cat "$out/config.log"; die "olddefconfig failed"; }

lost=""
while IFS= read -r line; do
	case $line in
	CONFIG_*=n) sym=${line%%=*}
		grep -q "^$sym=" "$out/.config" && lost+="    $line"$'\n' ;;
	CONFIG_*=*) sym=${line%%=*}
		grep -qxF "$line" "$out/.config" ||
			lost+="    $line (got $(grep "^$sym=" "$out/.config" || echo "$sym unset"))"$'\n' ;;
	esac
done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$merged" | tac |
	awk -F= '!seen[$1]++' | tac)
[ -z "$lost" ] || die "fragment options that did not survive olddefconfig:
$lost"

stage "fuzz kernel: build"
# vmlinux through ccache, the boot image without (see scripts/build-kernel:
# ccache does not see piggy.S's .incbin)
if ! { kmake vmlinux && CCACHE_DISABLE=1 kmake bzImage && kmake modules &&
       rm -rf "$out/modroot" &&
       kmake INSTALL_MOD_PATH="$out/modroot" INSTALL_MOD_STRIP=1 \
	     modules_install; } >"$out/build.log" 2>&1; then
	grep -E 'error|Error|ERROR' "$out/build.log" | head -40
	die "fuzz kernel build failed (log: $out/build.log)"
fi
info "$(find "$out/modroot" -name '*.ko' | wc -l) modules"
info "$out/arch/x86/boot/bzImage"
