#!/usr/bin/env bash
# Build spindle and run the example server:
#
#   bash scripts/run.sh [server options...]
#
# Installs the build dependencies, builds into build/, then execs
# build/apps/hello/spindle-hello with the given arguments: h2c on 8080 and,
# with a certificate, HTTP/2 over TLS on 8443.
#
# TLS: on first run a private CA and a server certificate for localhost,
# 127.0.0.1 and ::1 (ECDSA P-256, a year) are generated with the openssl CLI
# into ${SPINDLE_TLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/spindle/tls}
# (ca.pem, server.pem, server.key; made again when expiring). Trust ca.pem
# in clients (curl --cacert). Your own certificate: pass --cert FILE
# --key FILE (they come after ours, so they win); --tls-port P moves it.
# SPINDLE_TLS=0 runs h2c only.
#
# Operators' view (docs/ops.md): the access log goes to stdout (one line per
# request; --set access-log=FILE or access-log-format=json to change it,
# access-log= to turn it off) and Prometheus metrics are served at
# /metrics on the main listener (--set admin-port=P for an HTTP/1.1 admin
# listener that Prometheus can scrape).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build
server=$build/apps/hello/spindle-hello

bash "$root/scripts/setup.sh" build
# The unit tests need Criterion, which only `setup.sh test` installs: build
# them here only if it is present (build/ is shared with scripts/test.sh).
tests=OFF
if pkg-config --exists criterion 2>/dev/null; then
  tests=ON
fi
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPINDLE_TESTS="$tests" >/dev/null
cmake --build "$build" -j"$(nproc)"

# A self-signed CA and a server certificate signed by it, made once.
make_tls() {
  local dir=$1
  mkdir -p "$dir" && chmod 700 "$dir" || return 1
  if [[ -s $dir/server.pem && -s $dir/server.key && -s $dir/ca.pem ]] &&
     openssl x509 -checkend 86400 -noout -in "$dir/server.pem" >/dev/null 2>&1; then
    return 0
  fi
  echo "run.sh: generating a self-signed CA and a localhost certificate in $dir" >&2
  local tmp
  tmp=$(mktemp -d "$dir/.gen.XXXXXX") || return 1
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" "basicConstraints=CA:FALSE" \
    "keyUsage=digitalSignature" "extendedKeyUsage=serverAuth" >"$tmp/ext.cnf"
  if openssl req -x509 "${ec[@]}" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 3650 \
       -subj "/CN=spindle local CA" 2>"$tmp/log" &&
     openssl req "${ec[@]}" -keyout "$tmp/server.key" -out "$tmp/server.csr" \
       -subj "/CN=localhost" 2>>"$tmp/log" &&
     openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
       -CAcreateserial -days 365 -extfile "$tmp/ext.cnf" -out "$tmp/server.pem" 2>>"$tmp/log"; then
    mv -f "$tmp/ca.key" "$tmp/ca.pem" "$tmp/server.key" "$tmp/server.pem" "$dir/"
    rm -rf "$tmp"
    return 0
  fi
  cat "$tmp/log" >&2
  rm -rf "$tmp"
  return 1
}

tls_args=()
if [[ ${SPINDLE_TLS:-1} != 0 ]]; then
  tls_dir=${SPINDLE_TLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/spindle/tls}
  if command -v openssl >/dev/null 2>&1 && make_tls "$tls_dir"; then
    tls_args=(--tls-port 8443 --cert "$tls_dir/server.pem" --key "$tls_dir/server.key"
              --ca "$tls_dir/ca.pem")
  else
    echo "run.sh: could not make a TLS certificate (is openssl installed?): serving h2c only" >&2
  fi
fi

# Defaults first: the caller's --set options come after, so they win.
exec "$server" "${tls_args[@]}" --set access-log=- --set metrics-path=/metrics "$@"
