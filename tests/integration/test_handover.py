#!/usr/bin/python3
"""Listening sockets from outside (docs/deploy.md): systemd socket
activation (LISTEN_FDS/LISTEN_PID, passed by a small exec wrapper), the
kernel behaviour a plain SO_REUSEPORT stop-start runs into (a closed
listener's queued connections are reset), a connection accepted before
the drain whose first bytes come after it (h2c, HTTP/1.1, TLS), and the
binary upgrade over upgrade-socket under continuous h2load load: zero
failed requests, zero connection resets, and a long request on the old
process finishes."""
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import H2Client, HOST, RawConn, Server, log, parse_h2load, spawn  # noqa: E402


def activation_wrapper(fd, names="web", pid_of_self=True):
    """sh -c: put fd at 3, set LISTEN_* for the process exec'd in its place
    ($$ is that process's pid), close the original fd."""
    pid = "$$" if pid_of_self else "1"
    move = "" if fd == 3 else " 3<&%d %d<&-" % (fd, fd)
    script = 'LISTEN_PID=%s LISTEN_FDS=1 LISTEN_FDNAMES=%s exec "$0" "$@"%s' % (pid, names, move)
    return ["sh", "-c", script]


def listener(reuseport=False, port=0, backlog=128):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((HOST, port))
    s.listen(backlog)
    return s


class SocketActivationTest(unittest.TestCase):
    def test_serves_connections_queued_before_it_started(self):
        lsock = listener()
        port = lsock.getsockname()[1]
        clients = []
        try:
            # Connected and requested before any process accepts: they wait
            # in the socket's accept queue.
            for _ in range(20):
                c = H2Client(port)
                clients.append((c, c.request("GET", "/")))
            with Server(shards=2, wrapper=activation_wrapper(lsock.fileno()),
                        pass_fds=(lsock.fileno(),)) as srv:
                lsock.close()  # the server holds the socket now
                self.assertEqual(srv.port, port)
                self.assertIn("socket activation: 1 h2c and 0 TLS", srv.stderr_all())
                for c, sid in clients:
                    r = c.wait_stream(sid)
                    self.assertEqual((r.status, bytes(r.data)), (200, harness.HELLO))
                with H2Client(port) as c:
                    self.assertEqual(c.get("/").status, 200)
        finally:
            lsock.close()
            for c, _ in clients:
                c.close()

    def test_listen_pid_of_another_process_is_ignored(self):
        lsock = listener()
        try:
            with Server(shards=1, wrapper=activation_wrapper(lsock.fileno(), pid_of_self=False),
                        pass_fds=(lsock.fileno(),)) as srv:
                self.assertNotEqual(srv.port, lsock.getsockname()[1])
                self.assertNotIn("socket activation", srv.stderr_all())
        finally:
            lsock.close()

    def test_not_a_listening_socket_is_refused(self):
        a, b = socket.socketpair()
        try:
            srv = Server(shards=1, wrapper=activation_wrapper(a.fileno()), pass_fds=(a.fileno(),))
            with self.assertRaises(harness.ServerError):
                srv.start()
            srv.kill()
            srv._close()
        finally:
            a.close()
            b.close()


class ReuseportTest(unittest.TestCase):
    def test_closing_one_listener_of_a_reuseport_group_resets_its_queue(self):
        """The measurement behind the hand-over: two SO_REUSEPORT listeners
        (an old and a new process); the old one closes with connections in
        its queue; the kernel resets those, it does not move them."""
        a = listener(reuseport=True)
        port = a.getsockname()[1]
        b = listener(reuseport=True, port=port)
        clients = []
        try:
            for _ in range(40):
                clients.append(socket.create_connection((HOST, port), timeout=2))
            time.sleep(0.1)
            a.close()  # "stop" the old process without accepting
            b.setblocking(False)
            moved = []
            while True:
                try:
                    moved.append(b.accept()[0])
                except BlockingIOError:
                    break
            reset = 0
            for c in clients:
                c.settimeout(0.2)
                try:
                    if c.recv(1) == b"":
                        reset += 1  # closed
                except ConnectionResetError:
                    reset += 1
                except socket.timeout:
                    pass  # alive: it was in b's queue
            log("40 connections: %d were in the new listener's queue, %d reset with the old one"
                % (len(moved), reset))
            self.assertGreater(reset, 0, "no connection hashed to the closed listener?")
            self.assertEqual(reset + len(moved), 40)
            for m in moved:
                m.close()
        finally:
            a.close()
            b.close()
            for c in clients:
                c.close()


