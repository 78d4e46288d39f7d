#!/usr/bin/python3
"""harness.py - shared machinery for spindle's integration tests.

Every test file is a small unittest module run as its own CTest test:

    /usr/bin/python3 tests/integration/test_X.py path/to/spindle-hello [unittest args]

The server binary comes from argv[1] or, when absent, $SPINDLE_HELLO.  Use
/usr/bin/python3: Debian's python3-h2 (h2, hpack, hyperframe) is only visible
to the system interpreter.

What the harness provides:
  Server        starts spindle-hello on --port 0 (or a port from free_port()),
                parses the port from its "listening on http://A:P (shard N)"
                lines, drains its output, and stops it with SIGTERM (SIGKILL
                fallback).  As a context manager it always stops the server;
                on a clean exit from the block it also asserts exit status 0,
                so a crash during a test is a failure.
  run / spawn   client subprocesses in their own process group, killed (the
                whole group) on timeout or when the block exits.
  H2Client      a blocking python-h2 client over a plain socket (prior
                knowledge) that records per-stream results.
  RawConn       raw frames over a socket (hyperframe parsing, hpack coding)
                for peers that break the rules on purpose.
"""
import contextlib
import hashlib
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HOST = "127.0.0.1"
START_TIMEOUT = 10.0       # seconds to wait for the listening line(s)
DRAIN_TIMEOUT = 10.0       # the server's default drain-timeout
STOP_MARGIN = 5.0          # on top of the drain timeout before SIGKILL

