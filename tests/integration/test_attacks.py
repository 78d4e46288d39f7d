#!/usr/bin/python3
"""Every attack class of docs/security.md ("The classes"), each over real
sockets against a freshly started spindle-hello (one shard, so the attacker
and the benign client share a thread: the hardest case for "other
connections unharmed").

For each class the run asserts
  (a) the reaction: the exact GOAWAY / RST_STREAM code and, where a limit
      names it, that the connection is closed within a stated time;
  (b) a benign client on ANOTHER connection (a separate process, so the
      attacker's Python work cannot stall it through the GIL) keeps getting
      `/` answers during the attack: at least MIN_BENIGN requests issued
      inside the attack window, all 200 "Hello, World!", max latency below
      LAT_MAX (500 ms: a `/` answer takes ~1-2 ms through this Python
      client, ~15 ms at worst while an attack runs; 500 ms still lies well
      below the stall of an attack that wins -- a blocked shard or a
      timeout is >= 1 s).  The bound is on the maximum of thousands of
      samples, and on a loaded 2-core box one scheduling hiccup shows there
      (273 ms once with two busy loops per core; failures now and then at
      load average 15-28).  So each request's latency is counted without
      the time the machine kept the server's threads or the benign client
      runnable but off a CPU during it (run-queue wait, the second field of
      /proc/<tid>/schedstat, read before and after each request): what is
      left is the server's own work and blocking, which is what an attack
      that wins stretches.  The raw maximum is in the figures too;
  (c) the server's RSS (/proc/PID/status VmRSS, sampled every 10 ms, and
      VmHWM) stays below baseline + RSS_MAX (32 MiB) during the attack and
      after it.

The TLS cases (test_18_tls_*) start the server with a TLS port too
(run_case(tls=True): a CA and certificate made once per class with
test_tls.make_pki) and attack that port; the benign client stays on h2c.

Each case prints one line of figures (reaction time, benign p50/max,
RSS before/peak/after) and tearDownClass prints the table.

    /usr/bin/python3 tests/integration/test_attacks.py build/apps/hello/spindle-hello [-k name]
"""
import collections
import contextlib
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest
import warnings

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (CONTINUATION, DATA, ERR, GOAWAY, HEADERS, HELLO, HOST,  # noqa: E402
                     ONE_MIB_BODY, PING, PREFACE, PRIORITY, RST_STREAM, SETTINGS,
                     WINDOW_UPDATE, H2Client, Server, SocketClient, frame, log)

import hpack  # noqa: E402

# TLS (test_18_*): the CA/certificate maker and the server that learns its TLS
# port from the "listening on https://" lines.  Importing test_tls also
# installs its socket.create_connection hook, which only acts in a thread that
# set test_tls._tls.ctx (its tls_h2()); nothing here does.  Only these names
# are imported, so unittest does not collect test_tls's test classes here.
from test_tls import TlsServer, client_ctx, make_pki  # noqa: E402

END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT = 0, 1, 3, 4
STREAM_CLOSED, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 5, 7, 8, 9, 11
MAX_WINDOW = (1 << 31) - 1
SET_HEADER_TABLE_SIZE, SET_MAX_CONCURRENT, SET_INITIAL_WINDOW = 0x1, 0x3, 0x4
SET_NO_RFC7540_PRIORITIES = 0x9

MIB = 1 << 20
RSS_MAX = 32 * MIB          # (c): growth over the baseline, during and after
LAT_MAX = 0.500             # (b): benign max latency, run-queue wait not counted (docstring)
MIN_BENIGN = 50             # (b): benign requests issued during the attack
CLOSE_SLACK = 1.0           # a timeout fires within this much after its deadline
CHURN_RSS_MAX = 2 * MIB     # test_18_tls_3: RSS growth over the second round of handshakes
TRIP_PING = 0x7472697000000000  # "trip": PING opaque data of trip()'s step markers

RESULTS = []                # one dict per case, printed by tearDownClass


def code_name(c):
    return ERR.get(c, str(c))


def limit_hits(stderr):
    """The limits the shards' statistics lines ("stats: ... limits hit:
    rapid-reset 2, glitches 1") counted, summed over the last line of each
    shard."""
    last = {}
    for line in stderr.splitlines():
        m = re.search(r"spindle\[(\d+)\] info: stats: .*limits hit: (.*)$", line)
        if m:
            last[m.group(1)] = m.group(2)
    hits = collections.Counter()
    for text in last.values():
        for item in text.split(", "):
            name, _, n = item.rpartition(" ")
            if name and n.isdigit():
                hits[name] += int(n)
    return hits


# ---------------------------------------------------------------------------
# HPACK by hand: raw representations, so malformed names/values go out as is
# (never Huffman, never indexed unless asked).
# ---------------------------------------------------------------------------

def hp_int(value, prefix, first=0):
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hp_str(s):
    s = s.encode("latin-1") if isinstance(s, str) else s
    return hp_int(len(s), 7) + s


def hp_lit(name, value):
    """Literal without indexing, new name (RFC 7541 §6.2.2)."""
    return b"\x00" + hp_str(name) + hp_str(value)


def hp_lit_idx_name(index, value):
    """Literal without indexing, indexed name."""
    return hp_int(index, 4) + hp_str(value)


def hp_lit_inc(name, value):
    """Literal with incremental indexing, new name (§6.2.1): enters the table."""
    return b"\x40" + hp_str(name) + hp_str(value)


def hp_idx(index):
    return hp_int(index, 7, 0x80)


# :method GET (2), :scheme http (6), :path / (4), :authority (1) literal.
AUTHORITY = hp_lit_idx_name(1, "127.0.0.1")
GET_ROOT = hp_idx(2) + hp_idx(6) + hp_idx(4) + AUTHORITY
GET_ROOT_TLS = hp_idx(2) + hp_idx(7) + hp_idx(4) + AUTHORITY   # :scheme https (7)


def req_block(method="GET", path="/", extra=b"", scheme="http"):
    return (hp_lit_idx_name(2, method) + hp_lit_idx_name(6, scheme) +
            hp_lit_idx_name(4, path) + AUTHORITY + extra)


def headers_frame(sid, block, end_stream=True, end_headers=True):
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    return frame(HEADERS, flags, sid, block)


def settings_frame(pairs=()):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def window_update(sid, incr):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", incr))


def rst_stream(sid, code=CANCEL):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def ping(i):
    return frame(PING, 0, 0, struct.pack(">Q", i))


# ---------------------------------------------------------------------------
# /proc: memory and sockets of the server
# ---------------------------------------------------------------------------

def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("%s not in /proc/%d/status" % (key, pid))


def rss(pid):
    return proc_status(pid, "VmRSS")


class RssSampler:
    """VmRSS every 10 ms in a thread; .peak is the largest sample."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            with contextlib.suppress(OSError, AssertionError, ValueError):
                self.peak = max(self.peak, rss(self.pid))
            self._stop.wait(0.01)

    def stop(self):
        self._stop.set()
        self._t.join(2)
        return self.peak


def tcp_socket(local_port, remote_port):
    """The kernel's view of one IPv4 TCP socket: dict(state, txq, rxq, inode)
    or None (gone).  The server's side of a client connection has
    local_port = server port, remote_port = the client's port."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            lport = int(p[1].split(":")[1], 16)
            rport = int(p[2].split(":")[1], 16)
            if lport == local_port and rport == remote_port:
                txq, rxq = (int(x, 16) for x in p[4].split(":"))
                return {"state": int(p[3], 16), "txq": txq, "rxq": rxq, "inode": int(p[9])}
    return None


def tcp_queues(local_port, remote_port):
    """(unread bytes, unsent/unacked bytes) of one loopback IPv4 TCP socket,
    or None (gone, or no sock_diag): one netlink lookup, where /proc/net/tcp
    lists every socket of the machine (thousands, 0.2 s a read under load)."""
    ip = socket.inet_aton(HOST) + bytes(12)
    sockid = struct.pack(">HH16s16s", local_port, remote_port, ip, ip) + \
        struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF)
    req = struct.pack("=BBBxI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0xFFFFFFFF) + sockid
    # nlmsghdr: SOCK_DIAG_BY_FAMILY (20), NLM_F_REQUEST (1): an exact lookup.
    msg = struct.pack("=IHHII", 16 + len(req), 20, 1, 1, 0) + req
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4) as nl:  # NETLINK_SOCK_DIAG
            nl.sendto(msg, (0, 0))
            reply = nl.recv(4096)
    except OSError:
        return None                 # no sock_diag here: the callers do without
    if len(reply) < 16 + 4 + 48 + 12 or struct.unpack_from("=H", reply, 4)[0] != 20:
        return None                 # NLMSG_ERROR: no such socket
    # inet_diag_msg after the 16-byte header: 4 bytes, the 48-byte id, then
    # expires, rqueue, wqueue.
    rq, wq = struct.unpack_from("=II", reply, 16 + 4 + 48 + 4)
    return rq, wq


def holds_socket(pid, inode):
    """Does the process still have the socket open (an fd on it)?"""
    target = "socket:[%d]" % inode
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                return True
    return False


# ---------------------------------------------------------------------------
# A raw peer: non-blocking sends, a fast frame parser, per-stream bookkeeping
# ---------------------------------------------------------------------------

