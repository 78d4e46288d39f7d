#!/usr/bin/env bash
# Build wolfSSL 5.5.4 from Debian's own source package with AES-NI and the
# Intel assembly, into a cached prefix that cmake/SpindleWolfSSL.cmake finds
# first. Debian's libwolfssl is built without them: TLS records with
# AES-128-GCM move at ~20-60 MiB/s there, ~1 GiB/s with this build
# (docs/tls.md has the measurements).
#
#   bash scripts/build_wolfssl.sh            build once; a no-op afterwards
#   SPINDLE_WOLFSSL_REBUILD=1 bash ...       build again
#
#   bash scripts/build_wolfssl.sh --print-prefix   where it goes (CMake asks)
#
# Prefix: $SPINDLE_WOLFSSL_PREFIX, default
#   ${XDG_CACHE_HOME:-$HOME/.cache}/spindle/wolfssl-5.5.4-aesni-<options id>
# where <options id> is a hash of the configure options, CFLAGS and the
# macros removed, so new options never overwrite a build others use.
#
# Steps, as docs/facts.md measured them: a deb-src entry for bookworm in
# /etc/apt/sources.list.d/spindle-src.list if no source index is known (an
# `apt-get update` of that one list only), build deps (autoconf automake
# libtool dpkg-dev build-essential), `apt-get source wolfssl` in a temporary
# directory, ./autogen.sh, ./configure --enable-distro --enable-aesni
# --enable-intelasm --disable-examples --disable-crypttests, make, and
# make install into a staging directory moved into place at the end, so a
# half-built prefix is never seen. Two departures, both for build time: -O1
# and a static (PIC) library only (see below); configure runs under dash.
# 90 s on 2 cores shared with other builds (105 CPU-seconds); the script
# prints the seconds per phase.
#
# Never fails: on any error it says that the build falls back to the system
# libwolfssl and exits 0. The last line always says which wolfSSL is used.
set -uo pipefail

version=5.5.4
src_list=/etc/apt/sources.list.d/spindle-src.list
configure_flags=(--enable-distro --enable-aesni --enable-intelasm
                 --disable-examples --disable-crypttests)
# Macros --enable-distro turns on that a server without client certificates
# pays for on every connection (docs/tls.md, "Memory per idle connection"):
# SESSION_CERTS and WOLFSSL_ALT_CERT_CHAINS put two static peer chains
# (2 x 9 x 2 KiB = 37 KiB) in every WOLFSSL_SESSION; WOLFSSL_POST_HANDSHAKE_AUTH
# keeps a TLS 1.3 server's handshake hashes and key arrays (7 KiB) for a
# CertificateRequest spindle never sends. configure offers no switch that
# beats the features forcing them, so they are removed from the generated
# Makefile's AM_CFLAGS and from options.h alike (the library and its users
# see one struct layout).
drop_macros=(SESSION_CERTS WOLFSSL_ALT_CERT_CHAINS WOLFSSL_POST_HANDSHAKE_AUTH)
build_deps=(autoconf automake libtool dpkg-dev build-essential)
cflags=${SPINDLE_WOLFSSL_CFLAGS:--O1 -fstack-protector-strong}
# The default prefix is named after the options, so a change of options
# builds into a new directory while builds using the old one keep working.
# cmake/SpindleWolfSSL.cmake asks this script for it (--print-prefix).
options_id=$(printf '%s\n' "${configure_flags[*]}" "$cflags" "drop: ${drop_macros[*]}" |
  sha256sum | cut -c1-8)
prefix=${SPINDLE_WOLFSSL_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/spindle/wolfssl-$version-aesni-$options_id}
if [[ ${1:-} == --print-prefix ]]; then
  echo "$prefix"
  exit 0
fi

say() { echo "build_wolfssl: $*"; }

have_lib() {
  [[ -f $prefix/lib/pkgconfig/wolfssl.pc && -f $prefix/include/wolfssl/options.h ]] &&
    [[ -f $prefix/lib/libwolfssl.a || -f $prefix/lib/libwolfssl.so ]]
}

