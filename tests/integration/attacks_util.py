"""Shared pieces of the attack tests (test_attacks.py, test_attacks_tls.py):
constants and limits of the checks, HPACK and frames by hand, /proc and
socket probes, the raw hostile peer (Peer) and the TLS peers."""
import collections
import contextlib
import os
import re
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (CONTINUATION, DATA, ERR, GOAWAY, HEADERS, HOST, PING, PREFACE,  # noqa: E402
                     PRIORITY, RST_STREAM, SETTINGS, SocketClient, WINDOW_UPDATE,
                     frame)

import hpack  # noqa: E402


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
