#!/usr/bin/python3
"""haproxy_util.py - HAProxy with deploy/haproxy.cfg in front of spindle
instances, for tests/integration/test_haproxy.py and bench/haproxy.py.

HAProxy runs in the foreground (-db) with its own config, ports and admin
socket in a temporary directory: no system service is used or started."""
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time

from harness import HOST, Server, free_port, log

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "deploy", "haproxy.cfg")
PASSTHROUGH = os.path.join(ROOT, "deploy", "haproxy-tls-passthrough.cfg")
# shutdown-delay: deploy/ suggests 2 s (> inter x fall + a check); the tests
# take 3 s so that the bound holds when the machine is loaded.
DELAY_S = 3.0
SPINDLE_SETS = {"ready-path": "/readyz", "health-path": "/healthz",
                "shutdown-delay": int(DELAY_S * 1000), "max-requests": 0}
INTER_S = 0.5   # deploy/haproxy.cfg: inter 500ms
FALL = 2        # fall 2


def make_pem(tmp):
    """A self-signed P-256 certificate and key in one PEM (HAProxy's crt)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem", "-out", "c.pem",
                    "-days", "2", "-subj", "/CN=localhost"], cwd=tmp, check=True,
                   capture_output=True)
    pem = os.path.join(tmp, "both.pem")
    with open(pem, "wb") as out:
        for f in ("c.pem", "k.pem"):
            with open(os.path.join(tmp, f), "rb") as src:
                out.write(src.read())
    return pem


class HAProxy:
    """haproxy -db -f deploy/haproxy.cfg with the addresses in its env;
    passthrough=[(tls_port, h2c_port)...]: deploy/haproxy-tls-passthrough.cfg
    instead (backend names t1..t3, backend be_spindle_tls)."""

    def __init__(self, backend_ports, passthrough=None):
        self.tmp = tempfile.mkdtemp(prefix="spindle-haproxy-")
        self.admin = os.path.join(self.tmp, "admin.sock")
        self.h2c_port = free_port()
        self.h1_port = free_port()
        self.tls_port = free_port()
        self.env = dict(os.environ, SPINDLE_FE_H2C="%s:%d" % (HOST, self.h2c_port),
                        SPINDLE_FE_H1="%s:%d" % (HOST, self.h1_port),
                        SPINDLE_FE_TLS="%s:%d" % (HOST, self.tls_port),
                        SPINDLE_TLS_PEM=make_pem(self.tmp), SPINDLE_ADMIN=self.admin)
        # Fewer than three instances: the config's other servers point at a
        # port nobody listens on and are put in maintenance at start.
        self.unused = ["s%d" % (i + 1) for i in range(len(backend_ports), 3)]
        for i in range(3):
            p = backend_ports[i] if i < len(backend_ports) else free_port()
            self.env["SPINDLE_S%d" % (i + 1)] = "%s:%d" % (HOST, p)
        self.config, self.backend = CONFIG, "be_spindle"
        if passthrough:
            self.config, self.backend = PASSTHROUGH, "be_spindle_tls"
            for i, (tls, plain) in enumerate(passthrough):
                self.env["SPINDLE_T%d" % (i + 1)] = "%s:%d" % (HOST, tls)
                self.env["SPINDLE_C%d" % (i + 1)] = str(plain)
        self.proc = None
        self.log = None

    def start(self):
        self.log = open(os.path.join(self.tmp, "haproxy.log"), "w+b")
        cmd = ["haproxy", "-db", "-f", self.config]
        log("start:", " ".join(cmd), "(h2c :%d, TLS :%d)" % (self.h2c_port, self.tls_port))
        self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("haproxy exited: %s" % self.output())
            if os.path.exists(self.admin):
                port = self.tls_port if self.config == PASSTHROUGH else self.h2c_port
                with contextlib.suppress(OSError):
                    socket.create_connection((HOST, port), 0.5).close()
                    if self.config != PASSTHROUGH:
                        for name in self.unused:
                            self.command("disable server %s/%s" % (self.backend, name))
                    return self
            time.sleep(0.05)
        raise AssertionError("haproxy not listening after 10 s: %s" % self.output())

    def output(self):
        if not self.log:
            return ""
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-3000:]

    def command(self, line):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.admin)
            s.sendall(line.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out.decode("utf-8", "replace")
                out += chunk

    def stats(self):
        """{server name: row dict} of the backend ("show stat")."""
        text = self.command("show stat")
        lines = text.splitlines()
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for ln in lines[1:]:
            row = dict(zip(head, ln.split(",")))
            if row.get("pxname") == self.backend and row.get("svname") not in ("BACKEND",
                                                                                 "FRONTEND"):
                out[row["svname"]] = row
        return out

    def status(self, name):
        return self.stats()[name]["status"].split()[0]

    def wait_status(self, name, want, timeout):
        """Seconds until server `name` shows `want` (UP, DOWN...)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.status(name) == want:
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError("%s not %s after %.1f s (%s)" % (name, want, timeout,
                                                              self.status(name)))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        if self.log:
            self.log.close()
            self.log = None
        if os.path.isdir(self.tmp):  # stop() twice (a test that restarted HAProxy)
            for f in os.listdir(self.tmp):
                os.unlink(os.path.join(self.tmp, f))
            os.rmdir(self.tmp)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def start_instance(port, shards=1, sets=None, args=()):
    return Server(shards=shards, port=port, sets=dict(SPINDLE_SETS, **(sets or {})),
                  args=args).start()


def stop_all(servers):
    for s in servers:
        if s is not None:
            s.kill()
            s._close()
