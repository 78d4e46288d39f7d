#!/usr/bin/python3
"""Bad configuration: invalid flags and values exit 2 with a one-line
message; a port in use fails with a message naming the address."""
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HELLO, H2Client, Server, log  # noqa: E402


def run_server(args, timeout=5):
    """Run spindle-hello expecting it to exit on its own."""
    cmd = [harness.binary()] + args
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        harness._killgroup(p)
        out, err = p.communicate()
        raise AssertionError("%s did not exit within %d s (stdout %r, stderr %r)" % (
            " ".join(cmd), timeout, out[-500:], err[-500:]))
    finally:
        harness._killgroup(p)
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def ring_polls(admin_port):
    """The shard's ring polls (hit, miss and yield) from the metrics."""
    url = "http://127.0.0.1:%d/metrics" % admin_port
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    return sum(int(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith("spindle_ring_polls_total{"))


class ConfigTest(unittest.TestCase):
    def assertUsageError(self, args):
        rc, out, err = run_server(args)
        log("%s -> exit %d, stderr %r" % (" ".join(args), rc, err))
        self.assertEqual(rc, 2, "%r: exit %d, stderr %r" % (args, rc, err))
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, "%r: want a one-line message on stderr, got %r" % (args, err))
        self.assertNotIn("listening on", out)
        return lines[0]

    def test_port_out_of_range(self):
        msg = self.assertUsageError(["--address", "127.0.0.1", "--port", "99999"])
        self.assertIn("99999", msg)

    def test_unknown_setting(self):
        msg = self.assertUsageError(["--port", "0", "--set", "nonsense=1"])
        self.assertIn("nonsense", msg)

    def test_bad_values(self):
        # --port 0 first wherever the port is not under test: if a bad value
        # were accepted, the server must not grab a fixed port.
        for args in (["--port", "-1"], ["--port", "80x"], ["--port", "0", "--port"],
                     ["--port", "0", "--shards", "many"], ["--port", "0", "--log-level", "9"],
                     ["--port", "0", "--set", "max-concurrent-streams=abc"],
                     ["--port", "0", "--set", "idle-timeout"],
                     ["--port", "0", "--no-such-flag"], ["--port", "0", "--no-such-flag", "1"],
                     ["--port", "0", "stray-argument"]):
            with self.subTest(args=args):
                self.assertUsageError(args)

    def test_port_in_use(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            # Plain bind + listen, no SO_REUSEPORT: the server cannot share it.
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            port = s.getsockname()[1]
            rc, out, err = run_server(["--address", "127.0.0.1", "--port", str(port), "--shards", "1"])
            log("port %d in use -> exit %d, stderr %r" % (port, rc, err))
            self.assertNotEqual(rc, 0, "server started on a port in use: %r" % out)
            self.assertGreater(rc, 0, "killed by a signal (%d) instead of exiting" % rc)
            self.assertNotIn("listening on", out)
            self.assertIn("127.0.0.1", err, "the message should name the address")
            self.assertIn(str(port), err, "the message should name the port")

    def test_settings_accepted(self):
        # The documented --set names work (sanity for the negative tests).
        with Server(shards=1, log_level=0,
                    sets={"max-concurrent-streams": 100, "idle-timeout": 60000,
                          "max-requests": 10000, "max-conns": 1000, "drain-timeout": 5000}) as srv:
            with H2Client(srv.port) as c:
                self.assertEqual(bytes(c.get("/").data), HELLO)

    def test_ring_spin(self):
        # The low-latency mode: accepted by flag and by name, reported at
        # start-up, and the server answers with it on (not timed: speed is
        # bench/io_profile.sh's).  Out of range or not a number: refused.
        for args in (["--ring-spin-us", "200"], ["--set", "ring-spin-us=200"]):
            with self.subTest(args=args), Server(shards=1, args=args) as srv:
                with H2Client(srv.port) as c:
                    for _ in range(20):
                        self.assertEqual(bytes(c.get("/").data), HELLO)
                self.assertIn("low-latency mode: spin 200 us", srv.stderr_all())
        with Server(shards=1) as srv:
            self.assertIn("low-latency mode off", srv.stderr_all())
        for args in (["--port", "0", "--ring-spin-us", "1000001"],
                     ["--port", "0", "--ring-spin-us", "fast"],
                     ["--port", "0", "--set", "ring-spin-us=-1"]):
            with self.subTest(args=args):
                self.assertIn("ring-spin-us", self.assertUsageError(args))

    def test_ring_poll(self):
        # The adaptive idle poll: off by default, on by name, and replaced by
        # the fixed spin; reported at start-up.  Under back-to-back requests
        # (h2load, one stream) the shard polls before sleeping, which the
        # metrics count (published once a second); off, it never polls.  Not
        # timed: the latency is bench/lat_ab.sh's.
        with Server(shards=1) as srv:
            self.assertIn("low-latency mode off; adaptive poll off", srv.stderr_all())
        with Server(shards=1, args=["--ring-spin-us", "100"], sets={"ring-poll-us": 200}) as srv:
            self.assertIn("low-latency mode: spin 100 us", srv.stderr_all())
        for poll_us, want_polls in ((200, True), (0, False)):
            admin = harness.free_port()
            sets = {"ring-poll-us": poll_us, "admin-port": admin, "metrics-path": "/metrics"}
            with self.subTest(poll_us=poll_us), Server(shards=1, sets=sets) as srv:
                self.assertIn("adaptive poll up to 200 us" if poll_us else "adaptive poll off",
                              srv.stderr_all())
                p = subprocess.run(["h2load", "-n", "2000", "-c", "1", "-m", "1",
                                    "http://127.0.0.1:%d/" % srv.port],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(harness.parse_h2load(p.stdout)["succeeded"], 2000, p.stdout)
                polls, deadline = 0, time.monotonic() + (10 if want_polls else 2.5)
                while time.monotonic() < deadline:
                    polls = ring_polls(admin)
                    if polls and want_polls:
                        break
                    time.sleep(0.2)
                log("ring-poll-us=%d: %d polls" % (poll_us, polls))
                self.assertEqual(polls > 0, want_polls, "%d polls" % polls)
        self.assertIn("ring-poll-us", self.assertUsageError(["--port", "0", "--set", "ring-poll-us=x"]))

    def test_send_nocqe(self):
        # Sends without a CQE: on by default (docs/io-profile.md), off by
        # name, reported at start-up; the server answers either way.  Only
        # 0 and 1.
        with Server(shards=1) as srv:
            self.assertIn("sends without CQE on", srv.stderr_all())
        with Server(shards=1, sets={"send-nocqe": 0}) as srv:
            with H2Client(srv.port) as c:
                for _ in range(20):
                    self.assertEqual(bytes(c.get("/").data), HELLO)
            self.assertIn("sends without CQE off (send-nocqe=0)", srv.stderr_all())
        self.assertIn("send-nocqe", self.assertUsageError(["--port", "0", "--set", "send-nocqe=2"]))

    def test_fixed_port(self):
        # The other way to get a port: pick a free one and pass it.
        port = harness.free_port()
        with Server(shards=2, port=port) as srv:
            self.assertEqual(srv.port, port)
            with H2Client(port) as c:
                self.assertEqual(bytes(c.get("/").data), HELLO)


class IoUringUnavailableTest(unittest.TestCase):
    """Without io_uring the server must exit non-zero and name the cause.
    A non-root user with RLIMIT_MEMLOCK 0 cannot create a ring (ENOMEM)."""

    @unittest.skipUnless(os.geteuid() == 0, "needs root to switch to nobody")
    def test_memlock_names_the_cause(self):
        import shutil
        import tempfile
        with tempfile.TemporaryDirectory(prefix="spindle-it-uring-") as tmp:
            os.chmod(tmp, 0o755)
            exe = os.path.join(tmp, "spindle-hello")
            shutil.copy(harness.binary(), exe)   # the build tree may not be readable by nobody
            os.chmod(exe, 0o755)
            cmd = ["prlimit", "--memlock=0", "setpriv", "--reuid=nobody", "--regid=nogroup",
                   "--clear-groups", exe, "--port", "0", "--shards", "1"]
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        err = p.stderr.decode("utf-8", "replace")
        log("io_uring unavailable -> exit %d, stderr %r" % (p.returncode, err))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("RLIMIT_MEMLOCK", err)
        self.assertIn("io_uring", err)
        self.assertNotIn("listening on", p.stdout.decode())


if __name__ == "__main__":
    harness.main()
