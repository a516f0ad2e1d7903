# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the project scripts. Source it; do not run it.

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$TOP/build
LINUX=$BUILD/linux
DEB_PKG=linux-source-7.3
# The version of the series patches/ holds, for the subjects of make export
SERIES_VERSION=3
DEB_TARBALL=/usr/src/$DEB_PKG.tar.xz
JOBS=${JOBS:-$(nproc)}
mkdir -p "$BUILD"

_t0=$(date +%s)

# A stage banner with the time since the script started.
stage() {
	printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - _t0 ))" "$*"
}

info() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# The Debian package version of the installed kernel source.
deb_version() {
	dpkg-query -W -f='${Version}' "$DEB_PKG" 2>/dev/null
}

# The Debian version recorded in the base commit of build/linux, if any.
tree_base_version() {
	git -C "$LINUX" log -1 --format=%B base 2>/dev/null |
		sed -n 's/^Debian-Version: //p'
}

# ccache wraps the compiler. Its directory lives outside the clone, so that
# a fresh clone (every CI run) starts from what earlier builds on this machine
# compiled; CCACHE_BASEDIR makes the paths relative, so hits carry over from
# one clone to another. CCACHE_DIR=$BUILD/ccache gives a clone its own, cold.
export CCACHE_DIR=${CCACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/iommufd-ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
export CCACHE_NOHASHDIR=1
export CCACHE_BASEDIR=$BUILD
# Depend mode takes the headers from the compiler's -MMD output instead of
# running the preprocessor a second time: a cold kernel build (every CI run)
# took 11 minutes through ccache's default mode and takes 8 with this,
# against 7.6 without ccache; hits are as good (97% in a second O= folder).
export CCACHE_DEPEND=${CCACHE_DEPEND:-1}

# The patch files named by patches/series, in order, comments skipped.
series_patches() {
	[ -f "$TOP/patches/series" ] || return 0
	sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$TOP/patches/series" | sed '/^$/d'
}

# The postings of patches/postings: "folder commits" per line, in order
postings() {
	[ -f "$TOP/patches/postings" ] || die "no patches/postings"
	sed -e 's/#.*//' "$TOP/patches/postings" | awk 'NF == 2 { print $1, $2 }'
}

# The cover letter is patch 0 of a posting; it is not applied.
is_cover_letter() {
	grep -qE '^Subject: \[PATCH( v[0-9]+)? 0+/[0-9]+\]' "$1"
}

# Two cores: one kernel build at a time, whoever starts it (make check,
# make lint, scripts/mutants, a second shell). Held until the caller exits;
# its children inherit it.
kbuild_lock() {
	[ -n "${KBUILD_LOCKED:-}" ] && return 0
	exec 9>"$BUILD/.kbuild.lock"
	if ! flock -n 9; then
		info "waiting for another kernel build to finish ($BUILD/.kbuild.lock)"
		flock 9
	fi
	export KBUILD_LOCKED=1
}

# The URI of the Debian archive the machine's sources use for its own
# release (deb822 .sources files or one-line sources.list entries).
debian_archive() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && [ "$f" != /etc/apt/sources.list.d/iommufd-backports.sources ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
		/\nSuites:[^\n]*bookworm( |\n|$)/ || /^Suites:[^\n]*bookworm( |\n|$)/ {
			for (i = 1; i <= NF; i++)
				if ($i ~ /^URIs:/) { split($i, u, /[ \t]+/); print u[2]; exit }
		}' "$f"
	done
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" && $0 ~ / bookworm / {
			for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }'
}
