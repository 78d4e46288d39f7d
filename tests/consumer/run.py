#!/usr/bin/python3
"""run.py - build tests/consumer against an installed spindle, serve, ask curl.

    run.py MODE --build DIR --version X.Y.Z [--cc CC] [--cmake CMAKE] [--cpack CPACK]

MODE (one CTest test each, tests/consumer/register.cmake):
  cmake      `cmake --install DIR --prefix TMP`; the shared library exports
             only spindle_* (nm -D --defined-only) and has its SONAME; the
             consumer finds it with find_package(spindle) (spindle::spindle)
             and links libspindle.so.
  pkgconfig  the same install; the consumer finds spindle.pc (shared).
  static     the same install; the consumer links spindle::spindle_static;
             then, with the shared library removed from the prefix (a static
             only install), a plain `cc main.c $(pkg-config --static --cflags
             --libs spindle)`: spindle.pc's Requires.private and Libs.private
             must complete the link.
  deb        `cpack -G DEB` in DIR, the package's file list and fields, then
             `dpkg-deb -x` into a scratch root: the consumer built with
             find_package and with `pkg-config --define-prefix` against it,
             and the packaged spindle-hello and spindle-static served.

Every program built is started on a free port and answers a real
`curl --http2-prior-knowledge` request, then exits 0 on SIGTERM (under ASan
that includes LeakSanitizer).  Everything lives in one temporary directory,
removed at the end; every process started is stopped.
"""
import argparse
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
START_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0


def log(*args):
    print("[consumer]", *args, file=sys.stderr, flush=True)


class Failure(Exception):
    pass


def run(cmd, env=None, timeout=120, capture=False):
    log("$", " ".join(cmd))
    r = subprocess.run(cmd, env=env, timeout=timeout, text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.STDOUT if capture else None)
    if r.returncode != 0:
        if capture:
            sys.stderr.write(r.stdout)
        raise Failure(f"exit {r.returncode}: {' '.join(cmd)}")
    return r.stdout if capture else ""


def needed(path):
    out = run(["readelf", "-d", path], capture=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def serve(cmd, port_re, path, expect, env=None):
    """Start cmd, read its port from stdout (port_re), GET path over h2c with
    curl, compare the body, SIGTERM, require exit status 0."""
    log("serve:", " ".join(cmd))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, env=env,
                         start_new_session=True)
    try:
        port, seen, deadline = None, b"", time.monotonic() + START_TIMEOUT
        while port is None:
            left = deadline - time.monotonic()
            if left <= 0 or p.poll() is not None:
                raise Failure(f"no port from {cmd[0]} (exit {p.poll()}): {seen!r}")
            r, _, _ = select.select([p.stdout], [], [], left)
            if r:
                chunk = os.read(p.stdout.fileno(), 4096)
                seen += chunk
                m = re.search(port_re, seen)
                if m:
                    port = int(m.group(1))
        url = f"http://127.0.0.1:{port}{path}"
        out = run(["curl", "--http2-prior-knowledge", "-sS", "--max-time", "20",
                   "-w", "\n%{http_version} %{response_code}", url], capture=True)
        body, _, tail = out.rpartition("\n")
        if tail != "2 200" or body != expect:
            raise Failure(f"{url}: got {tail!r} {body!r}, want HTTP/2 200 {expect!r}")
        log(f"{url}: HTTP/2 200 {body.strip()!r}")
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Failure(f"{cmd[0]} still running {STOP_TIMEOUT:.0f} s after SIGTERM")
        if rc != 0:
            raise Failure(f"{cmd[0]} exited {rc} after SIGTERM")
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        p.stdout.close()