HELLO = b"Hello, World!"
ONE_MIB = 1 << 20
_PATTERN = bytes(((i * 31 + 7) & 0xFF) for i in range(256))
# GET /1m: byte i = (i * 31 + 7) & 0xff; the pattern repeats every 256 bytes.
ONE_MIB_BODY = _PATTERN * (ONE_MIB // 256)
ONE_MIB_SHA256 = hashlib.sha256(ONE_MIB_BODY).hexdigest()

_binary = None


def log(*args):
    """Progress lines go to stderr (CTest shows them with --output-on-failure
    or -V); stdout stays unittest's."""
    print("[it]", *args, file=sys.stderr, flush=True)


def binary():
    if _binary is None:
        raise RuntimeError("harness.main() was not called")
    return _binary


def sanitized():
    """Is the server under test an ASan build?  It cannot run under
    valgrind, and ASan's quarantine and shadow memory inflate its RSS."""
    try:
        with open(binary(), "rb") as f:
            return b"__asan_init" in f.read()
    except (OSError, RuntimeError):
        return False


# memcheck as the integration tests run the server under it: exit 9 on any
# error or definite/indirect leak (--fair-sched: see README).
VALGRIND = ("valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect "
            "--error-exitcode=9 --fair-sched=yes --soname-synonyms=somalloc=*jemalloc*")


@contextlib.contextmanager
def under_valgrind(test):
    """Servers started inside run under VALGRIND; skips `test` where that
    cannot work (no valgrind, an ASan build)."""
    if not shutil.which("valgrind"):
        test.skipTest("valgrind not installed")
    if sanitized():
        test.skipTest("an ASan build cannot run under valgrind (scripts/test.sh --asan)")
    os.environ["SPINDLE_HELLO_WRAPPER"] = VALGRIND
    try:
        yield
    finally:
        os.environ.pop("SPINDLE_HELLO_WRAPPER", None)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def raise_nofile(want=None):
    """Raise RLIMIT_NOFILE (inherited by the server and clients we start) as
    far as the hard limit allows; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if want is None else min(want, hard)
    if hard == resource.RLIM_INFINITY and want is None:
        target = 1 << 20
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def free_port(host=HOST):
    """A port the kernel just handed out (bound to 0 then released).  Racy by
    nature; prefer Server(port=0), which parses the port the server got."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _tail(data, limit=4000):
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    return data if len(data) <= limit else "...\n" + data[-limit:]


class ServerError(AssertionError):
    pass


class Server:
    """One spindle-hello process.

        with Server(shards=2, sets={"max-requests": 0}) as srv:
            ... srv.port ...
            srv.stop()          # optional: SIGTERM, assert exit status 0

    Leaving the block without an exception stops the server (if still
    running) and asserts exit status 0; leaving it with an exception kills it
    and prints its stderr tail.
    """

    LISTEN_RE = re.compile(r"listening on http://(\S+):(\d+) \(shard (\d+)\)")

    def __init__(self, shards=1, port=0, address=HOST, sets=None, args=(),
                 log_level=None, start_timeout=START_TIMEOUT, wait_all_shards=True,
                 wrapper=(), pass_fds=()):
        self.shards = shards
        self.requested_port = port
        self.address = address
        self.sets = dict(sets or {})
        self.extra = list(args)
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.wait_all_shards = wait_all_shards
        self.wrapper = list(wrapper)     # argv prefix (an exec wrapper), after the env's
        self.pass_fds = tuple(pass_fds)  # fds the server inherits (socket activation)
        self.proc = None
        self.port = None
        self.listening = {}          # shard -> (address, port)
        self.stdout_lines = []
        self._cond = threading.Condition()
        self._stderr = None
        self._reader = None
        self.returncode = None

    # -- lifecycle -------------------------------------------------------
    def command(self):
        # SPINDLE_HELLO_WRAPPER: a command line the server runs under
        # (scripts/test.sh --valgrind sets valgrind's).
        wrapper = os.environ.get("SPINDLE_HELLO_WRAPPER", "").split()
        cmd = wrapper + self.wrapper + [binary(), "--address", self.address, "--port", str(self.requested_port)]
        if self.shards is not None:
            cmd += ["--shards", str(self.shards)]
        if self.log_level is not None:
            cmd += ["--log-level", str(self.log_level)]
        for k, v in self.sets.items():
            cmd += ["--set", "%s=%s" % (k, v)]
        return cmd + self.extra

    def start(self):
        raise_nofile()
        self._stderr = tempfile.TemporaryFile()
        cmd = self.command()
        log("start:", " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, start_new_session=True,
                                     pass_fds=self.pass_fds)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        want = self.shards if (self.wait_all_shards and self.shards) else 1
        deadline = time.monotonic() + self.start_timeout
        with self._cond:
            while len(self.listening) < want:
                if self.proc.poll() is not None and not self._reader.is_alive():
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.1))
        if len(self.listening) < want:
            rc = self.proc.poll()
            self.kill()
            raise ServerError(
                "server %s: %d of %d listening line(s)\n"
                "command: %s\nstdout:\n%s\nstderr:\n%s" % (
                    "exited with status %s before it was listening" % rc if rc is not None
                    else "not listening after %.0f s" % self.start_timeout,
                    len(self.listening), want, " ".join(cmd),
                    _tail("\n".join(self.stdout_lines)), self.stderr_text()))
        ports = {p for _, p in self.listening.values()}
        if len(ports) != 1:
            self.kill()
            raise ServerError("shards listen on different ports: %r" % self.listening)
        self.port = ports.pop()
        if self.requested_port:
            if self.port != self.requested_port:
                self.kill()
                raise ServerError("asked for port %d, server says %d" %
                                  (self.requested_port, self.port))
        log("server pid %d listening on %s:%d (%d shard line(s))" %
            (self.proc.pid, self.address, self.port, len(self.listening)))
        return self

    def _read_stdout(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.stdout_lines.append(line)
                m = self.LISTEN_RE.search(line)
                if m:
                    self.listening[int(m.group(3))] = (m.group(1), int(m.group(2)))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _stderr_bytes(self):
        """Everything the server wrote to stderr so far.  Read with pread:
        the server writes through the same open file (not O_APPEND), so
        moving its offset (seek + read) would make the server's next line
        overwrite the start of the log."""
        if self._stderr is None:
            return b""
        fd = self._stderr.fileno()
        out, off = [], 0
        while True:
            chunk = os.pread(fd, 1 << 16, off)
            if not chunk:
                return b"".join(out)
            out.append(chunk)
            off += len(chunk)

    def stderr_text(self):
        """The log's tail (for failure messages)."""
        try:
            return _tail(self._stderr_bytes())
        except (OSError, ValueError):
            return ""

    def stderr_all(self):
        """The whole log so far."""
        return self._stderr_bytes().decode("utf-8", "replace")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            raise ServerError("server died (exit status %s)\nstderr:\n%s" %
                              (self.proc.returncode, self.stderr_text()))

    def send_signal(self, sig=signal.SIGTERM):
        self.assert_alive()
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        """Wait for the process to exit; returns (status, seconds) or raises."""
        t0 = time.monotonic()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServerError("server still running %.1f s after the signal (killed)\nstderr:\n%s"
                              % (timeout, self.stderr_text()))
        self.returncode = rc
        return rc, time.monotonic() - t0

    def stop(self, sig=signal.SIGTERM, timeout=DRAIN_TIMEOUT + STOP_MARGIN, expect=0):
        """Send `sig`, wait up to `timeout`, assert the exit status is
        `expect` (None: don't check).  Returns (status, seconds)."""
        if self.proc.poll() is not None:
            rc, dt = self.proc.returncode, 0.0
        else:
            os.kill(self.proc.pid, sig)
            rc, dt = self.wait_exit(timeout)
        self.returncode = rc
        self._join()
        log("server exited with status %s %.2f s after %s" % (rc, dt, signal.Signals(sig).name))
        if expect is not None and rc != expect:
            raise ServerError("server exit status %s (%s), expected %s\nstderr:\n%s" % (
                rc, _describe_status(rc), expect, self.stderr_text()))
        return rc, dt

    def kill(self):
        """Unconditional cleanup: SIGTERM, then SIGKILL the whole group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(3)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        self._join()

    def _join(self):
        if self._reader is not None:
            self._reader.join(2)

    def shutdown(self):
        """Stop gracefully, asserting exit status 0, and release the process
        and its log whatever happened (a test class's tearDownClass)."""
        try:
            self.stop()
        finally:
            self.kill()
            self._close()

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                if self.proc.poll() is None:
                    self.stop()
                elif self.returncode is None:
                    # It exited on its own while the test ran: report it.
                    self.stop()
            finally:
                self.kill()
                self._close()
            return False
        log("test failed; server stderr tail:\n" + self.stderr_text())
        self.kill()
        self._close()
        return False

    def _close(self):
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self.proc is not None and self.proc.stdout:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()


def offloaded(srv, timeout=5.0):
    """SIGUSR1, then (requests, offloaded) from the newest statistics line of
    a one-shard server (core/shard.c; no "(M offloaded)" there means 0)."""
    n0 = srv.stderr_all().count("info: stats:")
    srv.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [ln for ln in srv.stderr_all().splitlines() if "info: stats:" in ln]
        if len(lines) > n0:
            m = re.search(r"(\d+) requests(?: \((\d+) offloaded\))?;", lines[-1])
            if not m:
                raise AssertionError("unexpected stats line %r" % lines[-1])
            return int(m.group(1)), int(m.group(2) or 0)
        time.sleep(0.02)
    raise AssertionError("no statistics line %.1f s after SIGUSR1" % timeout)


def _describe_status(rc):
    if rc is None:
        return "running"
    if rc < 0:
        try:
            return "killed by " + signal.Signals(-rc).name
        except ValueError:
            return "killed by signal %d" % -rc
    return "exit %d" % rc


# -- client subprocesses ----------------------------------------------------

def _short(cmd, limit=400):
    s = " ".join(cmd)
    return s if len(s) <= limit else s[:limit] + " ... (%d args)" % len(cmd)


def _killgroup(p):
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.wait(5)


def run(cmd, timeout, input_file=None, cwd=None):
    """Run a client to completion in its own process group; returns
    (status, stdout, stderr) as text.  On timeout the group is killed and an
    AssertionError carries what it printed."""
    log("run:", _short(cmd))
    stdin = open(input_file, "rb") if input_file else subprocess.DEVNULL
    try:
        p = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True, cwd=cwd)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _killgroup(p)
            out, err = p.communicate()
            raise AssertionError("%s timed out after %.0f s\nstdout:\n%s\nstderr:\n%s" % (
                cmd[0], timeout, _tail(out), _tail(err)))
        finally:
            _killgroup(p)
    finally:
        if input_file:
            stdin.close()
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


@contextlib.contextmanager
def spawn(cmd, **kw):
    """Start a client in the background; the block's exit kills its group."""
    log("spawn:", _short(cmd))
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True, **kw)
    try:
        yield p
    finally:
        _killgroup(p)