class Peer(SocketClient):
    """One hostile connection.  Sends raw bytes (blocking or not), parses
    what the server sends with a small parser (hyperframe is too slow for
    10^5 frames), ACKs the server's SETTINGS unless told not to."""

    def __init__(self, port, rcvbuf=None, sndbuf=None, preface=True, settings=(),
                 ack_settings=True, keep_data=False, timeout=5.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        # The server's timers start at accept, somewhere between these two
        # instants: a lower bound on a timeout is checked from t_connect0, an
        # upper bound from t_connect.  (On a loaded machine connect() can
        # return tens of ms after the kernel completed it: measured from
        # t_connect alone, a connection closed on time looked early.)
        self.t_connect0 = time.monotonic()
        self.sock.connect((HOST, port))
        self.t_connect = time.monotonic()
        self.sock.settimeout(0)     # non-blocking from here on
        self.port = port
        self.local_port = self.sock.getsockname()[1]
        self.timeout = timeout
        self.ack_settings = ack_settings
        self.keep_data = keep_data
        self.rbuf = bytearray()
        self.eof = False
        self.t_eof = None
        self.goaway = None          # (last_sid, code, debug)
        self.t_goaway = None
        self.types = collections.Counter()
        self.rst = {}               # sid -> code
        self.t_rst = {}
        self.rst_codes = collections.Counter()
        self.headers = {}           # sid -> {name: value}
        self.data = collections.defaultdict(bytearray)
        self.data_len = collections.Counter()
        self.ended = set()
        self.server_settings = []   # [(id, value)] per SETTINGS frame
        self.ping_acks = []         # opaque values as ints
        self.settings_acks = 0
        self.dec = hpack.Decoder()
        self.bytes_in = 0
        self.recv_error = None
        if preface:
            self.send(PREFACE + settings_frame(settings))

    # -- sending ---------------------------------------------------------
    def send(self, data, timeout=None):
        """Blocking sendall (the socket itself stays non-blocking)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        view = memoryview(data)
        while view:
            n = self.try_send(view)
            if n:
                view = view[n:]
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("send: no room for %.1f s" % (
                    self.timeout if timeout is None else timeout))
            select.select([], [self.sock], [], min(left, 0.05))

    def try_send(self, data):
        """Non-blocking: bytes the kernel took (0 when full)."""
        try:
            return self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0

    def flood(self, chunks, stall=0.5, limit=None, read=False, watch=False):
        """Send the byte strings from the iterator `chunks` without blocking
        until the kernel has taken nothing for `stall` seconds (the server
        stopped reading) or the iterator ends.  Returns (bytes sent, time of
        the last progress, stalled?); self.flood_end says why it ended.

        watch: also stop (stalled) as soon as the server's socket shows that
        it stopped reading: input waits in it, and what the server consumed
        (sent, less what is still in either socket) has not moved for
        `stall` seconds.  Waiting for the kernel to refuse more can take
        longer than the server's timeouts: its receive window, autotuned up
        to tcp_rmem's maximum, can be MiBs that a client on a loaded machine
        fills slowly."""
        total = 0
        last = time.monotonic()
        pending = b""
        it = iter(chunks)
        consumed, t_moved, t_sample = -1, last, 0.0
        self.flood_end = "iterator"
        while True:
            now = time.monotonic()
            if watch and now - t_sample >= 0.05:
                t_sample = now
                srv, cli = tcp_queues(self.port, self.local_port), tcp_queues(self.local_port,
                                                                              self.port)
                if srv and cli:
                    c = total - srv[0] - cli[1]
                    if c != consumed or srv[0] == 0:
                        consumed, t_moved = c, now
                    elif now - t_moved >= stall:
                        self.flood_end = "server stopped reading"
                        return total, last, True
            if not pending:
                pending = next(it, None)
                if pending is None:
                    return total, last, False
            try:
                n = self.try_send(pending)
            except OSError as e:          # the server closed (and reset) the connection
                self.flood_end = "send: %s" % e
                return total, last, False
            if n:
                total += n
                pending = pending[n:]
                last = time.monotonic()
                if limit and total >= limit:
                    self.flood_end = "limit"
                    return total, last, False
                continue
            if read:
                self.pump(0)
                if self.eof:
                    self.flood_end = "eof"
                    return total, last, False
            if time.monotonic() - last >= stall:
                self.flood_end = "kernel full"
                return total, last, True
            select.select([], [self.sock], [], 0.02)

    # -- receiving -------------------------------------------------------
    def pump(self, timeout=0.0):
        """Read what is there (waiting up to `timeout` for the first byte)
        and handle every complete frame.  Returns bytes read."""
        if self.eof:
            return 0
        if timeout > 0:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return 0
        got = 0
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:          # ECONNRESET: the server closed with unread input
                self.recv_error = e
                chunk = b""
            if not chunk:
                self.eof = True
                self.t_eof = time.monotonic()
                break
            self.rbuf += chunk
            got += len(chunk)
            if len(chunk) < (1 << 20):
                break
        self.bytes_in += got
        self._parse()
        return got

    def _parse(self):
        buf = self.rbuf
        off = 0
        n = len(buf)
        while n - off >= 9:
            length = (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2]
            if n - off < 9 + length:
                break
            ftype, flags = buf[off + 3], buf[off + 4]
            sid = struct.unpack_from(">I", buf, off + 5)[0] & 0x7FFFFFFF
            payload = bytes(buf[off + 9:off + 9 + length])
            off += 9 + length
            self._frame(ftype, flags, sid, payload)
        if off:
            del buf[:off]

    def _frame(self, ftype, flags, sid, payload):
        now = time.monotonic()
        self.types[ftype] += 1
        if ftype == DATA:
            if flags & 0x8:
                payload = payload[1:len(payload) - payload[0]]
            self.data_len[sid] += len(payload)
            if self.keep_data:
                self.data[sid] += payload
            if flags & END_STREAM:
                self.ended.add(sid)
        elif ftype == HEADERS:
            block = payload
            if flags & 0x8:
                block = block[1:len(block) - block[0]]
            if flags & 0x20:
                block = block[5:]
            hd = {}
            for k, v in self.dec.decode(block, raw=True):
                hd[k.decode("latin-1")] = v.decode("latin-1")
            if sid in self.headers and ":status" in self.headers[sid] and \
                    not self.headers[sid][":status"].startswith("1"):
                self.headers[sid].setdefault("trailers", hd)
            else:
                self.headers[sid] = hd
            if flags & END_STREAM:
                self.ended.add(sid)
        elif ftype == RST_STREAM:
            code = struct.unpack(">I", payload)[0]
            self.rst[sid] = code
            self.t_rst[sid] = now
            self.rst_codes[code] += 1
        elif ftype == SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
            else:
                self.server_settings.append([struct.unpack_from(">HI", payload, i)
                                             for i in range(0, len(payload), 6)])
                if self.ack_settings:
                    with contextlib.suppress(OSError):
                        self.try_send(frame(SETTINGS, ACK, 0))
        elif ftype == PING:
            if flags & ACK:
                self.ping_acks.append(struct.unpack(">Q", payload)[0])
        elif ftype == GOAWAY:
            last, code = struct.unpack_from(">II", payload)
            if self.goaway is None:
                self.t_goaway = now
            self.goaway = (last & 0x7FFFFFFF, code, payload[8:])

    def wait(self, pred, timeout):
        """Pump until pred() or EOF or timeout; returns pred()."""
        deadline = time.monotonic() + timeout
        while not pred() and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.pump(min(left, 0.05))
        return pred()

    def wait_eof(self, timeout):
        return self.wait(lambda: self.eof, timeout)

    def read_all(self, timeout):
        """Read until EOF (or timeout: returns False)."""
        return self.wait_eof(timeout)

    def server_side(self):
        return tcp_socket(self.port, self.local_port)

    def describe(self):
        names = {DATA: "DATA", HEADERS: "HEADERS", PRIORITY: "PRIORITY", RST_STREAM: "RST",
                 SETTINGS: "SETTINGS", PING: "PING", GOAWAY: "GOAWAY",
                 WINDOW_UPDATE: "WINDOW_UPDATE", CONTINUATION: "CONTINUATION"}
        s = "frames in: %s" % ", ".join("%s=%d" % (names.get(t, t), n)
                                        for t, n in sorted(self.types.items()))
        if self.rst_codes:
            s += "; RST codes %s" % {code_name(c): n for c, n in self.rst_codes.items()}
        if self.goaway:
            s += "; GOAWAY(last=%d, %s, %r)" % (self.goaway[0], code_name(self.goaway[1]),
                                               self.goaway[2][:60])
        s += "; eof=%s" % self.eof
        if self.recv_error:
            s += " (%s)" % self.recv_error
        return s


def expect_goaway(peer, code, t_from, within, what, close_within=1.0):
    """Wait for the GOAWAY, assert its code and that EOF follows; returns
    (seconds from t_from to the GOAWAY, seconds from t_from to EOF)."""
    peer.wait(lambda: peer.goaway is not None, within)
    if peer.goaway is None:
        raise AssertionError("%s: no GOAWAY within %.1f s (%s)" % (what, within, peer.describe()))
    if peer.goaway[1] != code:
        raise AssertionError("%s: GOAWAY %s, want %s (%s)" % (
            what, code_name(peer.goaway[1]), code_name(code), peer.describe()))
    if not peer.wait_eof(close_within):
        raise AssertionError("%s: connection still open %.1f s after GOAWAY %s" % (
            what, close_within, code_name(code)))
    return peer.t_goaway - t_from, peer.t_eof - t_from


def wait_server_close(srv, peer, timeout=None, deadline=None):
    """Poll until the server process no longer holds its side of the peer's
    connection (it may linger in the kernel as an orphan with unsent data).
    Returns the time it went, or None."""
    info = peer.server_side()
    if info is None:
        return time.monotonic()
    inode = info["inode"]
    if deadline is None:
        deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not holds_socket(srv.pid, inode):
            return time.monotonic()
        time.sleep(0.02)
    return None


# ---------------------------------------------------------------------------
# TLS peers (test_18_*): Peer over an SSLSocket, and a MemoryBIO client that
# sees every byte the server sends and can write raw bytes after the handshake
# ---------------------------------------------------------------------------

TLS_CT_ALERT, TLS_CT_HANDSHAKE, TLS_CT_APPDATA = 21, 22, 23
TLS_ALERTS = {10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
              40: "handshake_failure", 70: "protocol_version", 120: "no_application_protocol"}


class _TlsSock:
    """A non-blocking SSLSocket as Peer uses a socket: "no data / no room"
    is BlockingIOError (Peer's try_send and pump expect it); close_notify
    reads as b"" (EOF); a fatal alert or a TCP EOF without close_notify
    (suppress_ragged_eofs=False and strict_eof() on the context) raises an
    ssl.SSLError, which Peer.pump records in .recv_error."""

    def __init__(self, ssock):
        self.s = ssock

    def fileno(self):
        return self.s.fileno()

    def getsockname(self):
        return self.s.getsockname()

    def send(self, data):
        try:
            return self.s.send(data)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            raise BlockingIOError() from None

    def recv(self, n):
        try:
            return self.s.recv(n)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError() from None

    def close(self):
        self.s.close()


class TlsPeer(Peer):
    """Peer on the TLS port: Peer's TCP socket, a blocking TLS handshake
    (ALPN h2, verified against the test CA), then non-blocking as Peer."""

    def __init__(self, port, ctx, preface=True, settings=(), **kw):
        super().__init__(port, preface=False, **kw)
        self.sock.settimeout(self.timeout)
        ssock = ctx.wrap_socket(self.sock, server_hostname="localhost",
                                suppress_ragged_eofs=False)
        if ssock.selected_alpn_protocol() != "h2":
            raise AssertionError("TLS peer: ALPN %r" % ssock.selected_alpn_protocol())
        ssock.settimeout(0)
        self.version = ssock.version()
        self.sock = _TlsSock(ssock)
        if preface:
            self.send(PREFACE + settings_frame(settings))


def strict_eof(ctx):
    """Make a TCP EOF without close_notify an error again.  Python 3.11 with
    OpenSSL 3 sets OP_IGNORE_UNEXPECTED_EOF in every context: then a ragged
    EOF reads as b"", exactly like close_notify, even with
    suppress_ragged_eofs=False."""
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    return ctx


def tls_records(data):
    """[(content type, record version, payload)] of the complete records."""
    out, off = [], 0
    while len(data) - off >= 5:
        ctype, ver, length = struct.unpack_from(">BHH", data, off)
        if len(data) - off < 5 + length:
            break
        out.append((ctype, ver, bytes(data[off + 5:off + 5 + length])))
        off += 5 + length
    return out


def tls_record(ctype, payload, version=0x0303):
    return struct.pack(">BHH", ctype, version, len(payload)) + payload


class TlsBio(SocketClient):
    """A TLS client over ssl.MemoryBIO on a plain socket: .raw keeps every
    byte the server sent (alerts before the handshake ends are in the
    clear), .sock takes raw bytes (garbage after the handshake)."""

    def __init__(self, port, ctx):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(5)
        self.sock.connect((HOST, port))
        self.port = port
        self.local_port = self.sock.getsockname()[1]
        self.t_connect = time.monotonic()
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        self.raw = bytearray()
        self.eof = False
        self.t_eof = None
        self.reset = False

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _recv(self, deadline):
        """One recv into .raw and the TLS object; False on timeout."""
        if self.eof:
            return True
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            chunk, self.reset = b"", True
        if not chunk:
            self.eof, self.t_eof = True, time.monotonic()
            self.inc.write_eof()
            return True
        self.raw += chunk
        self.inc.write(chunk)
        return True

    def handshake(self, timeout=5.0):
        """Run the handshake; None when done, else the ssl.SSLError that
        ended it (the server's alert, or an EOF)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.obj.do_handshake()
                self.flush()        # our Finished
                return None
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as e:
                return e
            self.flush()
            if not self._recv(deadline):
                raise AssertionError("TLS handshake: no answer in %.1f s" % timeout)

    def write(self, plain):
        self.obj.write(plain)
        self.flush()

    def read_until(self, pred, timeout):
        """Decrypt what arrives until pred(plaintext so far) or the end;
        returns (plaintext, end) where end is None (pred met), or what ended
        the stream: "close_notify", "alert <name>" (a fatal alert, decrypted
        after the handshake), "EOF without close_notify or alert", or
        "timeout"."""
        deadline = time.monotonic() + timeout
        plain = bytearray()
        while True:
            try:
                while True:
                    chunk = self.obj.read(65536)
                    if not chunk:   # strict_eof(): only a close_notify reads as b""
                        return plain, "close_notify"
                    plain += chunk
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as e:
                if isinstance(e, ssl.SSLEOFError) or "UNEXPECTED_EOF" in str(e):
                    return plain, "EOF without close_notify or alert"
                return plain, ssl_alert_name(e) or "ssl error %s" % e
            if pred(plain):
                return plain, None
            if self.eof and not self.inc.pending:
                return plain, "EOF without close_notify or alert"
            if not self._recv(deadline):
                return plain, "timeout"

    def server_side(self):
        return tcp_socket(self.port, self.local_port)


def ssl_alert_name(e):
    """ "alert bad_record_mac" for OpenSSL's "... alert bad record mac (...)"."""
    m = re.search(r"alert ([a-z ]+?) \(", str(e))
    return "alert " + m.group(1).replace(" ", "_") if m else None


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def shard_stats(srv, timeout=2.0):
    """SIGUSR1, then the shard's new statistics line (core/shard.c).  srv is
    a TlsServer: stderr_all() is the whole log, not a tail."""
    n0 = srv.stderr_all().count("info: stats:")
    srv.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = srv.stderr_all()
        if text.count("info: stats:") > n0:
            return [ln for ln in text.splitlines() if "info: stats:" in ln][-1]
        time.sleep(0.02)
    raise AssertionError("no statistics line %.1f s after SIGUSR1" % timeout)


def tls_stats(line):
    """(connections, TLS connections, TLS handshakes failed) of a stats line."""
    m = re.search(r"stats: (\d+) connections \((\d+) TLS, (\d+) TLS handshakes failed\)", line)
    if not m:
        raise AssertionError("no TLS figures in %r" % line)
    return tuple(int(x) for x in m.groups())


# ---------------------------------------------------------------------------
# The benign client: a separate process on its own connection
# ---------------------------------------------------------------------------

def runq_wait(paths):
    """Seconds each of these schedstat files' tasks has waited runnable on a
    run queue (the second field); a task gone or unreadable: absent."""
    out = {}
    for p in paths:
        try:
            with open(p) as f:
                out[p] = int(f.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            pass
    return out


def benign_main(port, pace, server_pid):
    """Child process: one connection, GET / in a loop until stdin says stop;
    one JSON line per request: [t_start, latency, ok, error, wait]: wait is
    how long, during the request, the machine kept the server (its most
    delayed thread) and this client runnable but off a CPU (runq_wait)."""
    out = sys.stdout
    server_tasks = ["/proc/%d/task/%s/schedstat" % (server_pid, t)
                    for t in os.listdir("/proc/%d/task" % server_pid)]
    own = "/proc/thread-self/schedstat"
    c = H2Client(port, timeout=5)
    st = c.get("/")
    assert st.status == 200
    out.write("ready\n")
    out.flush()
    while True:
        r, _, _ = select.select([sys.stdin], [], [], 0)
        if r:
            break
        w0 = runq_wait(server_tasks + [own])
        t0 = time.monotonic()
        ok, err = False, None
        try:
            st = c.get("/", timeout=5)
            ok = st.status == 200 and bytes(st.data) == HELLO
            lat = st.latency if st.latency is not None else time.monotonic() - t0
            if not ok:
                err = "status %s body %r reset %s" % (st.status, bytes(st.data)[:40], st.reset)
        except Exception as e:  # noqa: BLE001 - reported to the parent
            lat = time.monotonic() - t0
            err = "%s: %s" % (type(e).__name__, str(e)[:200])
            c.close()
            with contextlib.suppress(Exception):
                c = H2Client(port, timeout=5)
        w1 = runq_wait(server_tasks + [own])
        d = {p: w1[p] - w0[p] for p in w1 if p in w0}
        wait = d.pop(own, 0.0) + max(d.values(), default=0.0)
        out.write(json.dumps([t0, lat, ok, err, wait]) + "\n")
        out.flush()
        time.sleep(pace)
    c.close()


class Benign:
    def __init__(self, port, server_pid, pace=0.005):
        self.port = port
        self.server_pid = server_pid
        self.pace = pace
        self.samples = []
        self._lock = threading.Lock()

    def start(self):
        cmd = [sys.executable, os.path.abspath(__file__), "--benign", str(self.port),
               str(self.pace), str(self.server_pid)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            err = self.proc.stderr.read().decode("utf-8", "replace") if self.proc.poll() else ""
            self.kill()
            raise AssertionError("benign client did not start: %r %s" % (line, err[-2000:]))
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                s = json.loads(line)
                with self._lock:
                    self.samples.append(s)

    def count_since(self, t0):
        with self._lock:
            return sum(1 for s in self.samples if s[0] >= t0)

    def stop(self):
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write(b"stop\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
        self._t.join(5)
        self._close()
        return list(self.samples)

    def _close(self):
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError, ValueError):
                f.close()

    def kill(self):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, 9)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._close()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


# ---------------------------------------------------------------------------
# The runner: server, baseline, benign client, RSS sampler, attack, checks
# ---------------------------------------------------------------------------

class Case:
    """What an attack function gets: the server and a figures dict."""

    def __init__(self, srv):
        self.srv = srv
        self.fig = collections.OrderedDict()

    def note(self, key, value):
        self.fig[key] = value
        log("  %s = %s" % (key, value))


class AttackTest(unittest.TestCase):
    _pki_dir = None
    _pki = None

    @classmethod
    def tls_pki(cls):
        """The test CA and server certificate (test_tls.make_pki), made once
        per class in a temporary directory."""
        if cls._pki is None:
            cls._pki_dir = tempfile.TemporaryDirectory(prefix="attacks-tls-")
            cls._pki = make_pki(cls._pki_dir.name)
        return cls._pki

    @classmethod
    def tls_ctx(cls, alpn=("h2",), version=None):
        ctx = strict_eof(client_ctx(cls.tls_pki()["ca"], alpn=alpn))
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        return ctx

    @classmethod
    def tearDownClass(cls):
        if cls._pki_dir is not None:
            cls._pki_dir.cleanup()
            cls._pki_dir = cls._pki = None
        if not RESULTS:
            return
        lines = ["", "attack figures (RSS in MiB; latency in ms; benign = requests "
                 "issued during the attack on another connection):"]
        for r in RESULTS:
            lines.append("  %-28s %-4s benign n=%-4d p50=%6.2f max=%7.2f (raw %7.2f)  "
                         "rss %6.1f/%6.1f/%6.1f  %s" % (
                             r["name"], "ok" if r["ok"] else "FAIL", r["n"], r["p50"], r["max"],
                             r["max_raw"], r["base"], r["peak"], r["after"],
                             "; ".join("%s=%s" % kv for kv in r["fig"].items())))
        log("\n".join(lines))

    def run_case(self, name, attack, sets=None, args=(), repeat=None,
                 min_benign=MIN_BENIGN, lat_max=LAT_MAX, rss_max=RSS_MAX, extra=15.0,
                 limits=(), tls=False):
        """Start a server, run `attack(case)` (asserting its reaction) while a
        benign client runs on another connection; `repeat(case)` (another
        round of the attack) runs until the benign client has issued
        `min_benign` requests inside the attack window (no `repeat`: the
        window is held open by sleeping, the attack's connections closed).
        `limits`: names (h2_limit_name) the shard's statistics, logged at
        exit, must count at least once.  `tls`: the server also serves TLS
        (test_tls.TlsServer: srv.tls_port) with the class's certificate; the
        benign client stays on h2c."""
        with self.subTest(case=name):
            return self._run_case(name, attack, sets, args, repeat, min_benign, lat_max,
                                  rss_max, extra, limits, tls)

    def _run_case(self, name, attack, sets, args, repeat, min_benign, lat_max, rss_max, extra,
                  limits, tls=False):
        log("=== %s (sets %s %s%s)" % (name, sets or {}, " ".join(args), " TLS" if tls else ""))
        failures = []
        if harness.sanitized():
            # ASan keeps freed memory in quarantine (up to 256 MiB) and adds
            # shadow memory: RSS says nothing there.  LeakSanitizer checks
            # leaks at exit instead; the reactions are asserted as usual.
            rss_max = float("inf")
        if tls:
            srv = TlsServer(self.tls_pki(), shards=1, sets=sets, args=args).start()
        else:
            srv = Server(shards=1, sets=sets, args=args).start()
        try:
            case = Case(srv)
            with H2Client(srv.port, timeout=5) as c:   # warm-up: first connection's allocations
                st = c.get("/")
                self.assertEqual((st.status, bytes(st.data)), (200, HELLO))
            if tls:
                # ... and the first TLS handshake's (wolfSSL's per-thread
                # FP_ECC cache, about 3 MiB: docs/tls.md), so the baseline
                # has them and the attack's growth is its own.
                with TlsPeer(srv.tls_port, self.tls_ctx()) as p:
                    p.send(headers_frame(1, GET_ROOT_TLS))
                    p.wait(lambda: 1 in p.ended, 5)
                    self.assertEqual(p.headers.get(1, {}).get(":status"), "200", p.describe())
            time.sleep(0.1)
            base = rss(srv.pid)
            hwm0 = proc_status(srv.pid, "VmHWM")
            sampler = RssSampler(srv.pid).start()
            benign = Benign(srv.port, srv.pid).start()
            t0 = time.monotonic()
            try:
                try:
                    attack(case)
                except Exception as e:  # noqa: BLE001 - reported with the figures
                    failures.append("reaction: %s%s" % (
                        "" if isinstance(e, AssertionError) else type(e).__name__ + ": ", e))
                    log(traceback.format_exc())
                    repeat = None
                while benign.count_since(t0) < min_benign and time.monotonic() - t0 < extra \
                        and srv.alive():
                    if not repeat:
                        time.sleep(0.05)
                        continue
                    try:
                        repeat(case)
                    except Exception as e:  # noqa: BLE001
                        failures.append("repeat round: %s%s" % (
                            "" if isinstance(e, AssertionError) else type(e).__name__ + ": ", e))
                        log(traceback.format_exc())
                        repeat = None
                t1 = time.monotonic()
                samples = benign.stop()
            finally:
                benign.kill()
            # The attack's sockets are closed by now: the server frees them.
            time.sleep(0.5)
            peak = sampler.stop()
            alive = srv.alive()
            if alive:
                peak = max(peak, rss(srv.pid))
                hwm1 = proc_status(srv.pid, "VmHWM")
                if hwm1 > hwm0:
                    peak = max(peak, hwm1)
                after = rss(srv.pid)
            else:
                after = float("nan")
                failures.insert(0, "SERVER DIED (%s) during the attack" % (
                    harness._describe_status(srv.proc.returncode)))
            window = [s for s in samples if t0 <= s[0] <= t1]
            raw = [s[1] for s in window]
            lats = [max(0.0, s[1] - s[4]) for s in window]  # run-queue wait not counted
            bad = [s for s in window if not s[2]]
            r = {"name": name, "n": len(window), "p50": pct(lats, 0.5) * 1e3,
                 "max": max(lats) * 1e3 if lats else float("nan"),
                 "max_raw": max(raw) * 1e3 if raw else float("nan"),
                 "base": base / MIB, "peak": peak / MIB, "after": after / MIB,
                 "fig": case.fig}
            log("%s: benign n=%d p50=%.2f ms max=%.2f ms (%.2f with run-queue wait); RSS base "
                "%.1f peak %.1f after %.1f MiB; %s" % (
                    name, r["n"], r["p50"], r["max"], r["max_raw"], r["base"], r["peak"],
                    r["after"], dict(case.fig)))
            if bad:
                failures.append("benign: %d of %d requests failed, first: %s" % (
                    len(bad), len(window), bad[0][3]))
            if len(window) < min_benign:
                failures.append("benign: only %d requests during the attack (%.1f s), want %d" % (
                    len(window), t1 - t0, min_benign))
            if lats and max(lats) >= lat_max:
                failures.append("benign: max latency %.1f ms >= %.0f ms (p50 %.2f ms; "
                                "run-queue wait not counted, %.1f ms with it)" % (
                                    max(lats) * 1e3, lat_max * 1e3, r["p50"], r["max_raw"]))
            if peak - base >= rss_max:
                failures.append("RSS peak %.1f MiB = baseline %.1f + %.1f MiB >= +%d MiB" % (
                    peak / MIB, base / MIB, (peak - base) / MIB, rss_max // MIB))
            if alive and after - base >= rss_max:
                failures.append("RSS after %.1f MiB = baseline %.1f + %.1f MiB >= +%d MiB" % (
                    after / MIB, base / MIB, (after - base) / MIB, rss_max // MIB))
            if alive:
                try:
                    srv.stop()      # SIGTERM: must exit 0
                except harness.ServerError as e:
                    failures.append("server stop: %s" % str(e)[:300])
                hits = limit_hits(srv.stderr_text())
                case.note("limits_hit", ",".join("%s=%d" % kv for kv in sorted(hits.items()))
                          or "none")
                for want in limits:
                    if not hits.get(want):
                        failures.append("statistics: no %r limit hit counted (%s)" % (
                            want, hits or "none"))
            r["ok"] = not failures
            RESULTS.append(r)
            if failures:
                log("%s FAILED:\n  %s\nserver stderr tail:\n%s" % (
                    name, "\n  ".join(failures), srv.stderr_text()[-1500:]))
        finally:
            srv.kill()
            srv._close()
        if failures:
            self.fail("%s: %s" % (name, " | ".join(failures)))
        return case

    # ======================================================================
    # 1. Data dribble (CVE-2019-9511)
    # ======================================================================
    def test_01_data_dribble(self):
        nstreams, dribble_s = 64, 2.0

        def attack(case):
            # Stream windows start at 0: nothing flows until we grant, then
            # one byte per stream and per connection at a time.
            with Peer(case.srv.port, settings=[(SET_INITIAL_WINDOW, 0)], keep_data=True) as p:
                sids = [1 + 2 * i for i in range(nstreams)]
                p.send(b"".join(headers_frame(s, req_block("GET", "/1m")) for s in sids))
                p.wait(lambda: len(p.headers) == nstreams, 5)
                t_end = time.monotonic() + dribble_s
                grants = 0
                one_round = b"".join(window_update(s, 1) + window_update(0, 1) for s in sids)
                while time.monotonic() < t_end:
                    p.send(one_round)
                    grants += nstreams
                    p.pump(0.002)
                p.wait(lambda: sum(p.data_len.values()) >= grants, 2)
                dribbled = sum(p.data_len.values())
                one_byte = p.types[DATA]
                case.note("dribble_frames", one_byte)
                case.note("dribble_bytes", dribbled)
                if p.goaway:
                    raise AssertionError("GOAWAY during a legal dribble: %s" % p.describe())
                if dribbled < grants * 0.9 or dribbled > grants:
                    raise AssertionError("dribble: %d bytes sent for %d granted" % (
                        dribbled, grants))
                # Data so far must be the right bytes, then open every window.
                for s in sids:
                    got = bytes(p.data[s])
                    if got != ONE_MIB_BODY[:len(got)]:
                        raise AssertionError("stream %d: wrong bytes in the dribble" % s)
                t = time.monotonic()
                # Windows for the rest: 1 MiB per stream, 64 MiB for the
                # connection (no window can pass 2^31-1).
                p.send(window_update(0, nstreams * len(ONE_MIB_BODY)) +
                       b"".join(window_update(s, len(ONE_MIB_BODY)) for s in sids))
                if not p.wait(lambda: len(p.ended) == nstreams, 30):
                    raise AssertionError("bodies incomplete after the dribble: %d of %d ended "
                                         "(%s)" % (len(p.ended), nstreams, p.describe()))
                case.note("drain_s", round(time.monotonic() - t, 2))
                wrong = [s for s in sids if bytes(p.data[s]) != ONE_MIB_BODY]
                if wrong:
                    raise AssertionError("streams %s: body differs from /1m" % wrong[:5])
                if p.goaway:
                    raise AssertionError("GOAWAY: %s" % p.describe())
                case.note("reaction", "none (legal), %d x 1 MiB correct" % nstreams)

        self.run_case("data_dribble", attack)

        # The other end of the dribble: a peer that reads everything but
        # never opens the window of the response it asked for.  Its socket
        # drains, so it is told why (GOAWAY ENHANCE_YOUR_CALM "send timeout")
        # at the no-progress timeout, then closed.  (The soak run found this
        # closed with a bare FIN: bench/soak_repro_zero_window.py.)
        send_timeout = 2.0

        def never_opened(case):
            with Peer(case.srv.port, settings=[(SET_INITIAL_WINDOW, 0)]) as p:
                t_req = time.monotonic()    # the last output progress is after this
                p.send(headers_frame(1, req_block("GET", "/1m")))
                if not p.wait(lambda: 1 in p.headers, 3):
                    raise AssertionError("no response head: %s" % p.describe())
                t = time.monotonic()        # ... and before this
                if not p.wait(lambda: p.goaway, send_timeout + 3):
                    raise AssertionError("no GOAWAY %.1f s into a zero window (send-timeout "
                                         "%.1f s): %s" % (time.monotonic() - t, send_timeout,
                                                          p.describe()))
                took = time.monotonic() - t
                case.note("goaway_after_s", round(took, 2))
                case.note("goaway", "%s %r" % (code_name(p.goaway[1]), p.goaway[2]))
                if p.goaway[1] != ENHANCE_YOUR_CALM or b"send timeout" not in p.goaway[2]:
                    raise AssertionError("GOAWAY %s %r, want ENHANCE_YOUR_CALM 'send timeout'"
                                         % (code_name(p.goaway[1]), p.goaway[2]))
                # took counts from the head's arrival, so it may be short by
                # however late this process got to see the head: the lower
                # bound counts from before the request.
                if not (send_timeout - 0.1 <= p.t_goaway - t_req and
                        took <= send_timeout + CLOSE_SLACK):
                    raise AssertionError("GOAWAY %.2f s after the head (%.2f s after the "
                                         "request), send-timeout %.1f s" % (
                                             took, p.t_goaway - t_req, send_timeout))
                if wait_server_close(case.srv, p, 3) is None:
                    raise AssertionError("still open 3 s after the GOAWAY")
                case.note("reaction", "GOAWAY ENHANCE_YOUR_CALM after %.2f s, then closed" % took)

        self.run_case("window_never_opened", never_opened,
                      sets={"send-timeout": int(send_timeout * 1000)}, limits=["send-timeout"])

    # ======================================================================
    # Shared: counting how many offences a token bucket lets through
    # ======================================================================
    @staticmethod
    def trip(p, unit, budget, rate, what, step=10):
        """Send offences unit(0), unit(1), ... : all but the last ~2% of the
        burst at once (no GOAWAY may follow), then `step` at a time until the
        GOAWAY ENHANCE_YOUR_CALM.  Asserts that it came after `budget`
        offences (+ the bucket's refill over the elapsed time + one step in
        flight).  Returns (offences sent, GOAWAY and EOF seconds after the
        step that tripped it).

        Each step ends with a PING (not an offence) and the next step waits
        for its ACK: frames are handled in order, so the ACK says the server
        has judged the whole step, and no step goes out after the one that
        tripped the limit however slowly the server answers (ASan, a loaded
        2-core machine).  Waiting a fixed 5 ms instead counted steps sent
        while the GOAWAY was on its way as offences the server let through."""
        def sync(token, timeout=5.0):
            """Send PING `token`; wait for its ACK (True) or a GOAWAY/EOF
            (False)."""
            with contextlib.suppress(OSError):
                p.send(ping(token))
            p.wait(lambda: p.goaway is not None or token in p.ping_acks, timeout)
            if p.goaway is not None or p.eof:
                return False
            if token not in p.ping_acks:
                raise AssertionError("%s: no PING ACK within %.1f s, no GOAWAY either (%s)" % (
                    what, timeout, p.describe()))
            return True

        safe = budget - max(2 * step, budget // 50)
        t = time.monotonic()
        i = 0
        while i < safe:
            k = min(safe - i, 500)
            p.send(b"".join(unit(j) for j in range(i, i + k)))
            i += k
            p.pump(0)
        token = TRIP_PING
        if not sync(token):
            raise AssertionError("%s: GOAWAY after only %d of a budget of %d (%s)" % (
                what, i, budget, p.describe()))
        t_step = time.monotonic()
        while p.goaway is None and not p.eof and i < 3 * budget + 1000:
            t_step = time.monotonic()
            with contextlib.suppress(OSError):
                p.send(b"".join(unit(j) for j in range(i, i + step)))
            i += step
            token += 1
            sync(token)
        elapsed = time.monotonic() - t
        rt, ct = expect_goaway(p, ENHANCE_YOUR_CALM, t_step, 2, what)
        if not budget < i <= budget + rate * elapsed + 2 * step:
            raise AssertionError("%s: GOAWAY after %d offences in %.2f s; budget %d + %d/s" % (
                what, i, elapsed, budget, rate))
        return i, rt, ct

    # ======================================================================
    # Shared: the control-reply cap (PING ACK, SETTINGS ACK, RST_STREAM)
    # ======================================================================
    def control_cap(self, case, what, chunks, send_timeout):
        """Flood `chunks` from a client that never reads (4 KiB receive
        buffer) until the server visibly stops reading (its side of the
        socket holds unread bytes it leaves there, or the kernel takes no
        more): it must pause instead of queueing replies without bound, then
        close the connection when no output has moved for send-timeout."""
        with Peer(case.srv.port, rcvbuf=4096, sndbuf=65536) as p:
            p.wait(lambda: p.server_settings, 2)   # the server preface; no reading after
            sent, t_last, stalled = p.flood(chunks, stall=0.5, limit=512 * MIB, watch=True)
            case.note(what + "_sent_until_pause_KiB", sent // 1024)
            case.note(what + "_pause_seen", p.flood_end)
            if not stalled:
                raise AssertionError("%s: %d KiB sent, no pause seen (flood ended: %s)" % (
                    what, sent // 1024, p.flood_end))
            info = p.server_side()
            case.note(what + "_server_unread_KiB", info and info["rxq"] // 1024)
            if not info or info["rxq"] == 0:
                raise AssertionError("%s: the server's socket has no unread input: %s" % (
                    what, info))
            t_close = wait_server_close(case.srv, p, send_timeout + 3)
            if t_close is None:
                raise AssertionError(
                    "%s: the server still holds the connection %.1f s after the last send "
                    "progress (send-timeout %.1f s); its socket: %s" % (
                        what, time.monotonic() - t_last, send_timeout, p.server_side()))
            case.note(what + "_closed_after_s", round(t_close - t_last, 2))
            p.read_all(10)
            case.note(what + "_goaway", p.goaway and code_name(p.goaway[1]))
            if t_close - t_last > send_timeout + CLOSE_SLACK:
                raise AssertionError("%s: closed %.2f s after the last progress, send-timeout "
                                     "%.1f s" % (what, t_close - t_last, send_timeout))
            return p

    # ======================================================================
    # 2. Ping flood (CVE-2019-9512)
    # ======================================================================
    @staticmethod
    def pings(start=0):
        i = start
        while True:
            yield b"".join(ping(k) for k in range(i, i + 1024))
            i += 1024

    # The control-reply cap cases close at a send-timeout long enough for
    # the client to watch the paused server for its 0.5 s window first (a
    # 2 s send-timeout lost that race on a loaded machine: the server closed,
    # correctly, before the client had seen the pause).
    CAP_SEND_TIMEOUT = 5.0

    def test_02_ping_flood(self):
        send_timeout = self.CAP_SEND_TIMEOUT

        # A: PINGs without reading: paused at the cap, closed at the send
        # timeout.
        self.run_case("ping_flood", lambda c: self.control_cap(c, "A", self.pings(),
                                                               send_timeout),
                      sets={"send-timeout": int(send_timeout * 1000)},
                      limits=["control-queue", "send-timeout"])

        def resume(case):
            # B (default limits): the same flood, then read: every PING gets
            # its ACK, in order, and the connection works again.
            with Peer(case.srv.port, rcvbuf=4096, sndbuf=65536) as p:
                p.wait(lambda: p.server_settings, 2)
                sent, t_last, stalled = p.flood(self.pings(), stall=0.3, limit=512 * MIB)
                n = sent // 17
                if not stalled:
                    raise AssertionError("B: no pause")
                info = p.server_side()
                case.note("B_server_unread_KiB", info and info["rxq"] // 1024)
                t = time.monotonic()
                if not p.wait(lambda: len(p.ping_acks) >= n, 15):
                    raise AssertionError("B: %d PING ACKs for %d PINGs (%s)" % (
                        len(p.ping_acks), n, p.describe()))
                if p.ping_acks[:n] != list(range(n)):
                    raise AssertionError("B: ACK opaque data out of order or wrong")
                # The PING the stall cut in half, then a request.
                p.send(ping(n)[sent % 17:] + headers_frame(1, GET_ROOT))
                if not p.wait(lambda: 1 in p.ended, 3):
                    raise AssertionError("B: no answer after draining: %s" % p.describe())
                case.note("B_resumed", "%d PINGs: all ACKed in order within %.1f s of reading, "
                          "then 200" % (n, time.monotonic() - t))
        self.run_case("ping_flood_resume", resume)

    # ======================================================================
    # 3. Priority loop (CVE-2019-9513)
    # ======================================================================
    def test_03_priority_loop(self):
        burst = 200

        def one(case, measure):
            with Peer(case.srv.port) as p:
                p.wait(lambda: p.server_settings, 2)
                if measure:
                    st = dict(p.server_settings[0])
                    case.note("server_NO_RFC7540_PRIORITIES", st.get(SET_NO_RFC7540_PRIORITIES))
                    if st.get(SET_NO_RFC7540_PRIORITIES) != 1:
                        raise AssertionError("server SETTINGS lack NO_RFC7540_PRIORITIES=1: %s"
                                             % st)
                # A dependency chain that loops: 1 -> 3 -> 5 -> ... -> 199 -> 1.
                n, rt, ct = self.trip(
                    p, lambda i: frame(PRIORITY, 0, 1 + 2 * (i % 100),
                                       struct.pack(">IB", 1 + 2 * ((i + 1) % 100), 15)),
                    burst, 330, "PRIORITY flood")
                if measure:
                    case.note("reaction", "GOAWAY ENHANCE_YOUR_CALM %r after %d PRIORITY "
                              "frames (burst %d + refill), %.1f ms after the last, closed "
                              "%.1f ms" % (p.goaway[2][:30], n, burst, rt * 1e3, ct * 1e3))
        self.run_case("priority_loop", lambda c: one(c, True), sets={"glitch-burst": burst},
                      repeat=lambda c: one(c, False))

    # ======================================================================
    # 4. Reset flood (CVE-2019-9514)
    # ======================================================================
    def budget_flood(self, case, what, frames_, count, budget, measure=True):
        """Send `frames_` (an iterator of byte strings) without reading; the
        client's 4 MiB receive buffer takes every reply, so what the server
        said before closing is still there to read afterwards.  `count(p)`
        is the number of replies (ACKs/RSTs) before the GOAWAY, which must
        be the budget (+ its 330/s refill)."""
        with Peer(case.srv.port, rcvbuf=4 * MIB) as p:
            p.wait(lambda: p.server_settings, 2)
            t = time.monotonic()
            sent, _, stalled = p.flood(frames_, stall=0.5)
            rt, ct = expect_goaway(p, ENHANCE_YOUR_CALM, t, 5, what, close_within=3)
            n = count(p)
            if measure:
                case.note(what, "GOAWAY ENHANCE_YOUR_CALM %r after %d replies, %.0f ms" % (
                    p.goaway[2][:30], n, rt * 1e3))
            if not budget <= n <= budget + 330 * (rt + 1):
                raise AssertionError("%s: %d replies before GOAWAY, budget %d" % (what, n, budget))
            return p

    def test_04_reset_flood(self):
        # Invalid requests (an uppercase name) force RST_STREAMs.
        bad = req_block(extra=hp_lit("X-Bad", "1"))

        def bad_requests(n, first=1):
            for b in range(0, n, 500):
                yield b"".join(headers_frame(first + 2 * (b + i), bad) for i in range(500))

        def rsts(p):
            if set(p.rst_codes) != {PROTOCOL_ERROR}:
                raise AssertionError("RST codes %s" % p.rst_codes)
            return p.rst_codes[PROTOCOL_ERROR]

        # The default glitch budget (10000, 330/s).
        self.run_case("reset_flood_budget", lambda c: self.budget_flood(
            c, "default_budget", bad_requests(20000), rsts, 10000))

        # The control-reply cap: budget out of the way, the client does not
        # read: the server must pause, not queue RST_STREAMs without end.
        self.run_case("reset_flood_control_cap",
                      lambda c: self.control_cap(c, "cap", bad_requests(1 << 24),
                                                 self.CAP_SEND_TIMEOUT),
                      sets={"glitch-burst": 100000000,
                            "send-timeout": int(self.CAP_SEND_TIMEOUT * 1000)})

    # ======================================================================
    # 5. Settings flood (CVE-2019-9515)
    # ======================================================================
    def test_05_settings_flood(self):
        some = settings_frame([(SET_INITIAL_WINDOW, 65535)])

        def settings(n):
            for _ in range(0, n, 1000):
                yield some * 1000

        def entries(case, measure=True):
            # 32 entries: accepted.  40 entries: ENHANCE_YOUR_CALM, whether
            # in the preface or later.
            with Peer(case.srv.port, preface=False) as p:
                p.send(PREFACE + settings_frame([(SET_HEADER_TABLE_SIZE, 4096)] * 32))
                if not p.wait(lambda: p.settings_acks >= 1, 2) or p.goaway:
                    raise AssertionError("32 SETTINGS entries not ACKed: %s" % p.describe())
                t = time.monotonic()
                p.send(settings_frame([(SET_HEADER_TABLE_SIZE, 4096)] * 40))
                rt, ct = expect_goaway(p, ENHANCE_YOUR_CALM, t, 2, "SETTINGS with 40 entries")
                if measure:
                    case.note("entries", "32 ACKed; 40 -> GOAWAY ENHANCE_YOUR_CALM %r %.1f ms, "
                              "closed %.1f ms" % (p.goaway[2][:30], rt * 1e3, ct * 1e3))
            with Peer(case.srv.port, preface=False) as p:
                t = time.monotonic()
                p.send(PREFACE + settings_frame([(SET_MAX_CONCURRENT, 100)] * 40))
                expect_goaway(p, ENHANCE_YOUR_CALM, t, 2, "preface SETTINGS, 40 entries")

        def attack(case):
            # Every SETTINGS after the first is a glitch and an ACK to send.
            self.budget_flood(case, "flood", settings(20000), lambda p: p.settings_acks - 1,
                              10000)
            entries(case)
        self.run_case("settings_flood", attack, repeat=lambda c: entries(c, False))

        self.run_case("settings_flood_control_cap",
                      lambda c: self.control_cap(c, "cap", settings(1 << 30),
                                                 self.CAP_SEND_TIMEOUT),
                      sets={"glitch-burst": 100000000,
                            "send-timeout": int(self.CAP_SEND_TIMEOUT * 1000)})

    # ======================================================================
    # 6. Zero-length header name (CVE-2019-9516)
    # ======================================================================
    def test_06_zero_length_header(self):
        nbad = 20000
        pad = "v" * 4000   # a leak of the decoded block would be ~80 MB

        def attack(case):
            with Peer(case.srv.port) as p:
                bad = req_block(extra=hp_lit("", pad))
                t = time.monotonic()
                batch = 200
                for b in range(0, nbad, batch):
                    p.send(b"".join(headers_frame(1 + 2 * (b + i), bad) for i in range(batch)))
                    p.pump(0)
                if not p.wait(lambda: len(p.rst) >= nbad, 10):
                    raise AssertionError("%d RST_STREAMs for %d bad requests (%s)" % (
                        len(p.rst), nbad, p.describe()))
                if set(p.rst_codes) != {PROTOCOL_ERROR}:
                    raise AssertionError("RST codes %s, want PROTOCOL_ERROR" % p.rst_codes)
                if p.goaway or p.headers:
                    raise AssertionError("empty name: GOAWAY or an answer: %s" % p.describe())
                sid = 1 + 2 * nbad
                p.send(headers_frame(sid, GET_ROOT))
                if not p.wait(lambda: sid in p.ended, 3) or bytes(p.data[sid]) != HELLO and \
                        p.data_len[sid] != len(HELLO):
                    raise AssertionError("no answer after the bad requests: %s" % p.describe())
                case.note("reaction", "%d x RST_STREAM PROTOCOL_ERROR in %.2f s, then 200 on "
                          "the same connection" % (nbad, time.monotonic() - t))
        # Budget raised so the leak check can run 20000 bad requests on one
        # connection (each one is a glitch); the budget itself is test 04's.
        self.run_case("zero_length_header", attack, sets={"glitch-burst": 1000000})

    # ======================================================================
    # 7. Internal data buffering (CVE-2019-9517)
    # ======================================================================
    def test_07_internal_buffering(self):
        send_timeout = 2.0
        nconn, nstreams = 8, 100

        def attack(case):
            # Windows wide open (2^31-1), TCP never read: 8 connections x 100
            # streams of /1m = 800 MiB the server may not buffer.
            big = [(SET_INITIAL_WINDOW, MAX_WINDOW)]
            peers = []
            try:
                for _ in range(nconn):
                    p = Peer(case.srv.port, rcvbuf=4096, settings=big)
                    p.wait(lambda: p.server_settings, 2)   # preface in; no reading after
                    peers.append(p)
                t_req = time.monotonic()
                for p in peers:
                    p.send(window_update(0, MAX_WINDOW - 65535) +
                           b"".join(headers_frame(1 + 2 * i, req_block("GET", "/1m"))
                                    for i in range(nstreams)))
                time.sleep(0.3)
                info = [p.server_side() for p in peers]
                case.note("server_txq_KiB", max(i["txq"] for i in info if i) // 1024)
                deadline = time.monotonic() + send_timeout + 3
                closed = [wait_server_close(case.srv, p, deadline=deadline) for p in peers]
                if None in closed:
                    raise AssertionError("%d of %d connections still held %.1f s after output "
                                         "stopped (send-timeout %.1f s)" % (
                                             closed.count(None), nconn, send_timeout + 3,
                                             send_timeout))
                first, last = min(closed) - t_req, max(closed) - t_req
                case.note("closed_s", "%.2f..%.2f" % (first, last))
                if last > send_timeout + CLOSE_SLACK or first < send_timeout - 0.1:
                    raise AssertionError("closed at %.2f..%.2f s, send-timeout %.1f s" % (
                        first, last, send_timeout))
                for p in peers:
                    p.read_all(5)
                case.note("goaway", dict(collections.Counter(
                    p.goaway and code_name(p.goaway[1]) for p in peers)))
            finally:
                for p in peers:
                    p.close()
        self.run_case("internal_buffering", attack,
                      sets={"send-timeout": int(send_timeout * 1000)})

    # ======================================================================
    # 8. Empty frames flood (CVE-2019-9518)
    # ======================================================================
    def test_08_empty_frames(self):
        def data_flood(case, measure):
            # Default budget: 10000 glitches, 330/s.
            with Peer(case.srv.port) as p:
                p.send(headers_frame(1, req_block("POST", "/echo"), end_stream=False))
                empty = frame(DATA, 0, 1)
                n, rt, ct = self.trip(p, lambda i: empty, 10000, 330, "empty DATA flood",
                                      step=20)
                if measure:
                    case.note("data", "GOAWAY ENHANCE_YOUR_CALM %r after %d empty DATA "
                              "(burst 10000 + refill), %.1f ms after the last, closed %.1f ms" % (
                                  p.goaway[2][:30], n, rt * 1e3, ct * 1e3))

        def headers_flood(case):
            # Empty HEADERS without END_HEADERS, empty CONTINUATIONs: also
            # glitches, and the CONTINUATION cap stops them early.
            with Peer(case.srv.port) as p:
                t = time.monotonic()
                p.send(headers_frame(1, b"", end_stream=False, end_headers=False) +
                       frame(CONTINUATION, 0, 1) * 20)
                rt, ct = expect_goaway(p, ENHANCE_YOUR_CALM, t, 2, "empty CONTINUATIONs")
                case.note("continuation", "GOAWAY ENHANCE_YOUR_CALM %.1f ms" % (rt * 1e3))

        def attack(case):
            data_flood(case, True)
            headers_flood(case)
        self.run_case("empty_frames", attack, repeat=lambda c: data_flood(c, False),
                      limits=["glitches", "continuations"])

    # ======================================================================
    # 9. Rapid Reset (CVE-2023-44487)
    # ======================================================================
    def test_09_rapid_reset(self):
        def flood(case, measure):
            # Default limits: reset bucket 1000, 33/s.
            with Peer(case.srv.port) as p:
                p.wait(lambda: p.server_settings, 2)
                n, rt, ct = self.trip(
                    p, lambda i: headers_frame(2 * i + 1, GET_ROOT) + rst_stream(2 * i + 1),
                    1000, 33, "Rapid Reset", step=5)
                if p.goaway[2] != b"too many stream resets":
                    raise AssertionError("Rapid Reset: GOAWAY debug %r" % p.goaway[2])
                if measure:
                    case.note("reaction", "GOAWAY ENHANCE_YOUR_CALM %r after %d HEADERS+RST "
                              "pairs (burst 1000 + 33/s), %.1f ms after the last, closed %.1f ms;"
                              " streams answered %d, refused %d" % (
                                  p.goaway[2], n, rt * 1e3, ct * 1e3, len(p.ended),
                                  p.rst_codes[REFUSED_STREAM]))
        self.run_case("rapid_reset_default", lambda c: flood(c, True),
                      repeat=lambda c: flood(c, False), limits=["rapid-reset"])

    def test_10_rapid_reset_handler_slots(self):
        mcs = 10

        def stall_not_reset(case):
            # Ten streams stalled 1.5 s hold every slot: the 11th is refused,
            # the ten still answer.
            with Peer(case.srv.port) as p:
                p.wait(lambda: p.server_settings, 2)
                st = dict(p.server_settings[0])
                if st.get(SET_MAX_CONCURRENT) != mcs:
                    raise AssertionError("advertised MAX_CONCURRENT_STREAMS %s" % st)
                p.send(b"".join(headers_frame(1 + 2 * i, req_block("GET", "/stall?ms=1500"))
                                for i in range(mcs)))
                time.sleep(0.1)
                p.send(headers_frame(21, GET_ROOT))
                if not p.wait(lambda: 21 in p.rst, 1):
                    raise AssertionError("11th stream not refused: %s" % p.describe())
                if p.rst[21] != REFUSED_STREAM:
                    raise AssertionError("11th stream: RST %s" % code_name(p.rst[21]))
                ok = p.wait(lambda: all(1 + 2 * i in p.ended for i in range(mcs)), 3)
                if not ok or p.goaway:
                    raise AssertionError("stalled streams did not finish: %s" % p.describe())
                case.note("open_slots", "11th HEADERS -> REFUSED_STREAM, 10 stalled -> 200")

        def reset_blocking(case):
            # --blocking: /sleep handlers really block an offload thread; the
            # peer resets them at once.  security.md: "a stream the peer reset
            # still counts until its handler has stopped" -> the 11th HEADERS
            # is refused while the ten handlers sleep.
            with Peer(case.srv.port) as p:
                p.wait(lambda: p.server_settings, 2)
                p.send(b"".join(headers_frame(1 + 2 * i, req_block("GET", "/sleep?ms=3000")) +
                                rst_stream(1 + 2 * i) for i in range(mcs)))
                time.sleep(0.2)
                t = time.monotonic()
                p.send(headers_frame(21, GET_ROOT))
                p.wait(lambda: 21 in p.rst or 21 in p.ended, 2)
                got = ("RST %s" % code_name(p.rst[21]) if 21 in p.rst else
                       "answered %s after %.0f ms" % (p.headers.get(21, {}).get(":status"),
                                                      (time.monotonic() - t) * 1e3)
                       if 21 in p.ended else "nothing")
                case.note("reset_sleeping_handlers", "11th HEADERS -> %s" % got)
                if p.rst.get(21) != REFUSED_STREAM:
                    raise AssertionError("10 reset-but-running handlers (/sleep?ms=3000, "
                                         "--blocking) with max-concurrent-streams=10: 11th "
                                         "HEADERS -> %s, want RST_STREAM REFUSED_STREAM" % got)

        def reset_inline(case):
            # Inline /stall: a reset cancels the stall timer, so the handler
            # has stopped and its slot is free: nothing to refuse.  Figures only.
            with Peer(case.srv.port) as p:
                p.wait(lambda: p.server_settings, 2)
                p.send(b"".join(headers_frame(1 + 2 * i, req_block("GET", "/stall?ms=3000")) +
                                rst_stream(1 + 2 * i) for i in range(mcs)))
                time.sleep(0.1)
                p.send(headers_frame(21, GET_ROOT))
                p.wait(lambda: 21 in p.rst or 21 in p.ended, 2)
                case.note("reset_stall_inline", "11th HEADERS -> %s" % (
                    "RST %s" % code_name(p.rst[21]) if 21 in p.rst else
                    "200" if 21 in p.ended else "nothing"))

        def attack(case):
            stall_not_reset(case)
            reset_inline(case)
        self.run_case("handler_slots_inline", attack, sets={"max-concurrent-streams": mcs})
        # The benign bound applies here too: its `/` runs on the same offload
        # workers, so it also shows whether reset-but-running handlers delay
        # other connections.
        self.run_case("handler_slots_blocking", reset_blocking, args=["--blocking"],
                      sets={"max-concurrent-streams": mcs, "offload-threads": 16})

    # ======================================================================
    # 10. CONTINUATION flood (CVE-2024-27316 and kin)
    # ======================================================================
    def test_11_continuation_flood(self):
        part = req_block()

        def count_cap(case, measure):
            # Default cap 8: eight CONTINUATIONs pass, the ninth is answered
            # with GOAWAY ENHANCE_YOUR_CALM.
            with Peer(case.srv.port) as p:
                p.wait(lambda: p.server_settings, 2)
                p.send(headers_frame(1, part[:2], end_headers=False))
                for i in range(8):
                    p.send(frame(CONTINUATION, 0, 1, b""))
                if p.wait(lambda: p.goaway is not None, 0.2 if measure else 0.02):
                    raise AssertionError("GOAWAY before the 9th CONTINUATION: %s" % p.describe())
                t = time.monotonic()
                p.send(frame(CONTINUATION, 0, 1, hp_lit("x-a", "b")))
                rt, ct = expect_goaway(p, ENHANCE_YOUR_CALM, t, 2, "9th CONTINUATION")
                if measure:
                    case.note("count_cap", "9th CONTINUATION -> GOAWAY ENHANCE_YOUR_CALM "
                              "%.1f ms, closed %.1f ms" % (rt * 1e3, ct * 1e3))

        def endless(case):
            with Peer(case.srv.port) as p:
                t = time.monotonic()
                cont = frame(CONTINUATION, 0, 1, hp_lit("x-filler", "y" * 100))
                p.send(headers_frame(1, part, end_headers=False))
                sent = 0
                while p.goaway is None and not p.eof and sent < 100000:
                    with contextlib.suppress(OSError):
                        p.send(cont * 100)
                    sent += 100
                    p.pump(0)
                rt, ct = expect_goaway(p, ENHANCE_YOUR_CALM, t, 2, "endless CONTINUATION")
                case.note("endless", "GOAWAY ENHANCE_YOUR_CALM %.1f ms" % (rt * 1e3))

        def byte_cap(case):
            # 16 KiB fragments: the 64 KiB encoded-block cap trips first.
            with Peer(case.srv.port) as p:
                t = time.monotonic()
                big = hp_lit("x-big", "z" * 16000)
                p.send(headers_frame(1, part, end_headers=False) +
                       b"".join(frame(CONTINUATION, 0, 1, big) for _ in range(6)))
                rt, ct = expect_goaway(p, ENHANCE_YOUR_CALM, t, 2, "64 KiB block cap")
                case.note("byte_cap", "6 x 16 KB CONTINUATION -> GOAWAY ENHANCE_YOUR_CALM %r"
                          % p.goaway[2][:40])

        def attack(case):
            count_cap(case, True)
            endless(case)
            byte_cap(case)
        self.run_case("continuation_default", attack, repeat=lambda c: count_cap(c, False),
                      limits=["continuations"])

    def test_12_continuation_slow(self):
        timeout = 1.0

        def attack(case):
            # header-timeout 1 s: a block that trickles in (a CONTINUATION
            # every 0.3 s, under the count cap) is cut at 1 s.
            with Peer(case.srv.port) as p:
                p.wait(lambda: p.server_settings, 2)
                t = time.monotonic()
                p.send(headers_frame(1, req_block(), end_headers=False))
                for _ in range(6):
                    if p.wait(lambda: p.goaway is not None, 0.3):
                        break
                    with contextlib.suppress(OSError):
                        p.send(frame(CONTINUATION, 0, 1, hp_lit("x-s", "1")))
                rt, ct = expect_goaway(p, ENHANCE_YOUR_CALM, t, 3, "slow header block")
                case.note("reaction", "GOAWAY ENHANCE_YOUR_CALM %r at %.2f s, closed %.2f s "
                          "(header-timeout %.1f s)" % (p.goaway[2][:30], rt, ct, timeout))
                if not timeout - 0.05 <= rt <= timeout + CLOSE_SLACK:
                    raise AssertionError("header timeout fired at %.2f s, want %.1f s" % (
                        rt, timeout))
        self.run_case("continuation_slow", attack, sets={"header-timeout": int(timeout * 1000)})

    # ======================================================================
    # 11. HPACK bomb (CVE-2016-6581)
    # ======================================================================
    def test_13_hpack_bomb(self):
        value = "b" * 4000   # 4006 + 32 = 4038 bytes in the 4096-byte table

        def bomb(case, refs, measure):
            p = Peer(case.srv.port)
            p.wait(lambda: p.server_settings, 2)
            # Stream 1 enters the big entry (index 62); it is a fine request.
            p.send(headers_frame(1, GET_ROOT + hp_lit_inc("x-bomb", value)))
            if not p.wait(lambda: 1 in p.ended, 2):
                p.close()
                raise AssertionError("the inserting request was not answered: %s" %
                                     p.describe())
            t = time.monotonic()
            p.send(headers_frame(3, GET_ROOT + hp_idx(62) * refs))
            return p, t

        def big(case, measure=True):
            # 16000 references: 16 KB encoded, 64 MB decoded -> connection
            # error past 4 x 64 KiB.
            p, t = bomb(case, 16000, measure)
            with p:
                rt, ct = expect_goaway(p, ENHANCE_YOUR_CALM, t, 2, "HPACK bomb")
                if measure:
                    case.note("bomb_16000_refs", "GOAWAY ENHANCE_YOUR_CALM %r %.1f ms" % (
                        p.goaway[2][:40], rt * 1e3))

        def small(case):
            # 20 references = 80 KB decoded: over the 64 KiB soft cap, under
            # 4x: that stream gets 431, the connection lives on.
            p, t = bomb(case, 20, True)
            with p:
                p.wait(lambda: 3 in p.ended or 3 in p.rst, 2)
                got = p.headers.get(3, {}).get(":status") or (
                    3 in p.rst and "RST %s" % code_name(p.rst[3]))
                case.note("bomb_20_refs", got)
                if got != "431" or p.goaway:
                    raise AssertionError("20 refs: want 431, got %s (%s)" % (got, p.describe()))
                p.send(headers_frame(5, GET_ROOT))
                if not p.wait(lambda: 5 in p.ended, 2):
                    raise AssertionError("no answer after the 431: %s" % p.describe())

        def attack(case):
            small(case)
            big(case)
        self.run_case("hpack_bomb", attack, repeat=lambda c: big(c, False),
                      limits=["header-list-size"])

    # ======================================================================
    # 12. MadeYouReset (CVE-2025-8671)
    # ======================================================================
    def test_14_made_you_reset(self):
        burst = 200

        def attack(case, measure=True):
            # Valid-looking frames the server must answer with RST_STREAM:
            # a stream WINDOW_UPDATE past 2^31-1 (FLOW_CONTROL_ERROR) and
            # DATA beyond content-length (PROTOCOL_ERROR), alternating.
            with Peer(case.srv.port) as p:
                p.wait(lambda: p.server_settings, 2)
                post = req_block("POST", "/echo", extra=hp_lit("content-length", "1"))
                t = time.monotonic()
                sid = 1
                while p.goaway is None and not p.eof and sid < 4000:
                    out = []
                    for s in range(sid, sid + 40, 4):
                        out.append(headers_frame(s, req_block("GET", "/1m")) +
                                   window_update(s, MAX_WINDOW))
                        out.append(headers_frame(s + 2, post, end_stream=False) +
                                   frame(DATA, 0, s + 2, b"xx"))
                    with contextlib.suppress(OSError):
                        p.send(b"".join(out))
                    sid += 40
                    p.pump(0.001)
                rt, ct = expect_goaway(p, ENHANCE_YOUR_CALM, t, 3, "MadeYouReset")
                codes = dict(p.rst_codes)
                if measure:
                    case.note("reaction", "GOAWAY ENHANCE_YOUR_CALM after RSTs %s, %.0f ms" % (
                        {code_name(c): n for c, n in codes.items()}, rt * 1e3))
                # REFUSED_STREAM is legitimate too: a stream the server reset
                # keeps its handler slot until the handler has stopped
                # (security.md), so when many resets arrive in one read
                # (a loaded machine) later HEADERS can find the slots full.
                if set(codes) - {FLOW_CONTROL_ERROR, PROTOCOL_ERROR, NO_ERROR, REFUSED_STREAM}:
                    raise AssertionError("unexpected RST codes %s" % codes)
                if not codes.get(FLOW_CONTROL_ERROR) or not codes.get(PROTOCOL_ERROR):
                    raise AssertionError("both kinds must be reset: %s" % codes)
                provoked = codes.get(FLOW_CONTROL_ERROR, 0) + codes.get(PROTOCOL_ERROR, 0)
                if not burst * 0.9 <= provoked <= burst + 330:
                    raise AssertionError("%d provoked resets before GOAWAY, glitch-burst %d" % (
                        provoked, burst))
        self.run_case("made_you_reset", attack, sets={"glitch-burst": burst},
                      repeat=lambda c: attack(c, False))

    # ======================================================================
    # 13. Slowloris
    # ======================================================================
    def test_15_slowloris(self):
        to = 1.0
        sets = {"preface-timeout": 1000, "idle-timeout": 1000, "settings-timeout": 1000}

        def check_time(what, t_before, t_after, t_end):
            """The timer started between t_before and t_after (client
            clock); the close, seen at t_end, must be no earlier than the
            timeout and at most CLOSE_SLACK later."""
            longest, shortest = t_end - t_before, t_end - t_after
            if longest < to - 0.05 or shortest > to + CLOSE_SLACK:
                raise AssertionError("%s: closed %.2f..%.2f s after the timer started, timeout "
                                     "%.1f s" % (what, shortest, longest, to))

        def attack(case):
            # (a) the preface a byte at a time (4 per second).
            with Peer(case.srv.port, preface=False, ack_settings=False) as p:
                t = p.t_connect
                for i in range(len(PREFACE)):
                    with contextlib.suppress(OSError):
                        p.send(PREFACE[i:i + 1])
                    if p.wait(lambda: p.eof or p.goaway is not None, 0.25):
                        break
                rt, ct = expect_goaway(p, ENHANCE_YOUR_CALM, t, 3, "slow preface")
                check_time("slow preface", p.t_connect0, p.t_connect, p.t_eof)
                case.note("slow_preface", "GOAWAY %s at %.2f s, closed %.2f s" % (
                    code_name(p.goaway[1]), rt, ct))
            # (b) 200 connections that send nothing.
            peers = [Peer(case.srv.port, preface=False, ack_settings=False) for _ in range(200)]
            try:
                deadline = time.monotonic() + to + 3
                while time.monotonic() < deadline:
                    live = [p for p in peers if not p.eof]
                    if not live:
                        break
                    r, _, _ = select.select([p.sock for p in live], [], [], 0.05)
                    for p in live:
                        if p.sock in r:
                            p.pump(0)
                open_ = [p for p in peers if not p.eof]
                codes = collections.Counter(p.goaway and p.goaway[1] for p in peers)
                # Shortest possible life for the upper bound, longest for
                # the lower one (see Peer.t_connect0).
                first = min([p.t_eof - p.t_connect0 for p in peers if p.eof] or [0.0])
                last = max([p.t_eof - p.t_connect for p in peers if p.eof] or [0.0])
                case.note("silent_200", "GOAWAY %s, each closed %.2f..%.2f s after its "
                          "connect" % (
                    {code_name(c) if c is not None else "none": n for c, n in codes.items()},
                    first, last))
                if open_:
                    raise AssertionError("%d silent connections still open after %.1f s" % (
                        len(open_), to + 3))
                if codes != {ENHANCE_YOUR_CALM: 200}:
                    raise AssertionError("silent connections: GOAWAY codes %s" % codes)
                if first < to - 0.05 or last > to + CLOSE_SLACK + 0.5:
                    raise AssertionError("silent connections closed at %.2f..%.2f s" % (
                        first, last))
            finally:
                for p in peers:
                    p.close()
            # (c) idle after a good preface: GOAWAY NO_ERROR at idle-timeout.
            with Peer(case.srv.port) as p:
                p.wait(lambda: p.server_settings, 1)
                t_req = time.monotonic()    # the server's idle clock starts after this
                p.send(headers_frame(1, GET_ROOT))
                p.wait(lambda: 1 in p.ended, 1)
                t = time.monotonic()        # ... and before this
                rt, ct = expect_goaway(p, NO_ERROR, t, 3, "idle connection")
                check_time("idle", t_req, t, p.t_eof)
                case.note("idle", "GOAWAY NO_ERROR at %.2f s after the last answer, closed "
                          "%.2f s" % (rt, ct))
            # (d) active (PINGs) but never ACKing our SETTINGS: SETTINGS_TIMEOUT.
            with Peer(case.srv.port, ack_settings=False) as p:
                t = p.t_connect
                i = 0
                while not p.wait(lambda: p.goaway is not None, 0.2) and i < 20:
                    with contextlib.suppress(OSError):
                        p.send(ping(i))
                    i += 1
                rt, ct = expect_goaway(p, SETTINGS_TIMEOUT, t, 3, "SETTINGS never ACKed")
                check_time("settings ack", p.t_connect0, p.t_connect, p.t_eof)
                case.note("no_settings_ack", "GOAWAY SETTINGS_TIMEOUT at %.2f s" % rt)
        self.run_case("slowloris", attack, sets=sets)

    # ======================================================================
    # 14. Stream-ID games
    # ======================================================================
    def test_16_stream_id_games(self):
        cases = [
            # (what, bytes after the preface, expected GOAWAY code)
            ("HEADERS on even id 2", headers_frame(2, GET_ROOT), PROTOCOL_ERROR),
            ("decreasing ids 5 then 3",
             headers_frame(5, GET_ROOT) + headers_frame(3, GET_ROOT), PROTOCOL_ERROR),
            ("DATA on idle stream 7", frame(DATA, END_STREAM, 7, b"x"), PROTOCOL_ERROR),
            ("WINDOW_UPDATE on idle stream 9", window_update(9, 1), PROTOCOL_ERROR),
            ("RST_STREAM on idle stream 11", rst_stream(11), PROTOCOL_ERROR),
            ("CONTINUATION without HEADERS", frame(CONTINUATION, END_HEADERS, 1, GET_ROOT),
             PROTOCOL_ERROR),
            ("HEADERS on stream 0", headers_frame(0, GET_ROOT), PROTOCOL_ERROR),
            ("HEADERS interrupted by another stream",
             headers_frame(1, GET_ROOT, end_headers=False) + headers_frame(3, GET_ROOT),
             PROTOCOL_ERROR),
        ]

        def run(case, measure):
            for what, data, code in cases:
                with Peer(case.srv.port) as p:
                    p.wait(lambda: p.server_settings, 1)
                    t = time.monotonic()
                    p.send(data)
                    rt, ct = expect_goaway(p, code, t, 2, what)
                    if measure:
                        case.note(what, "GOAWAY %s %.1f ms, closed %.1f ms" % (
                            code_name(code), rt * 1e3, ct * 1e3))
            # A closed stream reused: HEADERS on 1 after its response.
            with Peer(case.srv.port) as p:
                p.send(headers_frame(1, GET_ROOT))
                p.wait(lambda: 1 in p.ended, 2)
                t = time.monotonic()
                p.send(headers_frame(1, GET_ROOT))
                rt, ct = expect_goaway(p, STREAM_CLOSED, t, 2, "HEADERS on closed stream 1")
                if measure:
                    case.note("HEADERS on closed stream 1", "GOAWAY STREAM_CLOSED %.1f ms" %
                              (rt * 1e3))
        self.run_case("stream_id_games", lambda c: run(c, True), repeat=lambda c: run(c, False))

    # ======================================================================
    # 15. Smuggling
    # ======================================================================
    SMUGGLING = [
        ("uppercase name", hp_lit("X-Upper", "1")),
        ("connection: keep-alive", hp_lit("connection", "keep-alive")),
        ("keep-alive", hp_lit("keep-alive", "timeout=5")),
        ("proxy-connection", hp_lit("proxy-connection", "keep-alive")),
        ("transfer-encoding", hp_lit("transfer-encoding", "chunked")),
        ("upgrade", hp_lit("upgrade", "h2c")),
        ("te: gzip", hp_lit("te", "gzip")),
        ("te: trailers, gzip", hp_lit("te", "trailers, gzip")),
        ("CR in value", hp_lit("x-a", "a\rb")),
        ("LF in value", hp_lit("x-a", "a\nb")),
        ("CRLF injection", hp_lit("x-a", "a\r\nx-injected: 1")),
        ("NUL in value", hp_lit("x-a", "a\x00b")),
        ("leading space in value", hp_lit("x-a", " a")),
        ("trailing tab in value", hp_lit("x-a", "a\t")),
        ("space in name", hp_lit("x a", "1")),
        ("colon in name", hp_lit("x:a", "1")),
        ("NUL in name", hp_lit("x\x00a", "1")),
    ]
    SMUGGLING_PSEUDO = [
        ("unknown pseudo :foo", GET_ROOT + hp_lit(":foo", "1")),
        ("pseudo after regular", hp_idx(2) + hp_idx(6) + AUTHORITY + hp_lit("x-a", "1") +
         hp_idx(4)),
        ("duplicate :path", GET_ROOT + hp_lit_idx_name(4, "/other")),
        ("missing :path", hp_idx(2) + hp_idx(6) + AUTHORITY),
        ("missing :method", hp_idx(6) + hp_idx(4) + AUTHORITY),
        ("missing :scheme", hp_idx(2) + hp_idx(4) + AUTHORITY),
        ("empty :path", hp_idx(2) + hp_idx(6) + hp_lit_idx_name(4, "") + AUTHORITY),
        (":status in a request", GET_ROOT + hp_idx(8)),
        ("CR in :path", hp_idx(2) + hp_idx(6) + hp_lit_idx_name(4, "/a\r\nb") + AUTHORITY),
        ("space in :path", hp_idx(2) + hp_idx(6) + hp_lit_idx_name(4, "/a b") + AUTHORITY),
        ("bad :method", req_block("GE T")),
        ("END_STREAM with content-length 5", GET_ROOT + hp_lit("content-length", "5")),
    ]

    def test_17_smuggling(self):
        blocks = [(w, GET_ROOT + b) for w, b in self.SMUGGLING] + self.SMUGGLING_PSEUDO

        def run(case, measure):
            with Peer(case.srv.port) as p:
                sid = 1
                expect = {}
                for what, block in blocks:
                    # A malformed request, then a good one, on one connection.
                    p.send(headers_frame(sid, block) + headers_frame(sid + 2, GET_ROOT))
                    expect[sid] = what
                    sid += 4
                # control: te: trailers is allowed
                p.send(headers_frame(sid, GET_ROOT + hp_lit("te", "trailers")))
                good = [s + 2 for s in expect] + [sid]
                p.wait(lambda: all(s in p.rst or s in p.ended for s in expect) and
                       all(s in p.ended for s in good), 3)
                wrong = []
                for s, what in expect.items():
                    got = ("RST %s" % code_name(p.rst[s]) if s in p.rst else
                           "answered %s" % p.headers.get(s, {}).get(":status")
                           if s in p.headers else "nothing")
                    if got != "RST PROTOCOL_ERROR":
                        wrong.append("%s -> %s" % (what, got))
                if p.goaway:
                    wrong.append("connection error: %s" % p.describe())
                missing = [s for s in good if p.headers.get(s, {}).get(":status") != "200"]
                if missing:
                    wrong.append("good requests unanswered: %s" % missing)
                if measure:
                    case.note("malformed", "%d of %d -> RST_STREAM PROTOCOL_ERROR, stream only; "
                              "%d good requests between them answered" % (
                                  len(expect) - len(wrong), len(expect), len(good)))
                if wrong:
                    raise AssertionError("smuggling: " + "; ".join(wrong))
        self.run_case("smuggling", lambda c: run(c, True), repeat=lambda c: run(c, False))

    # ======================================================================
    # 16. TLS abuse (docs/tls.md "Policy"): the server also serves TLS;
    # the benign client stays on h2c, on the same shard.
    # ======================================================================
    def test_18_tls_1_refusals(self):
        """TLS 1.1, CBC-only TLS 1.2: one fatal alert in the clear (the only
        record the server sends), then the server closes.  No ALPN (and
        ALPN http/1.1, test_tls.py): the handshake completes and the
        connection is HTTP/1.1 (issue 13): no HTTP/2 at all (not even the
        server's SETTINGS), a request is answered."""
        tls12, tls13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3

        def tls11_ctx():
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    ctx.set_ciphers("ALL:@SECLEVEL=0")
                    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            except (ValueError, ssl.SSLError):
                return None
            ctx.set_alpn_protocols(["h2"])
            return strict_eof(ctx)

        def cbc_ctx():
            ctx = self.tls_ctx(version=tls12)
            ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:"
                            "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES128-SHA:"
                            "AES128-SHA256:AES128-SHA")
            return ctx

        refusals = [  # (what, context, the alert)
            ("TLS 1.1 client", tls11_ctx, 70),
            ("TLS 1.2 with CBC suites only", cbc_ctx, 40),
        ]

        def run(case, measure):
            port = case.srv.tls_port
            n_refused = 0
            for what, make_ctx, code in refusals:
                ctx = make_ctx()
                if ctx is None:
                    if measure:
                        case.note(what, "not tried: the local OpenSSL cannot offer it")
                    continue
                with TlsBio(port, ctx) as b:
                    err = b.handshake()
                    if err is None:
                        raise AssertionError("%s: handshake completed (%s, ALPN %r)" % (
                            what, b.obj.version(), b.obj.selected_alpn_protocol()))
                    deadline = time.monotonic() + 2
                    while not b.eof and b._recv(deadline):
                        pass
                    recs = [(ct, p[0], p[1]) if ct == TLS_CT_ALERT and len(p) == 2
                            else (ct, len(p)) for ct, _, p in tls_records(b.raw)]
                    if recs != [(TLS_CT_ALERT, 2, code)]:
                        raise AssertionError("%s: server sent records %s, want one fatal %s "
                                             "alert" % (what, recs, TLS_ALERTS[code]))
                    if ssl_alert_name(err) != "alert " + TLS_ALERTS[code]:
                        raise AssertionError("%s: client saw %s" % (what, err))
                    if not b.eof:
                        raise AssertionError("%s: still open 2 s after the alert" % what)
                    n_refused += 1
                    if measure:
                        case.note(what, "fatal %s alert in the clear, closed %.1f ms after "
                                  "connect" % (TLS_ALERTS[code], (b.t_eof - b.t_connect) * 1e3))
            for ver in (tls13, tls12):
                what = "%s, no ALPN" % ver.name
                with TlsBio(port, self.tls_ctx(None, ver)) as b:
                    err = b.handshake()
                    if err is not None:
                        raise AssertionError("%s: handshake failed: %s" % (what, err))
                    if b.obj.selected_alpn_protocol() is not None:
                        raise AssertionError("%s: ALPN %r" % (what, b.obj.selected_alpn_protocol()))
                    t = time.monotonic()
                    plain, end = b.read_until(lambda _: False, 0.5)
                    if (bytes(plain), end) != (b"", "timeout"):
                        raise AssertionError("%s: after the handshake: plaintext %r, then %s; "
                                             "want nothing (HTTP/1.1 waits for a request)" % (
                                                 what, bytes(plain[:40]), end))
                    b.write(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                    plain, end = b.read_until(lambda p: HELLO in p, 3)
                    if (not bytes(plain).startswith(b"HTTP/1.1 200 ") or HELLO not in plain or
                            end not in (None, "close_notify")):
                        raise AssertionError("%s: HTTP/1.1 request: %r, %s" % (
                            what, bytes(plain[:40]), end))
                    n_refused += 1
                    if measure:
                        case.note(what, "%s handshake done, no HTTP/2, HTTP/1.1 answered in "
                                  "%.1f ms" % (b.obj.version(), (time.monotonic() - t) * 1e3))
            return n_refused

        def first(case):
            st0 = tls_stats(shard_stats(case.srv))
            n = run(case, True)
            st1 = tls_stats(shard_stats(case.srv))
            case.note("stats", "+%d TLS connections, +%d handshakes failed" % (
                st1[1] - st0[1], st1[2] - st0[2]))
            # the two no-ALPN connections are served, not failed
            if (st1[1] - st0[1], st1[2] - st0[2]) != (n, n - 2):
                raise AssertionError("statistics: %s -> %s after %d refusals" % (st0, st1, n))
        self.run_case("tls_refusals", first, repeat=lambda c: run(c, False), tls=True)

    def test_18_tls_2_handshake_flood(self):
        """300 connections to the TLS port that send half a ClientHello (or
        nothing) and hold: each is closed, without a byte sent, at
        tls-handshake-timeout (1 s); memory per pending handshake bounded."""
        to, n = 1.0, 300

        def attack(case):
            srv = case.srv
            inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = self.tls_ctx().wrap_bio(inc, out, server_hostname="localhost")
            with contextlib.suppress(ssl.SSLWantReadError):
                obj.do_handshake()
            hello = out.read()
            half = hello[:len(hello) // 2]
            st0 = tls_stats(shard_stats(srv))
            fd0, rss0 = fd_count(srv.pid), rss(srv.pid)
            peers = []      # [socket, t_connect, t_eof, bytes received, reset, t_connect0]
            poller = select.poll()

            def connect(k, data):
                for _ in range(k):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    s.settimeout(5)
                    t0 = time.monotonic()       # see Peer.t_connect0
                    s.connect((HOST, srv.tls_port))
                    t = time.monotonic()
                    if data:
                        s.sendall(data)
                    s.setblocking(False)
                    peers.append([s, t, None, 0, False, t0])
                    poller.register(s.fileno(), select.POLLIN)
                deadline = time.monotonic() + 0.3
                while fd_count(srv.pid) < fd0 + len(peers) and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.02)
                return rss(srv.pid)

            try:
                rss_silent = connect(n // 2, b"")           # nothing at all
                rss_half = connect(n - n // 2, half)        # half a ClientHello
                t_all = time.monotonic()
                held_fds = fd_count(srv.pid) - fd0
                case.note("pending", "%d handshakes held, connected in %.2f s: server fds +%d, "
                          "RSS +%.0f KiB = %.1f KiB per pending handshake (silent: %.1f KiB, "
                          "half a %d-byte ClientHello: %.1f KiB)" % (
                              n, t_all - peers[0][1], held_fds, (rss_half - rss0) / 1024,
                              (rss_half - rss0) / 1024 / n, (rss_silent - rss0) / 1024 / (n // 2),
                              len(hello), (rss_half - rss_silent) / 1024 / (n - n // 2)))
                if t_all - peers[0][1] < to * 0.8 and held_fds < n:
                    raise AssertionError("the server holds only %d of %d pending handshakes" % (
                        held_fds, n))
                by_fd = {p[0].fileno(): p for p in peers}
                live = n
                deadline = t_all + to + CLOSE_SLACK + 1
                while live and time.monotonic() < deadline:
                    for fd, _ in poller.poll(50):
                        p = by_fd[fd]
                        try:
                            data = p[0].recv(4096)
                        except BlockingIOError:
                            continue
                        except ConnectionResetError:
                            data, p[4] = b"", True
                        p[3] += len(data)
                        if not data:
                            p[2] = time.monotonic()
                            poller.unregister(fd)
                            live -= 1
                open_ = [p for p in peers if p[2] is None]
                lives = [p[2] - p[1] for p in peers if p[2] is not None] or [0.0]
                # For the lower bound the longest each life can have been:
                # the server's clock started after connect() was called.
                lives0 = [p[2] - p[5] for p in peers if p[2] is not None] or [0.0]
                sent = sum(p[3] for p in peers)
                resets = sum(1 for p in peers if p[4])
                case.note("closed", "%d of %d closed %.2f..%.2f s after their connect (timeout "
                          "%.1f s); %d bytes sent to them; %d by RST" % (
                              n - len(open_), n, min(lives), max(lives), to, sent, resets))
                if open_:
                    raise AssertionError("%d pending handshakes still open %.1f s after the "
                                         "timeout" % (len(open_), CLOSE_SLACK + 1))
                if sent:
                    raise AssertionError("the server sent %d bytes to pending handshakes" % sent)
                if min(lives0) < to - 0.05 or max(lives) > to + CLOSE_SLACK:
                    raise AssertionError("closed %.2f..%.2f s after connect (%.2f s at the "
                                         "earliest counted from before connect()), timeout "
                                         "%.1f s" % (min(lives), max(lives), min(lives0), to))
                deadline = time.monotonic() + 2
                while fd_count(srv.pid) > fd0 and time.monotonic() < deadline:
                    time.sleep(0.02)
                st1 = tls_stats(shard_stats(srv))
                case.note("after", "server fds %d -> %d; stats +%d TLS connections, +%d "
                          "handshakes failed" % (fd0, fd_count(srv.pid), st1[1] - st0[1],
                                                 st1[2] - st0[2]))
                if fd_count(srv.pid) > fd0:
                    raise AssertionError("server fds %d, %d before the flood" % (
                        fd_count(srv.pid), fd0))
                if (st1[1] - st0[1], st1[2] - st0[2]) != (n, n):
                    raise AssertionError("statistics %s -> %s after %d timeouts" % (st0, st1, n))
            finally:
                for p in peers:
                    p[0].close()
        self.run_case("tls_handshake_flood", attack, sets={"tls-handshake-timeout": int(to * 1000)},
                      tls=True)

    def test_18_tls_3_handshake_churn(self):
        """Twice 300 full handshakes (4 client threads), each connection
        closed as soon as its handshake is done: CPU for the server's
        handshakes, no leak (server fds back to the baseline after each
        round; the first round's RSS growth is a plateau -- measured flat
        over 3000 more -- so the second round must not grow by
        CHURN_RSS_MAX)."""
        n, nthreads = 300, 4

        def attack(case):
            r1 = churn(case)
            r2 = churn(case)
            grew = r2[1] - r2[0]
            case.note("leak_check", "RSS %+.0f KiB over the first %d handshakes (allocator and "
                      "wolfSSL caches filling), %+.0f KiB over the next %d" % (
                          (r1[1] - r1[0]) / 1024, n, grew / 1024, n))
            if grew >= CHURN_RSS_MAX and not harness.sanitized():
                raise AssertionError("RSS grew %+.1f MiB over a second round of %d handshakes "
                                     "(bound %d MiB): a leak" % (grew / MIB, n,
                                                                 CHURN_RSS_MAX // MIB))

        def churn(case):
            srv = case.srv
            ctx = self.tls_ctx()
            st0 = tls_stats(shard_stats(srv))
            fd0, rss0 = fd_count(srv.pid), rss(srv.pid)
            errors = []

            def worker(k):
                for _ in range(k, n, nthreads):
                    try:
                        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                        raw.settimeout(10)
                        raw.connect((HOST, srv.tls_port))
                        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                            if s.selected_alpn_protocol() != "h2":
                                errors.append("ALPN %r" % s.selected_alpn_protocol())
                    except Exception as e:  # noqa: BLE001 - reported below
                        errors.append(repr(e))

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            dt = time.monotonic() - t0
            if errors:
                raise AssertionError("%d of %d handshakes failed: %s" % (
                    len(errors), n, errors[:3]))
            deadline = time.monotonic() + 3
            while fd_count(srv.pid) > fd0 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)
            fd1, rss1 = fd_count(srv.pid), rss(srv.pid)
            st1 = tls_stats(shard_stats(srv))
            case.note("churn%d" % (len(case.fig) + 1), "%d handshakes in %.2f s (%.0f/s); server fds %d -> %d; RSS "
                      "%.1f -> %.1f MiB (%+.0f KiB); stats +%d TLS connections, +%d handshakes "
                      "failed" % (n, dt, n / dt, fd0, fd1, rss0 / MIB, rss1 / MIB,
                                  (rss1 - rss0) / 1024, st1[1] - st0[1], st1[2] - st0[2]))
            if fd1 > fd0:
                raise AssertionError("server fds %d after the churn, %d before" % (fd1, fd0))
            if st1[1] - st0[1] != n:
                raise AssertionError("statistics: +%d TLS connections, want %d" % (
                    st1[1] - st0[1], n))
            return rss0, rss1
        self.run_case("tls_handshake_churn", attack, tls=True)

    def test_18_tls_4_garbage_after_handshake(self):
        """After a complete handshake and the HTTP/2 prefaces: bytes that are
        no TLS record, a record that fails authentication, a record over the
        size limit, a handshake record in the clear.  Each connection is
        closed (with the fatal alert wolfSSL sends, or none: asserted per
        case); a TLS connection opened before keeps being served."""
        tls12, tls13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
        rnd = random.Random(18).randbytes(1 << 16)    # fixed: the same bytes every run
        assert rnd[0] not in range(20, 25), "the 'random bytes' must not start a record"
        no_alert = "EOF without close_notify or alert"

        def bitflip(b):
            b.obj.write(ping(7))
            rec = bytearray(b.out.read())
            assert len(tls_records(rec)) == 1
            rec[-1] ^= 1
            return bytes(rec)

        cases = [  # (version, what, bytes after the handshake, the end the client sees)
            (tls13, "4 KiB of random bytes", lambda b: rnd[:4096], no_alert),
            (tls13, "an HTTP/1.1 request", lambda b: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", no_alert),
            (tls13, "application_data record, random body", lambda b: tls_record(23, rnd[:200]),
             "alert bad_record_mac"),
            (tls13, "real record, one tag bit flipped", bitflip, "alert bad_record_mac"),
            (tls13, "record of 2^14+256+1 bytes", lambda b: tls_record(23, rnd[:16641]),
             "alert record_overflow"),
            (tls13, "record header claiming 65535 bytes, no body",
             lambda b: struct.pack(">BHH", 23, 0x0303, 65535), "alert record_overflow"),
            (tls13, "handshake record in the clear", lambda b: tls_record(22, bytes(10)),
             "alert unexpected_message"),
            (tls12, "4 KiB of random bytes", lambda b: rnd[:4096], no_alert),
            (tls12, "application_data record, random body", lambda b: tls_record(23, rnd[:200]),
             "alert bad_record_mac"),
            (tls12, "real record, one tag bit flipped", bitflip, "alert bad_record_mac"),
            (tls12, "record of 2^14+2048+1 bytes", lambda b: tls_record(23, rnd[:18433]),
             "alert record_overflow"),
        ]

        def run(case, measure):
            port = case.srv.tls_port
            with TlsPeer(port, self.tls_ctx()) as good:
                good.wait(lambda: good.server_settings, 2)
                sid = 1
                for ver, what, make, want in cases:
                    what = "%s: %s" % (ver.name, what)
                    with TlsBio(port, self.tls_ctx(version=ver)) as b:
                        err = b.handshake()
                        if err is not None:
                            raise AssertionError("%s: handshake failed: %s" % (what, err))
                        b.write(PREFACE + settings_frame())
                        _, end = b.read_until(lambda p: len(p) >= 9 and p[3] == SETTINGS, 3)
                        if end is not None:
                            raise AssertionError("%s: no server SETTINGS: %s" % (what, end))
                        data = make(b)
                        t = time.monotonic()
                        b.sock.sendall(data)
                        plain, end = b.read_until(lambda _: False, 3)
                        deadline = time.monotonic() + 1
                        while not b.eof and b._recv(deadline):
                            pass
                        gone = wait_server_close(case.srv, b, deadline=time.monotonic() + 1)
                        frames = []
                        off = 0
                        while len(plain) - off >= 9:
                            frames.append(plain[off + 3])
                            off += 9 + int.from_bytes(plain[off:off + 3], "big")
                        if end != want or not b.eof or gone is None or GOAWAY in frames:
                            raise AssertionError(
                                "%s: client saw %s (want %s), TCP EOF %s, server closed its "
                                "socket %s, frames after it %s" % (
                                    what, end, want, b.eof, gone is not None, frames))
                        if measure:
                            case.note(what, "%s, closed %.1f ms (%s)" % (
                                want, (b.t_eof - t) * 1e3, "RST" if b.reset else "FIN"))
                    sid += 2
                    good.send(headers_frame(sid, GET_ROOT_TLS))
                    good.wait(lambda: sid in good.ended, 2)
                    if good.headers.get(sid, {}).get(":status") != "200" or good.eof:
                        raise AssertionError("after %s: the other TLS connection: %s" % (
                            what, good.describe()))
        self.run_case("tls_garbage", lambda c: run(c, True), repeat=lambda c: run(c, False),
                      tls=True)

    @unittest.skipUnless(shutil.which("openssl"), "no openssl CLI")
    def test_18_tls_5_renegotiation_keyupdate(self):
        """Python's ssl module can neither renegotiate nor send a KeyUpdate;
        `openssl s_client` can ("R": renegotiate, TLS 1.2; "K": KeyUpdate
        requesting one back, TLS 1.3).  Renegotiation is refused with a fatal
        unexpected_message alert and the connection closed (no renegotiation:
        docs/tls.md).  A KeyUpdate storm (one request every 2 ms) is
        answered and the connection stays up until the client's
        close_notify.  (The client reads everything, so a storm that never
        reads the server's KeyUpdates is not covered.)"""
        nkeys = 300

        def s_client(case, version):
            cmd = ["openssl", "s_client", "-connect", "%s:%d" % (HOST, case.srv.tls_port),
                   version, "-alpn", "h2", "-CAfile", self.tls_pki()["ca"],
                   "-servername", "localhost", "-msg"]
            if shutil.which("stdbuf"):
                cmd = ["stdbuf", "-oL"] + cmd       # its stdio output line by line
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True)
            lines = []
            cond = threading.Condition()

            def reader():
                for line in p.stdout:
                    with cond:
                        lines.append(line.decode("latin-1").rstrip())
                        cond.notify_all()
                with cond:
                    lines.append(None)
                    cond.notify_all()
            p.reader = threading.Thread(target=reader, daemon=True)
            p.reader.start()

            def wait_line(pred, timeout):
                deadline = time.monotonic() + timeout
                with cond:
                    while True:
                        for ln in lines:
                            if ln is not None and pred(ln):
                                return ln
                        if (lines and lines[-1] is None) or time.monotonic() > deadline:
                            return None
                        cond.wait(0.05)
            return p, lines, wait_line

        def finish(p):
            with contextlib.suppress(OSError, ValueError):
                p.stdin.close()
            try:
                return p.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, 9)
                p.wait(5)
                return None
            finally:
                p.reader.join(5)
                p.stdout.close()

        def attack(case):
            # Renegotiation (TLS 1.2).
            p, lines, wait_line = s_client(case, "-tls1_2")
            try:
                if not wait_line(lambda ln: "Verify return code" in ln, 5):
                    raise AssertionError("s_client -tls1_2: no handshake: %s" % lines[-20:])
                t = time.monotonic()
                p.stdin.write(b"R\n")
                p.stdin.flush()
                got = wait_line(lambda ln: ln.startswith("<<<") and "Alert" in ln, 3)
                rt = time.monotonic() - t
                rc = p.wait(3)
                ct = time.monotonic() - t
            finally:
                finish(p)
            renego = [ln for ln in lines if ln and ln.startswith(">>>") and "ClientHello" in ln]
            if len(renego) != 2 or got is None or "fatal unexpected_message" not in got or rc == 0:
                raise AssertionError("renegotiation: ClientHellos sent %d, server's answer %r, "
                                     "s_client exit %s" % (len(renego), got, rc))
            case.note("renegotiation", "TLS 1.2 renegotiation ClientHello -> %s, %.1f ms; "
                      "connection closed (s_client exit %d) %.1f ms" % (
                          got.split("], ")[-1], rt * 1e3, rc, ct * 1e3))
            # KeyUpdate storm (TLS 1.3).
            p, lines, wait_line = s_client(case, "-tls1_3")
            try:
                if not wait_line(lambda ln: "Verify return code" in ln, 5):
                    raise AssertionError("s_client -tls1_3: no handshake: %s" % lines[-20:])
                t = time.monotonic()
                for _ in range(nkeys):
                    p.stdin.write(b"K\n")
                    p.stdin.flush()
                    time.sleep(0.002)
                dt = time.monotonic() - t
                time.sleep(0.2)
                alive = p.poll() is None
                p.stdin.write(b"Q\n")
                p.stdin.flush()
                rc = finish(p)
            finally:
                finish(p)
            ours = sum(1 for ln in lines if ln and ln.startswith(">>>") and "KeyUpdate" in ln)
            theirs = sum(1 for ln in lines if ln and ln.startswith("<<<") and "KeyUpdate" in ln)
            alerts = [ln for ln in lines if ln and ln.startswith("<<<") and "Alert" in ln]
            case.note("keyupdate_storm", "%d KeyUpdate(update_requested) sent in %.2f s, %d "
                      "KeyUpdates back; alerts %s; connection up until Q: %s, s_client exit %s" % (
                          ours, dt, theirs, alerts or "none", alive, rc))
            if not alive or rc != 0 or alerts or ours < nkeys // 2 or theirs < 1:
                raise AssertionError("KeyUpdate storm: %d sent, %d back, alerts %s, alive %s, "
                                     "exit %s" % (ours, theirs, alerts, alive, rc))
        self.run_case("tls_renegotiation_keyupdate", attack, tls=True)

    def test_18_tls_6_rapid_reset(self):
        """HTTP/2 attacks over TLS get the same answers as over h2c: Rapid
        Reset trips GOAWAY ENHANCE_YOUR_CALM after the same budget, then
        close_notify (a clean TLS end)."""
        def flood(case, measure):
            with TlsPeer(case.srv.tls_port, self.tls_ctx()) as p:
                p.wait(lambda: p.server_settings, 2)
                n, rt, ct = self.trip(
                    p, lambda i: headers_frame(2 * i + 1, GET_ROOT_TLS) + rst_stream(2 * i + 1),
                    1000, 33, "Rapid Reset over TLS", step=5)
                if p.goaway[2] != b"too many stream resets":
                    raise AssertionError("Rapid Reset over TLS: GOAWAY debug %r" % p.goaway[2])
                if p.recv_error is not None:
                    raise AssertionError("Rapid Reset over TLS: no close_notify after the "
                                         "GOAWAY: %s" % p.recv_error)
                if measure:
                    case.note("reaction", "%s: GOAWAY ENHANCE_YOUR_CALM %r after %d HEADERS+RST "
                              "pairs, %.1f ms after the last, close_notify + closed %.1f ms" % (
                                  p.version, p.goaway[2], n, rt * 1e3, ct * 1e3))
        self.run_case("tls_rapid_reset", lambda c: flood(c, True),
                      repeat=lambda c: flood(c, False), limits=["rapid-reset"], tls=True)

if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--benign":
        benign_main(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
        sys.exit(0)
    harness.main()