def accepted_total(admin):
    """spindle_connections_accepted_total summed over its labels."""
    with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, admin), timeout=5) as r:
        text = r.read().decode()
    return sum(float(v) for v in re.findall(r"^spindle_connections_accepted_total\S* (\S+)$",
                                             text, re.M))


def make_cert(tmp):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem", "-out",
                    "c.pem", "-days", "2", "-subj", "/CN=localhost"], cwd=tmp,
                   check=True, capture_output=True)
    return os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")


class AcceptedBeforeDrainTest(unittest.TestCase):
    """The cause of the upgrade's lost requests (issue 17): a connection the
    shard had accepted, but whose first bytes it had not read yet (the
    protocol undecided, or a TLS handshake under way), was closed when the
    drain began, although its client had sent a request to a listener that
    accepted it.  Now it is served: HTTP/2 after a GOAWAY, HTTP/1.1 with
    connection: close, if its bytes come within drain-grace (10 s here, so
    that a loaded machine cannot miss it); a connection that sends nothing
    is closed when drain-grace ends, not at the drain timeout."""

    SETS = {"drain-grace": 10000, "drain-timeout": 30000}

    def stopped_with_one_unread(self, srv, admin, port, prepare=None):
        """Connect to port (nothing sent; prepare(sock) may handshake and
        returns the socket to use), wait until the server accepted it,
        SIGTERM, wait for the drain to begin; return the socket."""
        sock = socket.create_connection((HOST, port), timeout=10)
        if prepare:
            sock = prepare(sock)
        deadline = time.monotonic() + 10
        while accepted_total(admin) < 1:
            self.assertLess(time.monotonic(), deadline, "the connection was not accepted")
            time.sleep(0.05)
        srv.send_signal()
        while "draining 1 connection(s)" not in srv.stderr_all():
            self.assertLess(time.monotonic(), deadline, "no drain:\n" + srv.stderr_all())
            time.sleep(0.05)
        return sock

    def test_h2c_request_sent_after_the_drain_began(self):
        admin = harness.free_port()
        with Server(shards=1, sets=dict(self.SETS, **{"admin-port": admin})) as srv:
            sock = self.stopped_with_one_unread(srv, admin, srv.port)
            c = RawConn.__new__(RawConn)  # a RawConn over the socket already open
            c.sock, c.buf, c.eof, c.frames = sock, b"", False, []
            c.encoder, c.decoder = harness.hpack.Encoder(), harness.hpack.Decoder()
            c.send(harness.PREFACE + harness.frame(harness.SETTINGS, 0, 0))
            c.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", HOST),
                               (":path", "/")])
            f = c.read_until(lambda f: f.type == harness.HEADERS and f.stream_id == 1)
            self.assertIsNotNone(f, "closed unserved: %s" % harness.describe_frames(c.frames))
            self.assertEqual(f.decoded[":status"], "200")
            self.assertTrue(any(f.type == harness.GOAWAY for f in c.frames) or c.read_goaway())
            c.wait_eof(10)
            c.close()
            rc, _ = srv.wait_exit(harness.DRAIN_TIMEOUT + 5)
            self.assertEqual(rc, 0)

    def test_http1_request_sent_after_the_drain_began(self):
        admin = harness.free_port()
        with Server(shards=1, sets=dict(self.SETS, **{"admin-port": admin})) as srv:
            sock = self.stopped_with_one_unread(srv, admin, srv.port)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            sock.close()
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
            self.assertIn(b"connection: close", data.lower())
            self.assertTrue(data.endswith(harness.HELLO), data)
            rc, _ = srv.wait_exit(harness.DRAIN_TIMEOUT + 5)
            self.assertEqual(rc, 0)

    def test_silent_connection_closed_when_the_grace_ends(self):
        admin = harness.free_port()
        sets = {"drain-grace": 500, "drain-timeout": 30000, "admin-port": admin}
        with Server(shards=1, sets=sets) as srv:
            sock = self.stopped_with_one_unread(srv, admin, srv.port)
            t0 = time.monotonic()
            sock.settimeout(20)
            self.assertEqual(sock.recv(1), b"")  # closed, nothing sent
            sock.close()
            rc, dt = srv.wait_exit(25)
            self.assertEqual(rc, 0)
            log("closed %.2f s after the drain began, exit %.2f s later" % (
                time.monotonic() - t0, dt))
            # Well before the drain timeout (30 s): the grace ended it.
            self.assertLess(time.monotonic() - t0, 15)

    def tls_request_after_the_drain_began(self, handshake_first, silent=False):
        """HTTP/1.1 over TLS: the handshake after the drain began (the
        connection still undecided), or before it (an HTTP/1.1 engine with
        no request yet); the request after it: answered, connection: close.
        silent: no request; closed when drain-grace (0.5 s) ends."""
        tmp = tempfile.mkdtemp(prefix="spindle-drain-")
        admin = harness.free_port()
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        wrap = lambda sock: ctx.wrap_socket(sock, server_hostname="localhost")  # noqa: E731
        try:
            cert, key = make_cert(tmp)
            sets = dict(self.SETS, **{"admin-port": admin})
            if silent:  # the header timeout far away: only the grace can end it
                sets.update({"drain-grace": 500, "h1-header-timeout": 25000})
            with Server(shards=1, sets=sets,
                        args=["--tls-port", "0", "--cert", cert, "--key", key]) as srv:
                deadline = time.monotonic() + 10
                while not (m := re.search(r"listening on https://\S+:(\d+)",
                                          "\n".join(srv.stdout_lines))):
                    self.assertLess(time.monotonic(), deadline, srv.stdout_lines)
                    time.sleep(0.05)
                t = self.stopped_with_one_unread(srv, admin, int(m.group(1)),
                                                 prepare=wrap if handshake_first else None)
                t0 = time.monotonic()
                with t if handshake_first else wrap(t) as t:
                    if silent:
                        t.settimeout(40)
                        self.assertEqual(t.recv(1), b"")  # closed
                        self.assertLess(time.monotonic() - t0, 12)  # not a timeout's 25-30 s
                        srv.wait_exit(harness.DRAIN_TIMEOUT + 5)
                        return
                    t.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    data = b""
                    while not data.endswith(harness.HELLO):
                        chunk = t.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
                self.assertIn(b"connection: close", data.lower())
                rc, _ = srv.wait_exit(harness.DRAIN_TIMEOUT + 5)
                self.assertEqual(rc, 0)
        finally:
            for f in ("c.pem", "k.pem"):
                os.unlink(os.path.join(tmp, f))
            os.rmdir(tmp)

    def test_tls_handshake_after_the_drain_began(self):
        self.tls_request_after_the_drain_began(handshake_first=False)

    def test_tls_http1_request_after_the_drain_began(self):
        self.tls_request_after_the_drain_began(handshake_first=True)

    def test_tls_http1_silent_closed_when_the_grace_ends(self):
        self.tls_request_after_the_drain_began(handshake_first=True, silent=True)