# -- h2load output ----------------------------------------------------------

H2LOAD_REQ_RE = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
    r"(\d+) failed, (\d+) errored, (\d+) timeout")
H2LOAD_STATUS_RE = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
H2LOAD_RPS_RE = re.compile(r"finished in ([\d.]+)(\w+), ([\d.]+) req/s, ([\d.]+)(\w+)/s")


def parse_h2load(out):
    m = H2LOAD_REQ_RE.search(out)
    s = H2LOAD_STATUS_RE.search(out)
    if not m or not s:
        raise AssertionError("unrecognised h2load output:\n" + _tail(out))
    keys = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    r = dict(zip(keys, map(int, m.groups())))
    r.update(zip(("2xx", "3xx", "4xx", "5xx"), map(int, s.groups())))
    f = H2LOAD_RPS_RE.search(out)
    r["req_per_s"] = float(f.group(3)) if f else None
    return r


# -- python-h2 client -------------------------------------------------------

import h2.config            # noqa: E402  (after the docstring-level helpers)
import h2.connection        # noqa: E402
import h2.errors            # noqa: E402
import h2.events            # noqa: E402
import h2.exceptions        # noqa: E402
import h2.settings          # noqa: E402


class SocketClient:
    """A test client owning self.sock: close() it, or use it as a context
    manager."""

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class StreamResult:
    def __init__(self, sid, t0):
        self.sid = sid
        self.t_start = t0
        self.t_end = None
        self.informational = []      # list of header dicts (1xx)
        self.headers = None          # final response header dict
        self.header_list = None
        self.data = bytearray()
        self.trailers = None
        self.ended = False
        self.reset = None            # error code of a received RST_STREAM
        self.events = []             # event class names, in order

    @property
    def status(self):
        return int(self.headers[":status"]) if self.headers else None

    @property
    def done(self):
        return self.ended or self.reset is not None

    @property
    def latency(self):
        return None if self.t_end is None else self.t_end - self.t_start