class Consumer:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.expect = f"consumer: spindle {args.version}\n"

    def install(self, prefix):
        run([self.args.cmake, "--install", self.args.build, "--prefix", prefix], capture=True)

    def build(self, name, with_, prefix, env=None):
        """Configure and build tests/consumer in its own directory."""
        bdir = os.path.join(self.tmp, "build-" + name)
        cfg = [self.args.cmake, "-S", HERE, "-B", bdir, f"-DCONSUMER_WITH={with_}",
               f"-DCMAKE_C_COMPILER={self.args.cc}", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"]
        if with_ != "pkgconfig":
            cfg.append(f"-DCMAKE_PREFIX_PATH={prefix}")
        run(cfg, env=env, capture=True)
        with open(os.path.join(bdir, "CMakeCache.txt")) as f:
            cache = f.read()
        if with_ != "pkgconfig":
            m = re.search(r"^spindle_DIR:PATH=(.*)$", cache, re.M)
            if not m or not os.path.realpath(m.group(1)).startswith(os.path.realpath(prefix)):
                raise Failure(f"find_package(spindle) found {m and m.group(1)}, not {prefix}")
            log("find_package(spindle):", m.group(1))
        run([self.args.cmake, "--build", bdir], env=env, capture=True)
        return os.path.join(bdir, "consumer")

    def serve(self, exe, env=None):
        serve([exe], rb"port (\d+)\n", "/", self.expect, env)

    def expect_shared(self, exe):
        libs = needed(exe)
        if not any(n.startswith("libspindle.so.") for n in libs):
            raise Failure(f"{exe} does not link libspindle.so: {libs}")

    def expect_static(self, exe):
        libs = needed(exe)
        if any(n.startswith("libspindle") for n in libs):
            raise Failure(f"{exe} links a shared libspindle: {libs}")

    def check_exports(self, prefix):
        so = os.path.join(prefix, "lib", "libspindle.so")
        out = run(["nm", "-D", "--defined-only", so], capture=True)
        syms = [line.split()[-1] for line in out.splitlines() if line.strip()]
        bad = [s for s in syms if not s.startswith("spindle_")]
        if bad or not syms:
            raise Failure(f"libspindle.so exports {len(bad)} symbols besides spindle_*: {bad[:20]}")
        with open(os.path.join(prefix, "include", "spindle.h")) as f:
            declared = set(re.findall(r"\b(spindle_\w+)\(", f.read()))
        # Function declarations only: skip the typedefs' names (spindle_*_fn).
        declared = {d for d in declared if not d.endswith("_fn")}
        missing = sorted(declared - set(syms))
        if missing:
            raise Failure(f"declared in spindle.h, not exported: {missing}")
        log(f"libspindle.so exports {len(syms)} symbols, all spindle_*, every declared one")
        dyn = run(["readelf", "-d", so], capture=True)
        abi = ".".join(self.args.version.split(".")[:2 if self.args.version.startswith("0.") else 1])
        if f"Library soname: [libspindle.so.{abi}]" not in dyn:
            raise Failure(f"libspindle.so: no SONAME libspindle.so.{abi}")
        real = os.path.realpath(so)
        if not real.endswith(f"libspindle.so.{self.args.version}"):
            raise Failure(f"libspindle.so points to {real}, not libspindle.so.{self.args.version}")

    # --- modes --------------------------------------------------------------
    def mode_cmake(self):
        prefix = os.path.join(self.tmp, "prefix")
        self.install(prefix)
        self.check_exports(prefix)
        exe = self.build("cmake", "cmake", prefix)
        self.expect_shared(exe)
        self.serve(exe)

    def mode_pkgconfig(self):
        prefix = os.path.join(self.tmp, "prefix")
        self.install(prefix)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
        exe = self.build("pkgconfig", "pkgconfig", prefix, env)
        self.expect_shared(exe)
        self.serve(exe)

    def mode_static(self):
        prefix = os.path.join(self.tmp, "prefix")
        self.install(prefix)
        exe = self.build("static", "static", prefix)
        self.expect_static(exe)
        self.serve(exe)
        # A static-only install: -lspindle can only be libspindle.a, and
        # pkg-config --static must name everything it needs.
        libdir = os.path.join(prefix, "lib")
        for n in os.listdir(libdir):
            if n.startswith("libspindle.so"):
                os.unlink(os.path.join(libdir, n))
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"))
        flags = run(["pkg-config", "--static", "--cflags", "--libs", "spindle"],
                    env=env, capture=True).split()
        log("pkg-config --static --cflags --libs spindle:", " ".join(flags))
        exe = os.path.join(self.tmp, "consumer-pc-static")
        run([self.args.cc, "-std=c11", "-Wall", "-Wextra", "-Werror",
             os.path.join(HERE, "main.c"), "-o", exe] + flags, capture=True)
        self.expect_static(exe)
        self.serve(exe)

    def mode_deb(self):
        out = os.path.join(self.tmp, "cpack")
        run([self.args.cpack, "-G", "DEB", "--config",
             os.path.join(self.args.build, "CPackConfig.cmake"), "-B", out], capture=True)
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        if len(debs) != 1:
            raise Failure(f"cpack made {debs}, want one .deb")
        deb = os.path.join(out, debs[0])
        log("package:", debs[0])
        listing = run(["dpkg-deb", "-c", deb], capture=True)
        files = set(re.findall(r"\s\./(\S+?)(?: -> \S+)?$", listing, re.M))
        want = ["usr/include/spindle.h", "usr/lib/libspindle.a", "usr/lib/libspindle.so",
                f"usr/lib/libspindle.so.{self.args.version}",
                "usr/lib/cmake/spindle/spindleConfig.cmake",
                "usr/lib/cmake/spindle/spindleConfigVersion.cmake",
                "usr/lib/cmake/spindle/spindleTargets.cmake",
                "usr/lib/pkgconfig/spindle.pc", "usr/bin/spindle-hello", "usr/bin/spindle-static"]
        missing = [w for w in want if w not in files]
        if missing:
            raise Failure(f"{debs[0]} lacks {missing}; has {sorted(files)}")
        for field in ("Package", "Version", "Depends"):
            log(f"{field}:", run(["dpkg-deb", "-f", deb, field], capture=True).strip())
        root = os.path.join(self.tmp, "root")
        run(["dpkg-deb", "-x", deb, root])
        usr = os.path.join(root, "usr")
        with open(os.path.join(usr, "lib", "pkgconfig", "spindle.pc")) as f:
            if "prefix=/usr\n" not in f.read():
                raise Failure("the packaged spindle.pc does not say prefix=/usr")
        exe = self.build("deb", "cmake", usr)
        self.expect_shared(exe)
        self.serve(exe)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(usr, "lib", "pkgconfig"))
        flags = run(["pkg-config", "--define-prefix", "--cflags", "--libs", "spindle"],
                    env=env, capture=True).split()
        log("pkg-config --define-prefix --cflags --libs spindle:", " ".join(flags))
        exe = os.path.join(self.tmp, "consumer-deb-pc")
        run([self.args.cc, "-std=c11", "-Wall", "-Wextra", "-Werror",
             os.path.join(HERE, "main.c"), "-o", exe,
             "-Wl,-rpath," + os.path.join(usr, "lib")] + flags, capture=True)
        self.expect_shared(exe)
        self.serve(exe)
        listening = rb"listening on http://127\.0\.0\.1:(\d+) \(shard 0\)"
        serve([os.path.join(usr, "bin", "spindle-hello"), "--port", "0", "--shards", "1"],
              listening, "/", "Hello, World!")
        www = os.path.join(self.tmp, "www")
        os.mkdir(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("packaged\n")
        serve([os.path.join(usr, "bin", "spindle-static"), "--root", www, "--port", "0",
               "--shards", "1"], rb"(?:listening on http://127\.0\.0\.1:|port )(\d+)",
              "/", "packaged\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["cmake", "pkgconfig", "static", "deb"])
    ap.add_argument("--build", required=True, help="spindle's build directory")
    ap.add_argument("--version", required=True, help="the project's version")
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--cmake", default="cmake")
    ap.add_argument("--cpack", default="cpack")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix=f"spindle-consumer-{args.mode}-")
    try:
        getattr(Consumer(args, tmp), "mode_" + args.mode)()
    except (Failure, subprocess.TimeoutExpired) as e:
        log("FAILED:", e)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log("ok:", args.mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