class UpgradeTest(unittest.TestCase):
    def test_upgrade_under_load(self):
        tmp = tempfile.mkdtemp(prefix="spindle-upgrade-")
        path = os.path.join(tmp, "upgrade.sock")
        sets = {"upgrade-socket": path, "ready-path": "/readyz", "shutdown-delay": 300}
        procs = []
        try:
            old = Server(shards=2, sets=sets).start()
            procs.append(old)
            port = old.port
            long_conn = H2Client(port, timeout=15)
            long_sid = long_conn.request("GET", "/stall?ms=2500")
            # One request per connection, 400 new connections a second: every
            # upgrade lands among connections in flight and in accept queues.
            with tempfile.TemporaryFile() as out:
                with spawn(["h2load", "-r", "20", "--rate-period", "50ms", "-c", "2400",
                            "-n", "2400", "-m", "1", "http://%s:%d/" % (HOST, port)],
                           stdout=out, stderr=subprocess.STDOUT) as load:
                    for i in range(3):
                        time.sleep(1.2)
                        new = Server(shards=2, port=port, sets=sets).start()
                        procs.append(new)
                        prev = procs[-2]
                        rc, dt = prev.wait_exit(harness.DRAIN_TIMEOUT + 5)
                        self.assertEqual(rc, 0, prev.stderr_text())
                        log("upgrade %d: pid %d -> %d, old exited %.2f s later"
                            % (i + 1, prev.pid, new.pid, dt))
                        self.assertIn("upgrade: the new process serves", prev.stderr_all())
                        self.assertIn("upgrade: took 2 h2c", new.stderr_all())
                    try:
                        load.wait(40)
                    except subprocess.TimeoutExpired:
                        self.fail("h2load did not finish")
                out.seek(0)
                text = out.read().decode("utf-8", "replace")
            r = parse_h2load(text)
            log("h2load: %d done, %d succeeded, %d failed, %d errored; %d 2xx"
                % (r["done"], r["succeeded"], r["failed"], r["errored"], r["2xx"]))
            msg = text[-2000:]
            self.assertEqual((r["succeeded"], r["failed"], r["errored"], r["timeout"]),
                             (2400, 0, 0, 0), msg)
            self.assertEqual(r["2xx"], 2400, msg)
            # The long request on the first process finished, then GOAWAY.
            res = long_conn.wait_stream(long_sid)
            self.assertEqual(res.status, 200)
            self.assertTrue(long_conn.goaways)
            long_conn.close()
            self.assertTrue(os.path.exists(path), "the last process owns the hand-over path")
            procs[-1].stop()
            self.assertFalse(os.path.exists(path), "hand-over path left behind")
        finally:
            for p in procs:
                p.kill()
                p._close()
            if os.path.exists(path):
                os.unlink(path)
            os.rmdir(tmp)

    def test_new_process_that_fails_leaves_the_old_serving(self):
        tmp = tempfile.mkdtemp(prefix="spindle-upgrade-")
        path = os.path.join(tmp, "upgrade.sock")
        try:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem", "-out",
                            "c.pem", "-days", "2", "-subj", "/CN=localhost"], cwd=tmp,
                           check=True, capture_output=True)
            busy = listener()  # no SO_REUSEPORT: nobody else can bind its port
            with Server(shards=1, sets={"upgrade-socket": path}) as old:
                # A successor that cannot start (its TLS port is taken): it
                # takes the sockets, fails, and the old process keeps serving.
                rc, _, err = harness.run([
                    harness.binary(), "--port", "0", "--set", "upgrade-socket=" + path,
                    "--cert", os.path.join(tmp, "c.pem"), "--key", os.path.join(tmp, "k.pem"),
                    "--tls-port", str(busy.getsockname()[1])], 20)
                busy.close()
                self.assertNotEqual(rc, 0)
                self.assertIn("upgrade: took 1 h2c", err)
                with H2Client(old.port) as c:
                    self.assertEqual(c.get("/").status, 200)
                self.assertIn("did not start serving; still serving", old.stderr_all())
        finally:
            for f in ("upgrade.sock", "c.pem", "k.pem"):
                if os.path.exists(os.path.join(tmp, f)):
                    os.unlink(os.path.join(tmp, f))
            os.rmdir(tmp)


if __name__ == "__main__":
    harness.main()