def _hdict(headers):
    d = {}
    for k, v in headers:
        k = k.decode() if isinstance(k, bytes) else k
        v = v.decode("latin-1") if isinstance(v, bytes) else v
        d[k] = v if k not in d else d[k] + ", " + v
    return d


class H2Client(SocketClient):
    """A blocking HTTP/2 client over one socket (h2c, prior knowledge).

    Unlike a stock H2Connection it keeps accepting frames for open streams
    after a GOAWAY (RFC 9113 §6.8: streams up to last_stream_id go on), which
    graceful-shutdown tests need.
    """

    def __init__(self, port, host=HOST, timeout=10.0, window=None, auto_ack=True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.auto_ack = auto_ack
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(cfg)
        sm = self.conn.state_machine
        sm._transitions = dict(sm._transitions)
        CS, CI = h2.connection.ConnectionState, h2.connection.ConnectionInputs
        sm._transitions[(CS.CLIENT_OPEN, CI.RECV_GOAWAY)] = (None, CS.CLIENT_OPEN)
        self.conn.initiate_connection()
        if window:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
            self.conn.increment_flow_control_window(window)
        self.streams = {}
        self.goaways = []            # ConnectionTerminated events
        self.eof = False
        self.unacked = 0             # bytes received but not acknowledged (auto_ack False)
        self._pending_ack = []
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    # -- sending --------------------------------------------------------
    def request(self, method, path, headers=(), body=None, trailers=None, end_stream=None,
                flush=True):
        """Open a stream; send headers, then `body` (respecting flow control)
        and `trailers`, ending the request.  end_stream=False leaves it open
        (without trailers) for send_body()/end().  flush=False (headers-only
        requests) queues the HEADERS so several go out in one write: flush()."""
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":authority", "%s" % HOST),
                (":path", path)] + list(headers)
        finish = True if end_stream is None else end_stream
        self.streams[sid] = StreamResult(sid, time.monotonic())
        self.conn.send_headers(sid, hdrs, end_stream=finish and body is None and trailers is None)
        if flush or body is not None or trailers is not None:
            self.flush()
        if body is not None:
            self.send_body(sid, body, end_stream=finish and trailers is None)
        if trailers is not None:
            self.conn.send_headers(sid, list(trailers), end_stream=True)
            self.flush()
        return sid

    def send_body(self, sid, data, end_stream=False):
        view = memoryview(data)
        off = 0
        deadline = time.monotonic() + self.timeout
        while off < len(view):
            st = self.streams[sid]
            if st.done:
                return off
            n = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size,
                    len(view) - off)
            if n <= 0:
                if time.monotonic() > deadline:
                    raise AssertionError("stream %d: send window stuck at 0" % sid)
                self.pump(0.2)
                continue
            self.conn.send_data(sid, view[off:off + n].tobytes())
            off += n
            self.flush()
            # Interleave reads so the peer's echo cannot deadlock us.
            self.pump(0)
        if end_stream:
            self.conn.end_stream(sid)
            self.flush()
        return off

    def end(self, sid):
        self.conn.end_stream(sid)
        self.flush()

    def reset(self, sid, code=h2.errors.ErrorCodes.CANCEL):
        self.conn.reset_stream(sid, code)
        self.flush()

    def ack_pending(self):
        for length, sid in self._pending_ack:
            with contextlib.suppress(h2.exceptions.StreamClosedError, KeyError):
                self.conn.acknowledge_received_data(length, sid)
        self._pending_ack = []
        self.unacked = 0
        self.flush()

    # -- receiving ------------------------------------------------------
    def pump(self, timeout):
        """Read once (waiting up to `timeout` seconds) and handle events."""
        if self.eof:
            return []
        self.sock.settimeout(timeout if timeout > 0 else 0.0)
        try:
            data = self.sock.recv(1 << 20)
        except (socket.timeout, BlockingIOError):
            return []
        except ConnectionResetError:
            data = b""
        finally:
            self.sock.settimeout(self.timeout)
        if not data:
            self.eof = True
            return []
        events = self.conn.receive_data(data)
        for ev in events:
            self._handle(ev)
        with contextlib.suppress(OSError):
            self.flush()
        return events

    def _handle(self, ev):
        now = time.monotonic()
        sid = getattr(ev, "stream_id", None)
        st = self.streams.get(sid) if sid else None
        if st is not None:
            st.events.append(type(ev).__name__)
        if isinstance(ev, h2.events.InformationalResponseReceived):
            st.informational.append(_hdict(ev.headers))
        elif isinstance(ev, h2.events.ResponseReceived):
            st.header_list = ev.headers
            st.headers = _hdict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            if st is not None:
                st.data += ev.data
            if self.auto_ack:
                with contextlib.suppress(h2.exceptions.StreamClosedError, KeyError):
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            else:
                self._pending_ack.append((ev.flow_controlled_length, ev.stream_id))
                self.unacked += ev.flow_controlled_length
        elif isinstance(ev, h2.events.TrailersReceived):
            st.trailers = _hdict(ev.headers)
        elif isinstance(ev, h2.events.StreamEnded):
            st.ended = True
            st.t_end = now
        elif isinstance(ev, h2.events.StreamReset):
            if st is not None and st.reset is None and ev.remote_reset:
                st.reset = ev.error_code
                st.t_end = now
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaways.append(ev)

    def wait(self, pred, timeout=None, what="condition"):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s" % what)
            if self.eof:
                if pred():
                    break
                raise AssertionError("connection closed while waiting for %s (GOAWAY: %s)" % (
                    what, self.goaways))
            self.pump(min(left, 0.5))
        return True

    def wait_stream(self, sid, timeout=None):
        self.wait(lambda: self.streams[sid].done, timeout, "stream %d" % sid)
        return self.streams[sid]

    def wait_eof(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("connection still open after %.1f s" % (timeout or self.timeout))
            self.pump(min(left, 0.5))

    def get(self, path, timeout=None, headers=()):
        return self.wait_stream(self.request("GET", path, headers), timeout)


# -- raw frames -------------------------------------------------------------

import hpack                # noqa: E402
from hyperframe.frame import Frame  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
ERR = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
       4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
       8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM",
       12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}