fallback() {
  say "FAILED: $*" >&2
  say "falling back to the system libwolfssl (Debian's build: no AES-NI, AES-128-GCM ~61 MiB/s)."
  say "using wolfSSL from the system (pkg-config wolfssl)"
  exit 0
}

if [[ -z ${SPINDLE_WOLFSSL_REBUILD:-} ]] && have_lib; then
  say "using wolfSSL $version with AES-NI from $prefix"
  exit 0
fi

# One build at a time (two setup.sh runs racing for the same prefix).
mkdir -p "$(dirname "$prefix")" || fallback "cannot create $(dirname "$prefix")"
exec 9>"$(dirname "$prefix")/.wolfssl.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
  if [[ -z ${SPINDLE_WOLFSSL_REBUILD:-} ]] && have_lib; then
    say "using wolfSSL $version with AES-NI from $prefix (built by another run)"
    exit 0
  fi
fi

grep -qw aes /proc/cpuinfo 2>/dev/null ||
  say "note: this CPU reports no AES-NI; the library detects that at run time and uses C code"

start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=300 "$@"; }

# --- build dependencies ---------------------------------------------------
missing=()
for p in "${build_deps[@]}"; do
  [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] || missing+=("$p")
done
if (( ${#missing[@]} )); then
  (( EUID == 0 )) || fallback "missing ${missing[*]} and not root (run: apt-get install ${missing[*]})"
  say "installing ${missing[*]}"
  if ! apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt_get update -qq || fallback "apt-get update failed"
    apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
      fallback "apt-get install ${missing[*]} failed"
  fi
fi

# --- source index ---------------------------------------------------------
# (Not `| grep -q`: under pipefail, grep quitting early fails the pipe.)
has_src_index() { [[ $(apt-cache showsrc wolfssl 2>/dev/null) == *"Version: $version"* ]]; }
if ! has_src_index; then
  (( EUID == 0 )) || fallback "no deb-src index for wolfssl and not root"
  if [[ ! -f $src_list ]]; then
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    opt=""
    [[ -f $keyring ]] && opt="[signed-by=$keyring] "
    say "adding $src_list (deb-src for bookworm)"
    cat >"$src_list" <<EOF || fallback "cannot write $src_list"
# Added by spindle's scripts/build_wolfssl.sh: Debian sources for 'apt-get source wolfssl'.
deb-src ${opt}http://deb.debian.org/debian bookworm main
deb-src ${opt}http://deb.debian.org/debian bookworm-updates main
deb-src ${opt}http://deb.debian.org/debian-security bookworm-security main
EOF
  fi
  # Refresh only the source lists, not every index on the machine.
  say "apt-get update (source index only)"
  apt_get update -qq -o Dir::Etc::sourcelist="$src_list" -o Dir::Etc::sourceparts=- \
    -o APT::Get::List-Cleanup=0 || fallback "apt-get update of $src_list failed"
  has_src_index || fallback "apt-cache knows no wolfssl $version source package"
fi

# --- fetch, configure, build, install ------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/spindle-wolfssl.XXXXXX") || fallback "mktemp failed"
trap 'rm -rf "$work"' EXIT
cd "$work" || fallback "cd $work"
log=$work/build.log
run() { "$@" >>"$log" 2>&1 || { tail -n 20 "$log" >&2; fallback "$* (log above)"; }; }
# Seconds per phase, printed at the end (the 2-minute budget is watched).
phases=""
mark=$SECONDS
phase() { phases+="$1 $((SECONDS - mark)) s, "; mark=$SECONDS; }

say "fetching Debian's wolfssl source"
# _apt cannot write into a root-only mktemp directory; let it.
chmod 755 "$work"
run apt-get source -qq wolfssl
srcdir=$(find . -maxdepth 1 -type d -name "wolfssl-$version*" | head -n1)
[[ -n $srcdir ]] || fallback "apt-get source produced no wolfssl-$version directory"
cd "$srcdir" || fallback "cd $srcdir"
phase fetch

say "configuring (${configure_flags[*]})"
run ./autogen.sh
phase autogen
# --enable-distro adds no optimisation flags (Debian's dpkg-buildflags
# supply -O2), so set them here; -O1 keeps the build under 2 minutes on 2
# cores (ssl.c alone takes 38 s at -O2), and the bulk crypto is assembly
# anyway. No -D_FORTIFY_SOURCE in CPPFLAGS: configure copies CPPFLAGS into
# options.h, which every includer would inherit.
# dash runs configure and the generated libtool ~1.5x faster than bash
# (same options.h); it is Debian's /bin/sh.
cfg_shell=/bin/bash
[[ -x /bin/dash ]] && cfg_shell=/bin/dash
run env CONFIG_SHELL=$cfg_shell $cfg_shell ./configure --prefix="$prefix" \
  "${configure_flags[@]}" --with-pic CFLAGS="$cflags"
grep -q '^#define WOLFSSL_AESNI' wolfssl/options.h ||
  fallback "configure did not enable AES-NI (see wolfssl/options.h)"
for m in "${drop_macros[@]}"; do
  sed -i -E ":a; /^AM_CFLAGS = /s/ -D$m( |\$)/\1/; ta" Makefile || fallback "cannot edit Makefile"
  sed -i -E "/^#(undef|define) +$m\$/d" wolfssl/options.h || fallback "cannot edit options.h"
  ! grep -qE -- "-D$m( |\$)" Makefile && ! grep -qw "$m" wolfssl/options.h ||
    fallback "could not remove $m from the build"
done
phase configure
# --enable-distro forces both a shared and a static library, and libtool
# then compiles every file twice. Keep the static archive only (PIC, so it
# links into PIE executables): half the build time, and spindle binaries do
# not depend on this cache directory at run time.
grep -q '^pic_mode=yes' libtool || fallback "libtool is not in PIC mode"
sed -i '0,/^build_libtool_libs=yes/s//build_libtool_libs=no/' libtool

say "building with $(nproc) jobs"
run make -j"$(nproc)"
phase make
# Stage next to the prefix (same filesystem), so the final mv is a rename.
stage=$(dirname "$prefix")/.stage.$$
trap 'rm -rf "$work" "$stage"' EXIT
run make install DESTDIR="$stage"
[[ -d $stage$prefix ]] || fallback "make install put nothing under $stage$prefix"
# Debian's packaging installs options.h by hand (debian/libwolfssl-dev.install);
# every includer needs it first (the .pc carries no -D flags).
cp wolfssl/options.h "$stage$prefix/include/wolfssl/options.h" || fallback "cannot install options.h"
mkdir -p "$stage$prefix/share"
# Keep the build line and its source version with the library.
{
  echo "wolfssl source: $(basename "$PWD") ($(dpkg-parsechangelog -S Version 2>/dev/null))"
  echo "configure: --prefix=$prefix ${configure_flags[*]} --with-pic CFLAGS='$cflags'"
  echo "removed after configure: ${drop_macros[*]}"
  echo "libtool: static archive only"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s"
} >"$stage$prefix/share/spindle-wolfssl-build.txt"

rm -rf "$prefix.old"
[[ -e $prefix ]] && mv "$prefix" "$prefix.old"
if ! mv "$stage$prefix" "$prefix"; then
  [[ -e $prefix.old ]] && mv "$prefix.old" "$prefix"
  fallback "cannot move the build into $prefix"
fi
rm -rf "$prefix.old" "$stage"
have_lib || fallback "the installed prefix $prefix lacks libwolfssl or wolfssl.pc"

phase install
say "built in $((SECONDS - start)) s (${phases%, })"
say "using wolfSSL $version with AES-NI from $prefix"
