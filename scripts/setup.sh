#!/usr/bin/env bash
# Install spindle's Debian 12 dependencies; idempotent and quiet when all are
# present.
#
#   bash scripts/setup.sh [build|test|fuzz|bench]...     (default: build)
#
#   build  compiler, CMake, pkg-config, liburing, wolfSSL, jemalloc, openssl
#          (scripts/run.sh makes its self-signed TLS certificate with it),
#          libpq-dev (apps/tfb)
#   test   build + Criterion, curl, nghttp (h2load), wrk, python3-h2, valgrind,
#          postgresql (PostgreSQL 15: apps/tfb's tests start their own server
#          with scripts/pg.sh), prometheus (promtool, and the server that
#          integration.ops starts to scrape spindle's metrics), haproxy (2.6:
#          the deploy tests run their own in the foreground; the package's
#          service is stopped and disabled), strace (integration.static: the
#          shard makes no file system call of its own on a revalidation),
#          python3-websocket (a WebSocket client for integration.ops),
#          python3-grpcio (the gRPC server integration.upstream calls)
#   fuzz   build + clang (libFuzzer)
#   bench  test + h2o, nghttpd, nginx, gnuplot
#
# Runs apt-get update (once) and install only when something is missing.  As
# a non-root user it installs nothing: it prints the command and exits 1.
# Note: the Python tests use Debian's /usr/bin/python3, where python3-h2 lives.
set -euo pipefail

pkgs_build=(build-essential cmake pkg-config liburing-dev libwolfssl-dev libjemalloc-dev openssl
            libpq-dev)
pkgs_test=("${pkgs_build[@]}" libcriterion-dev curl nghttp2-client python3-h2 valgrind openssl
           postgresql prometheus haproxy wrk strace python3-websocket python3-grpcio)
pkgs_fuzz=("${pkgs_build[@]}" clang)
pkgs_bench=("${pkgs_test[@]}" h2o nghttp2-server nginx-light gnuplot-nox)

(( $# )) || set -- build
want=()
for set_name in "$@"; do
  case $set_name in
    build) want+=("${pkgs_build[@]}") ;;
    test)  want+=("${pkgs_test[@]}") ;;
    fuzz)  want+=("${pkgs_fuzz[@]}") ;;
    bench) want+=("${pkgs_bench[@]}") ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown package set '$set_name' (build, test, fuzz, bench)" >&2; exit 2 ;;
  esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup.sh: no dpkg-query: this script targets Debian 12. Install the equivalents of:" >&2
  printf '  %s\n' "${want[@]}" | sort -u >&2
  exit 1
fi

missing=()
declare -A seen=()
for pkg in "${want[@]}"; do
  [[ -n ${seen[$pkg]:-} ]] && continue
  seen[$pkg]=1
  # "ii " = wanted install, currently installed; anything else is missing
  # (not known, removed, or half-configured).
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  [[ $status == ii* ]] || missing+=("$pkg")
done

bash "$(dirname "${BASH_SOURCE[0]}")/build_wolfssl.sh"  # wolfSSL with AES-NI, cached; never fails (docs/tls.md)
(( ${#missing[@]} )) || exit 0

install_cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if (( EUID != 0 )); then
  echo "setup.sh: missing Debian packages: ${missing[*]}" >&2
  echo "setup.sh: as root, run: $install_cmd" >&2
  exit 1
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
# Debian's haproxy package may start its system service: the tests run their
# own HAProxy (deploy/haproxy.cfg) and want none left running.
if [[ " ${missing[*]} " == *" haproxy "* ]]; then
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    systemctl disable --now haproxy >/dev/null 2>&1 || true
  else
    service haproxy stop >/dev/null 2>&1 || true
    update-rc.d haproxy disable >/dev/null 2>&1 || true
  fi
fi