def frame(ftype, flags, sid, payload=b""):
    """Serialize any frame, legal or not (hyperframe refuses some illegal ones)."""
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


class RawConn(SocketClient):
    """A raw HTTP/2 peer: write whatever bytes, read parsed frames."""

    def __init__(self, port, host=HOST, timeout=5.0, preface=True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.frames = []
        if preface:
            self.send(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data):
        self.sock.sendall(data)

    def headers_block(self, headers):
        return self.encoder.encode(headers)

    def send_headers(self, sid, headers, end_stream=True):
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self.send(frame(HEADERS, flags, sid, self.headers_block(headers)))

    def _fill(self, n, deadline):
        while len(self.buf) < n and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk
        return len(self.buf) >= n

    def read_frame(self, timeout=5.0):
        """The next frame (hyperframe object), or None at EOF.  SETTINGS
        from the server are ACKed; HEADERS blocks are decoded into .decoded."""
        deadline = time.monotonic() + timeout
        if not self._fill(9, deadline):
            return None
        f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
        if not self._fill(9 + length, deadline):
            return None
        body = self.buf[9:9 + length]
        self.buf = self.buf[9 + length:]
        f.parse_body(memoryview(body))
        if f.type == SETTINGS and "ACK" not in f.flags:
            with contextlib.suppress(OSError):
                self.send(frame(SETTINGS, ACK, 0))
        if f.type in (HEADERS, CONTINUATION):
            # Server blocks fit one frame here (no CONTINUATION handling needed
            # for these tests' short responses).
            f.decoded = _hdict(self.decoder.decode(f.data, raw=True))
        self.frames.append(f)
        return f

    def read_until(self, pred, timeout=5.0):
        """Read frames until pred(frame) is true (returns that frame) or EOF
        (returns None).  Raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                f = self.read_frame(max(left, 0.001))
            except socket.timeout:
                raise AssertionError("no matching frame within %.1f s; saw %s" % (
                    timeout, describe_frames(self.frames)))
            if f is None:
                return None
            if pred(f):
                return f

    def read_goaway(self, timeout=5.0):
        return self.read_until(lambda f: f.type == GOAWAY, timeout)

    def wait_eof(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not self.eof:
            if time.monotonic() > deadline:
                return False
            try:
                self.read_frame(max(deadline - time.monotonic(), 0.001))
            except socket.timeout:
                return False
        return True


def describe_frames(frames):
    out = []
    for f in frames[-20:]:
        s = "%s(sid=%d" % (type(f).__name__, f.stream_id)
        if f.type == GOAWAY:
            s += ", last=%d, %s, %r" % (f.last_stream_id, ERR.get(f.error_code, f.error_code),
                                        bytes(f.additional_data)[:80])
        elif f.type == RST_STREAM:
            s += ", %s" % ERR.get(f.error_code, f.error_code)
        elif f.type == HEADERS:
            s += ", %r" % getattr(f, "decoded", None)
        elif f.type == DATA:
            s += ", %d bytes" % len(f.data)
        out.append(s + ")")
    return "[" + ", ".join(out) + "]"


# -- entry point ------------------------------------------------------------

def main():
    """unittest.main() for a test file: argv[1] (or $SPINDLE_HELLO) is the
    server binary; the remaining arguments go to unittest."""
    global _binary
    args = sys.argv[1:]
    if args and not args[0].startswith("-"):
        _binary = args.pop(0)
    else:
        _binary = os.environ.get("SPINDLE_HELLO")
    if not _binary:
        sys.exit("usage: %s path/to/spindle-hello [unittest args] (or set SPINDLE_HELLO)" %
                 sys.argv[0])
    _binary = os.path.abspath(_binary)
    if not os.access(_binary, os.X_OK):
        sys.exit("%s: not an executable" % _binary)
    raise_nofile()
    unittest.main(argv=[sys.argv[0]] + args, verbosity=2)
