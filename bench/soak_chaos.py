#!/usr/bin/python3
"""soak_chaos.py - hostile-but-mostly-legal HTTP/2 clients for bench/soak.sh.

    /usr/bin/python3 bench/soak_chaos.py --port P [--workers N] [--seed S]
                     [--out FILE] [--duration S] [--no-abuse] [--no-hold]
                     [--only SCENARIO[,SCENARIO...]] [--verbose]

Runs until SIGTERM/SIGINT (or --duration seconds), then writes one JSON object
(merged counters of every worker) to --out (default: stdout).

Workers (separate processes, one connection at a time each, sequential
scenarios picked at random):

  chaos workers (--workers N, default 4): stay below the server's Rapid Reset
    (1000 burst, 33/s) and glitch (10000, 330/s) budgets: at most a few dozen
    resets per connection.  Scenarios:
      normal            GET / and POST /echo, full responses checked
      reset_early       RST_STREAM right after (or in the same write as) the
                        request HEADERS, before the response: /stall, /, /1m
      reset_upload      POST /echo, part of the body uploaded, RST_STREAM
      reset_download    GET /1m, part of the body read, RST_STREAM
      slow_window       INITIAL_WINDOW_SIZE 0..16383, WINDOW_UPDATEs of odd
                        sizes at random intervals, then open up (body checked),
                        reset, or drop
      window_settings   SETTINGS INITIAL_WINDOW_SIZE changed mid-download
                        (down to 0: negative windows, then up): body checked
      never_window      INITIAL_WINDOW_SIZE 0, never opened, dropped later
      drop              TCP connection dropped at a random point: mid-preface,
                        mid-frame (HEADERS, DATA, WINDOW_UPDATE), mid-upload,
                        mid-download with the socket unread; half of the time
                        with SO_LINGER 0 (RST)
    After each reset the same connection must still answer GET / (liveness).
  abuse worker (unless --no-abuse): after 1-2 s, then every 5-15 s, one connection that exceeds a
    budget on purpose (rapid reset, PRIORITY flood, empty DATA flood); it must
    get GOAWAY ENHANCE_YOUR_CALM; right after, a fresh connection must get
    GET / answered within 2 s.
  hold worker (unless --no-hold): a zero-window download held open until the
    server gives up (security.md: 30 s without send progress); it must close
    the connection (GOAWAY, then EOF) within 45 s.

Anything else is an anomaly (recorded with scenario, detail and time): a
GOAWAY or RST_STREAM the scenario did not provoke, a 5xx or wrong body, a
connection closed under a well-behaved client, no answer within 10 s.
"""
import argparse
import hashlib
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import struct
import sys
import time
import traceback

import hpack

HOST = "127.0.0.1"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20
S_IWS, S_MAXFRAME, S_ENABLE_PUSH = 0x4, 0x5, 0x2
NO_ERROR, PROTOCOL_ERROR, CANCEL, REFUSED, CALM = 0, 1, 8, 7, 11
ERR = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
       4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
       8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM",
       12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}
MAX_WIN = (1 << 31) - 1
ONE_MIB = 1 << 20
_PATTERN = bytes(((i * 31 + 7) & 0xFF) for i in range(256))
ONE_MIB_BODY = _PATTERN * (ONE_MIB // 256)
HELLO = b"Hello, World!"
ANSWER_TIMEOUT = 10.0
ODD_SIZES = (1, 2, 3, 7, 13, 17, 99, 255, 1000, 1023, 4097, 9999, 16383, 16385, 65537, 100003)


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


def settings_frame(entries):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in entries))


def wu_frame(sid, inc):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", inc))


def rst_frame(sid, code=CANCEL):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


class Anomaly(Exception):
    pass


class Stream:
    __slots__ = ("sid", "status", "headers", "trailers", "nbytes", "body", "keep", "ended",
                 "reset", "recv_window", "send_window", "we_reset", "hb", "t0", "path")

    def __init__(self, sid, keep, recv_window, send_window):
        self.sid = sid
        self.status = None
        self.headers = None
        self.trailers = None
        self.nbytes = 0
        self.body = bytearray() if keep else None
        self.keep = keep
        self.ended = False
        self.reset = None          # code of a RST_STREAM from the server
        self.recv_window = recv_window
        self.send_window = send_window
        self.we_reset = False
        self.t0 = time.monotonic()

    @property
    def done(self):
        return self.ended or self.reset is not None


class Conn:
    """A raw HTTP/2 client connection with hand-driven flow control."""

    def __init__(self, port, iws=None, auto_window=True, conn_boost=True, linger0=False,
                 send_preface=True, keep_bodies=True):
        self.sock = socket.create_connection((HOST, port), timeout=ANSWER_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if linger0:
            self.set_linger0()
        self.buf = bytearray()
        self.eof = False
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.streams = {}
        self.next_sid = 1
        self.goaway = None           # (last_sid, code, debug)
        self.peer_iws = 65535
        self.peer_max_frame = 16384
        self.conn_send_window = 65535
        self.local_iws = 65535 if iws is None else iws
        self.conn_recv_window = 65535
        self.auto_window = auto_window
        self.keep_bodies = keep_bodies
        self.conn_unacked = 0
        self.hb = None               # (sid, end, bytearray) while a header block is open
        self.iws_changed = False     # our SETTINGS changed mid-flight: overruns are legal
        self.out = bytearray()
        if send_preface:
            entries = [(S_ENABLE_PUSH, 0)]
            if iws is not None:
                entries.append((S_IWS, iws))
            self.out += PREFACE + settings_frame(entries)
            if conn_boost:
                self.out += wu_frame(0, 16 << 20)
                self.conn_recv_window += 16 << 20
            self.flush()

    # -- output ----------------------------------------------------------
    def set_linger0(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def queue(self, data):
        self.out += data

    def flush(self):
        if self.out:
            data, self.out = bytes(self.out), bytearray()
            try:
                self.sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError) as e:
                self.eof = True
                raise Closed("send: %s" % e)
            except socket.timeout:
                raise Anomaly("send blocked for %.0f s" % ANSWER_TIMEOUT)

    def send(self, data):
        self.queue(data)
        self.flush()

    def request(self, method, path, end_stream=True, extra=(), flush=True, keep=None):
        sid = self.next_sid
        self.next_sid += 2
        hdrs = [(":method", method), (":scheme", "http"), (":authority", "127.0.0.1"),
                (":path", path)] + list(extra)
        block = self.enc.encode(hdrs)
        keep = self.keep_bodies if keep is None else keep
        self.streams[sid] = Stream(sid, keep, self.local_iws, self.peer_iws)
        self.streams[sid].path = method + " " + path
        self.queue(frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), sid, block))
        if flush:
            self.flush()
        return sid

    def rst(self, sid, code=CANCEL, flush=True):
        st = self.streams.get(sid)
        if st is not None:
            st.we_reset = True
        self.queue(rst_frame(sid, code))
        if flush:
            self.flush()

    def window_update(self, sid, inc, flush=True):
        """Grant inc more bytes (sid 0: the connection), never past 2^31-1."""
        if sid == 0:
            inc = min(inc, MAX_WIN - self.conn_recv_window)
            if inc <= 0:
                return 0
            self.conn_recv_window += inc
        else:
            st = self.streams.get(sid)
            if st is not None:
                inc = min(inc, MAX_WIN - st.recv_window)
                if inc <= 0:
                    return 0
                st.recv_window += inc
        self.queue(wu_frame(sid, inc))
        if flush:
            self.flush()
        return inc

    def change_iws(self, iws):
        delta = iws - self.local_iws
        self.local_iws = iws
        self.iws_changed = True
        for st in self.streams.values():
            st.recv_window += delta
        self.send(settings_frame([(S_IWS, iws)]))

    def send_body(self, sid, data, end_stream, timeout=ANSWER_TIMEOUT):
        """Upload data within the server's windows (pumping for WINDOW_UPDATEs)."""
        st = self.streams[sid]
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while True:
            n = min(len(view), self.conn_send_window, st.send_window, self.peer_max_frame)
            if n > 0 or (len(view) == 0):
                last = len(view) == n
                self.queue(frame(DATA, END_STREAM if (last and end_stream) else 0, sid,
                                 bytes(view[:n])))
                self.conn_send_window -= n
                st.send_window -= n
                view = view[n:]
                self.flush()
                if last:
                    return
            else:
                if time.monotonic() > deadline:
                    raise Anomaly("upload on stream %d: no window for %.0f s" % (sid, timeout))
                self.pump(0.05)
            if st.done:
                return

    # -- input -----------------------------------------------------------
    def pump(self, timeout):
        """Read what arrives within timeout and process whole frames."""
        if self.eof:
            raise Closed("eof")
        self.sock.settimeout(max(timeout, 0.0001))
        try:
            chunk = self.sock.recv(262144)
        except socket.timeout:
            return
        except ConnectionResetError:
            chunk = b""
        finally:
            self.sock.settimeout(ANSWER_TIMEOUT)
        if not chunk:
            self.eof = True
            raise Closed("eof")
        self.buf += chunk
        off = 0
        n = len(self.buf)
        while n - off >= 9:
            length = (self.buf[off] << 16) | (self.buf[off + 1] << 8) | self.buf[off + 2]
            if n - off < 9 + length:
                break
            ftype, flags = self.buf[off + 3], self.buf[off + 4]
            sid = struct.unpack_from(">I", self.buf, off + 5)[0] & 0x7FFFFFFF
            payload = bytes(self.buf[off + 9:off + 9 + length])
            off += 9 + length
            self.on_frame(ftype, flags, sid, payload)
        del self.buf[:off]
        if self.auto_window and self.conn_unacked >= 65536:
            self.window_update(0, self.conn_unacked, flush=False)
            self.conn_unacked = 0
        self.flush()

    def on_frame(self, ftype, flags, sid, p):
        if ftype == DATA:
            st = self.streams.get(sid)
            data = p
            if flags & PADDED:
                data = p[1:len(p) - p[0]]
            self.conn_recv_window -= len(p)
            if self.conn_recv_window < 0:
                raise Anomaly("server overran the connection window by %d" % -self.conn_recv_window)
            self.conn_unacked += len(p)
            if st is None:
                return
            st.recv_window -= len(p)
            if st.recv_window < 0 and not st.we_reset and not self.iws_changed:
                raise Anomaly("server overran stream %d's window by %d" % (sid, -st.recv_window))
            st.nbytes += len(data)
            if st.keep:
                st.body += data
            if flags & END_STREAM:
                st.ended = True
            elif self.auto_window and not st.we_reset and len(p):
                self.window_update(sid, len(p), flush=False)
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                frag = p
                if flags & PADDED:
                    frag = frag[1:len(frag) - frag[0]]
                if flags & PRIO:
                    frag = frag[5:]
                self.hb = (sid, flags & END_STREAM, bytearray(frag))
            else:
                self.hb[2].extend(p)
            if flags & END_HEADERS:
                hsid, end, block = self.hb
                self.hb = None
                fields = self.dec.decode(bytes(block), raw=True)
                st = self.streams.get(hsid)
                if st is None:
                    return
                hd = {k.decode(): v.decode("latin-1") for k, v in fields}
                if ":status" in hd:
                    code = int(hd[":status"])
                    if code >= 200:
                        st.status = code
                        st.headers = hd
                else:
                    st.trailers = hd
                if end:
                    st.ended = True
        elif ftype == RST_STREAM:
            st = self.streams.get(sid)
            if st is not None:
                st.reset = struct.unpack(">I", p)[0]
        elif ftype == SETTINGS:
            if not flags & ACK:
                for i in range(0, len(p), 6):
                    k, v = struct.unpack_from(">HI", p, i)
                    if k == S_IWS:
                        delta = v - self.peer_iws
                        self.peer_iws = v
                        for st in self.streams.values():
                            st.send_window += delta
                    elif k == S_MAXFRAME:
                        self.peer_max_frame = v
                self.queue(frame(SETTINGS, ACK, 0))
        elif ftype == PING:
            if not flags & ACK:
                self.queue(frame(PING, ACK, 0, p))
        elif ftype == GOAWAY:
            last, code = struct.unpack_from(">II", p)
            self.goaway = (last & 0x7FFFFFFF, code, p[8:200])
        elif ftype == WINDOW_UPDATE:
            inc = struct.unpack(">I", p)[0] & 0x7FFFFFFF
            if sid == 0:
                self.conn_send_window += inc
            elif sid in self.streams:
                self.streams[sid].send_window += inc

    def wait(self, pred, timeout=ANSWER_TIMEOUT, what="answer"):
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise Anomaly("no %s within %.1f s" % (what, timeout))
            self.pump(min(left, 0.2))

    def wait_streams(self, sids, timeout=ANSWER_TIMEOUT):
        try:
            self.wait(lambda: all(self.streams[s].done for s in sids), timeout,
                      "end of stream(s) %s" % ",".join(map(str, sids[:8])))
        except Anomaly as e:
            raise Anomaly("%s; %s" % (e, self.describe(sids)))

    def describe(self, sids):
        """The state of the unfinished streams (for anomaly reports)."""
        out = ["conn: local_iws %d, recv window %d, send window %d, goaway %s" % (
            self.local_iws, self.conn_recv_window, self.conn_send_window, self.goaway)]
        for s in sids:
            st = self.streams[s]
            if not st.done:
                out.append("stream %d %s: status %s, %d bytes, recv window %d, send window %d, "
                           "trailers %s, age %.1f s" % (
                               s, st.path, st.status, st.nbytes, st.recv_window, st.send_window,
                               st.trailers, time.monotonic() - st.t0))
        return "; ".join(out)

    def drain_for(self, seconds):
        """Keep reading (and acking per auto_window) for a while."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.pump(min(left, 0.2))

    # -- endings ---------------------------------------------------------
    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def goodbye(self):
        """A polite end: GOAWAY NO_ERROR, then close."""
        try:
            self.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, NO_ERROR)))
        except (Closed, Anomaly, OSError):
            pass
        self.close()

    def drop(self, rng, linger0=None):
        """An abrupt close: FIN, or RST (SO_LINGER 0)."""
        if linger0 is None:
            linger0 = rng.random() < 0.5
        if linger0:
            try:
                self.set_linger0()
            except OSError:
                pass
        self.close()
        return "rst" if linger0 else "fin"


# ---------------------------------------------------------------------------

class Worker:
    def __init__(self, port, wid, seed, stop, verbose=False):
        self.port = port
        self.wid = wid
        self.rng = random.Random(seed)
        self.stop = stop
        self.verbose = verbose
        self.c = {}                  # counters
        self.anomalies = []
        self.scenario = None

    def count(self, key, n=1):
        self.c[key] = self.c.get(key, 0) + n

    def anomaly(self, detail):
        self.count("anomalies")
        self.count("anomaly." + self.scenario)
        if len(self.anomalies) < 40:
            self.anomalies.append({"t": time.time(), "worker": self.wid,
                                   "scenario": self.scenario, "detail": str(detail)[:600]})
        if self.verbose:
            print("[chaos %d] ANOMALY %s: %s" % (self.wid, self.scenario, detail),
                  file=sys.stderr, flush=True)

    # -- checks -------------------------------------------------------------
    def check_conn(self, conn):
        """A well-behaved connection must not have been told off."""
        if conn.goaway is not None:
            raise Anomaly("unexpected GOAWAY %s (last %d) %r" % (
                ERR.get(conn.goaway[1], conn.goaway[1]), conn.goaway[0], conn.goaway[2]))

    def check_stream(self, conn, sid, body=None, expect_trailer=None):
        st = conn.streams[sid]
        if st.reset is not None:
            raise Anomaly("stream %d reset by the server: %s" % (sid, ERR.get(st.reset, st.reset)))
        if st.status != 200:
            raise Anomaly("stream %d: status %s" % (sid, st.status))
        if body is not None:
            got = bytes(st.body) if st.keep else None
            if got is not None and got != body:
                raise Anomaly("stream %d: body of %d bytes differs from the expected %d (%s)" % (
                    sid, len(got), len(body), hashlib.sha256(got).hexdigest()[:12]))
        if expect_trailer is not None:
            t = (st.trailers or {}).get("x-echo-bytes")
            if t != str(expect_trailer):
                raise Anomaly("stream %d: trailer x-echo-bytes=%r, expected %d" % (
                    sid, t, expect_trailer))
        self.count("requests_ok")

    def liveness(self, conn, what="after reset"):
        """GET / on the same connection must still be answered."""
        sid = conn.request("GET", "/")
        if conn.local_iws < len(HELLO):
            conn.window_update(sid, 65535)   # a zero-window connection: open this one
        conn.wait_streams([sid])
        self.check_stream(conn, sid, HELLO)
        self.check_conn(conn)
        self.count("liveness_ok")

    # -- scenarios ------------------------------------------------------------
    def sc_normal(self):
        conn = Conn(self.port)
        try:
            sids = []
            expect = {}
            for _ in range(self.rng.randint(1, 20)):
                if self.rng.random() < 0.3:
                    body = os.urandom(self.rng.choice((0, 1, 100, 5000, 20000, 70000)))
                    sid = conn.request("POST", "/echo", end_stream=not body)
                    if body:
                        conn.send_body(sid, body, True)
                    expect[sid] = (body, len(body))
                else:
                    sid = conn.request("GET", "/")
                    expect[sid] = (HELLO, None)
                sids.append(sid)
            conn.wait_streams(sids)
            for sid in sids:
                self.check_stream(conn, sid, *expect[sid])
            self.check_conn(conn)
        finally:
            if self.rng.random() < 0.5:
                conn.goodbye()
            else:
                conn.drop(self.rng)

    def sc_reset_early(self):
        conn = Conn(self.port)
        try:
            for _ in range(self.rng.randint(1, 30)):
                path = self.rng.choice(("/stall?ms=%d" % self.rng.randint(5, 200), "/", "/1m",
                                        "/echo"))
                method = "POST" if path == "/echo" else "GET"
                same_write = self.rng.random() < 0.5
                sid = conn.request(method, path, end_stream=(method == "GET"), flush=not same_write)
                if not same_write and self.rng.random() < 0.5:
                    time.sleep(self.rng.random() * 0.01)
                conn.rst(sid)
                self.count("resets_sent")
                if self.rng.random() < 0.3:
                    conn.pump(0.001)
            self.liveness(conn)
        finally:
            conn.drop(self.rng) if self.rng.random() < 0.5 else conn.goodbye()

    def sc_reset_upload(self):
        conn = Conn(self.port)
        try:
            for _ in range(self.rng.randint(1, 10)):
                sid = conn.request("POST", "/echo", end_stream=False)
                body = os.urandom(self.rng.choice((1, 10, 1000, 16384, 40000, 100000)))
                cut = self.rng.randint(0, len(body))
                conn.send_body(sid, body[:cut], False)
                if self.rng.random() < 0.5:
                    conn.pump(self.rng.random() * 0.02)
                conn.rst(sid)
                self.count("resets_sent")
            self.liveness(conn)
        finally:
            conn.drop(self.rng) if self.rng.random() < 0.5 else conn.goodbye()

    def sc_reset_download(self):
        small = self.rng.random() < 0.4
        conn = Conn(self.port, iws=self.rng.choice((1000, 16384, 65535)) if small else None)
        try:
            for _ in range(self.rng.randint(1, 5)):
                sid = conn.request("GET", "/1m", keep=False)
                want = self.rng.randint(0, ONE_MIB - 1)
                st = conn.streams[sid]
                conn.wait(lambda: st.nbytes >= want or st.done, what="%d bytes of /1m" % want)
                if st.done:
                    self.check_stream(conn, sid)
                    continue
                conn.rst(sid)
                self.count("resets_sent")
            self.liveness(conn)
        finally:
            conn.drop(self.rng) if self.rng.random() < 0.5 else conn.goodbye()

    def dribble(self, conn, sids, seconds):
        """Open windows a few odd-sized bytes at a time, at random intervals."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for sid in sids:
                if not conn.streams[sid].done and self.rng.random() < 0.7:
                    conn.window_update(sid, self.rng.choice(ODD_SIZES), flush=False)
                    self.count("window_updates")
            if self.rng.random() < 0.5:
                conn.window_update(0, self.rng.choice(ODD_SIZES), flush=False)
                self.count("window_updates")
            conn.flush()
            conn.pump(self.rng.random() * 0.05)
            if all(conn.streams[s].done for s in sids):
                break

    def sc_slow_window(self):
        iws = self.rng.choice((0, 1, 7, 100, 1000, 16383))
        boost = self.rng.random() < 0.5
        conn = Conn(self.port, iws=iws, auto_window=False, conn_boost=boost)
        try:
            sids, expect = [], {}
            for _ in range(self.rng.randint(1, 4)):
                kind = self.rng.choice(("/", "/1m", "/echo"))
                if kind == "/echo":
                    body = os.urandom(self.rng.choice((10, 3000, 30000)))
                    sid = conn.request("POST", "/echo", end_stream=False)
                    conn.send_body(sid, body, True)
                    expect[sid] = (body, len(body))
                else:
                    sid = conn.request("GET", kind)
                    expect[sid] = (ONE_MIB_BODY if kind == "/1m" else HELLO, None)
                sids.append(sid)
            self.dribble(conn, sids, self.rng.random() * 1.5)
            end = self.rng.random()
            if end < 0.5:
                # Open up: the bodies must arrive intact.
                conn.auto_window = True
                conn.window_update(0, 32 << 20, flush=False)
                for sid in sids:
                    if not conn.streams[sid].done:
                        conn.window_update(sid, 4 << 20, flush=False)
                conn.flush()
                conn.wait_streams(sids)
                for sid in sids:
                    self.check_stream(conn, sid, *expect[sid])
                self.check_conn(conn)
                conn.goodbye()
            elif end < 0.75:
                for sid in sids:
                    if not conn.streams[sid].done:
                        conn.rst(sid, flush=False)
                        self.count("resets_sent")
                conn.flush()
                conn.auto_window = True
                conn.window_update(0, 8 << 20)
                self.liveness(conn)
                conn.goodbye()
            else:
                self.count("drop." + conn.drop(self.rng))
        except BaseException:
            conn.close()
            raise

    def sc_window_settings(self):
        conn = Conn(self.port, iws=self.rng.choice((1000, 16384, 65535)))
        try:
            sids = [conn.request("GET", "/1m") for _ in range(self.rng.randint(1, 3))]
            for _ in range(self.rng.randint(1, 4)):
                conn.pump(self.rng.random() * 0.02)
                conn.change_iws(self.rng.choice((0, 1, 5000, 65535, 300000)))
                self.count("settings_changes")
                if conn.local_iws == 0 or self.rng.random() < 0.3:
                    conn.pump(0.01)
            conn.change_iws(1 << 20)
            # Streams whose window went negative need updates to recover.
            for sid in sids:
                st = conn.streams[sid]
                if not st.done and st.recv_window < (1 << 20):
                    conn.window_update(sid, (1 << 20) - st.recv_window, flush=False)
            conn.flush()
            conn.wait_streams(sids)
            for sid in sids:
                self.check_stream(conn, sid, ONE_MIB_BODY)
            self.check_conn(conn)
        finally:
            conn.drop(self.rng) if self.rng.random() < 0.5 else conn.goodbye()

    def sc_never_window(self):
        conn = Conn(self.port, iws=0, auto_window=False, conn_boost=self.rng.random() < 0.5)
        try:
            for _ in range(self.rng.randint(1, 8)):
                conn.request("GET", self.rng.choice(("/", "/1m")))
            deadline = time.monotonic() + self.rng.random() * 2.0
            while time.monotonic() < deadline:
                conn.pump(0.1)
            self.check_conn(conn)
        finally:
            self.count("drop." + conn.drop(self.rng))

    def sc_drop(self):
        point = self.rng.choice(("preface_partial", "after_preface", "headers_partial",
                                 "data_partial", "wu_partial", "upload", "download_unread",
                                 "download_reading", "stall_pending", "settings_partial"))
        self.count("drop_point." + point)
        linger0 = self.rng.random() < 0.5
        if point == "preface_partial":
            conn = Conn(self.port, send_preface=False)
            blob = PREFACE + settings_frame([(S_ENABLE_PUSH, 0)])
            conn.send(blob[:self.rng.randint(1, len(blob) - 1)])
            self.count("drop." + conn.drop(self.rng, linger0))
            return
        conn = Conn(self.port, iws=self.rng.choice((None, 0, 100)))
        try:
            if point == "after_preface":
                if self.rng.random() < 0.5:
                    conn.pump(0.01)
            elif point in ("headers_partial", "settings_partial", "wu_partial"):
                if point == "headers_partial":
                    f = frame(HEADERS, END_HEADERS | END_STREAM, conn.next_sid,
                              conn.enc.encode([(":method", "GET"), (":scheme", "http"),
                                               (":authority", "x"), (":path", "/1m")]))
                elif point == "settings_partial":
                    f = settings_frame([(S_IWS, 12345), (S_MAXFRAME, 20000)])
                else:
                    conn.request("GET", "/1m")
                    f = wu_frame(1, 4097)
                conn.send(f[:self.rng.randint(1, len(f) - 1)])
            elif point in ("data_partial", "upload"):
                sid = conn.request("POST", "/echo", end_stream=False)
                body = os.urandom(self.rng.randint(1, 60000))
                if point == "upload":
                    conn.send_body(sid, body[:self.rng.randint(0, len(body))], False)
                else:
                    f = frame(DATA, 0, sid, body[:16384])
                    conn.send(f[:self.rng.randint(1, len(f) - 1)])
            elif point in ("download_unread", "download_reading"):
                for _ in range(self.rng.randint(1, 6)):
                    conn.request("GET", "/1m", keep=False)
                if point == "download_reading":
                    conn.drain_for(self.rng.random() * 0.05)
                else:
                    time.sleep(self.rng.random() * 0.05)
            elif point == "stall_pending":
                for _ in range(self.rng.randint(1, 10)):
                    conn.request("GET", "/stall?ms=%d" % self.rng.randint(1, 300))
                time.sleep(self.rng.random() * 0.1)
        finally:
            self.count("drop." + conn.drop(self.rng, linger0))

    # -- budget-exceeding connections -----------------------------------------
    def probe(self):
        """A fresh, benign connection must be answered quickly."""
        t0 = time.monotonic()
        conn = Conn(self.port)
        try:
            sid = conn.request("GET", "/")
            conn.wait_streams([sid], timeout=2.0)
            self.check_stream(conn, sid, HELLO)
            dt = time.monotonic() - t0
            self.c["probe_max_ms"] = max(self.c.get("probe_max_ms", 0), round(dt * 1000, 1))
            self.count("probe_ok")
        finally:
            conn.goodbye()

    def expect_calm(self, conn, what):
        try:
            conn.wait(lambda: conn.goaway is not None, timeout=5.0, what="GOAWAY after " + what)
        except Closed:
            pass
        if conn.goaway is None:
            raise Anomaly("%s: connection closed without a GOAWAY" % what)
        if conn.goaway[1] != CALM:
            raise Anomaly("%s: GOAWAY %s %r, expected ENHANCE_YOUR_CALM" % (
                what, ERR.get(conn.goaway[1], conn.goaway[1]), conn.goaway[2]))
        self.count("calm_ok")
        self.count("calm." + conn.goaway[2].decode("latin-1", "replace"))
        # Then the server closes.
        try:
            conn.wait(lambda: False, timeout=5.0, what="EOF after GOAWAY")
        except Closed:
            pass

    def abuse_send(self, conn, chunks):
        try:
            for ch in chunks:
                conn.send(ch)
        except Closed:
            pass               # the server cut us off mid-flood: fine

    def sc_abuse_rapid_reset(self):
        conn = Conn(self.port)
        try:
            n = self.rng.randint(1100, 2000)
            out, chunks = bytearray(), []
            for i in range(n):
                sid = conn.request("GET", "/", flush=False)
                conn.rst(sid, flush=False)
                if len(conn.out) > 60000:
                    chunks.append(bytes(conn.out))
                    conn.out = bytearray()
            chunks.append(bytes(conn.out))
            conn.out = bytearray()
            self.abuse_send(conn, chunks)
            self.count("resets_sent", n)
            self.expect_calm(conn, "%d rapid resets" % n)
        finally:
            conn.close()
        self.probe()

    def sc_abuse_priority(self):
        conn = Conn(self.port)
        try:
            n = self.rng.randint(11000, 13000)
            pri = b"".join(frame(PRIORITY, 0, 2 * i + 1, struct.pack(">IB", 0, 15))
                           for i in range(n))
            self.abuse_send(conn, [pri[i:i + 65536] for i in range(0, len(pri), 65536)])
            self.expect_calm(conn, "%d PRIORITY frames" % n)
        finally:
            conn.close()
        self.probe()

    def sc_abuse_empty_data(self):
        conn = Conn(self.port)
        try:
            sid = conn.request("POST", "/echo", end_stream=False)
            n = self.rng.randint(11000, 13000)
            blob = frame(DATA, 0, sid) * n
            self.abuse_send(conn, [blob[i:i + 65536] for i in range(0, len(blob), 65536)])
            self.expect_calm(conn, "%d empty DATA frames" % n)
        finally:
            conn.close()
        self.probe()

    def sc_hold_zero_window(self):
        """Never open the window of a started download: the server must give
        up after its no-progress timeout (30 s) and close."""
        conn = Conn(self.port, iws=0, auto_window=False)
        t0 = time.monotonic()
        try:
            conn.request("GET", "/1m")
            try:
                conn.wait(lambda: self.stop.is_set(), timeout=45.0,
                          what="server close of a zero-window conn")
                self.count("hold_aborted")   # the soak ended first
                return
            except Closed:
                pass
            dt = time.monotonic() - t0
            self.c["hold_close_s_max"] = max(self.c.get("hold_close_s_max", 0), round(dt, 1))
            code = conn.goaway[1] if conn.goaway else None
            self.count("hold_closed." + (ERR.get(code, str(code)) if conn.goaway else "no-goaway"))
            if dt < 25:
                raise Anomaly("zero-window connection closed after only %.1f s (GOAWAY %s)" % (
                    dt, conn.goaway))
        finally:
            conn.close()

    SCENARIOS = {
        "normal": 3, "reset_early": 3, "reset_upload": 2, "reset_download": 2,
        "slow_window": 2, "window_settings": 1, "never_window": 1, "drop": 3,
    }
    ABUSE = ("abuse_rapid_reset", "abuse_priority", "abuse_empty_data")

    def run_one(self, name):
        self.scenario = name
        self.count("scenario." + name)
        try:
            getattr(self, "sc_" + name)()
        except Anomaly as e:
            self.anomaly(e)
        except Closed as e:
            self.anomaly("connection closed by the server (%s)" % e)
        except (ConnectionError, OSError) as e:
            self.anomaly("socket error: %r" % e)
        except Exception as e:  # a bug here, or a protocol surprise: report it
            self.anomaly("exception: %s" % traceback.format_exc(limit=4))
        finally:
            self.count("connections", 1)

    def loop(self, kind, only=None):
        names = only or list(self.SCENARIOS)
        weights = [self.SCENARIOS.get(n, 1) for n in names]
        i = 0
        while not self.stop.is_set():
            if kind == "chaos":
                self.run_one(self.rng.choices(names, weights)[0])
                time.sleep(self.rng.random() * 0.01)
            elif kind == "abuse":
                if self.stop.wait(self.rng.uniform(1, 2) if i == 0 else self.rng.uniform(5, 15)):
                    break
                self.run_one(self.ABUSE[i % len(self.ABUSE)])
                i += 1
            elif kind == "hold":
                if self.stop.wait(self.rng.uniform(1, 10)):
                    break
                self.run_one("hold_zero_window")


def worker_main(port, wid, seed, kind, only, stop, results, verbose):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    w = Worker(port, wid, seed, stop, verbose)
    try:
        w.loop(kind, only)
    finally:
        results.put({"worker": wid, "kind": kind, "counters": w.c, "anomalies": w.anomalies})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out")
    ap.add_argument("--duration", type=float, default=0)
    ap.add_argument("--no-abuse", action="store_true")
    ap.add_argument("--no-hold", action="store_true")
    ap.add_argument("--only", help="comma-separated chaos scenarios (default: all)")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "big")
    only = a.only.split(",") if a.only else None
    for n in only or ():
        if not hasattr(Worker, "sc_" + n):
            sys.exit("soak_chaos: unknown scenario %r" % n)

    stop = mp.Event()
    results = mp.Queue()
    kinds = ["chaos"] * a.workers
    if not a.no_abuse:
        kinds.append("abuse")
    if not a.no_hold:
        kinds.append("hold")
    procs = []
    for i, kind in enumerate(kinds):
        p = mp.Process(target=worker_main, args=(a.port, i, seed * 1000 + i, kind, only, stop,
                                                 results, a.verbose), daemon=True)
        p.start()
        procs.append(p)

    # The handler only sets a flag: calling stop.set() from it could deadlock
    # on the Event's lock held by the interrupted main thread.
    signalled = []
    signal.signal(signal.SIGTERM, lambda *_: signalled.append(1))
    signal.signal(signal.SIGINT, lambda *_: signalled.append(1))
    t0 = time.monotonic()
    while not signalled and not (a.duration and time.monotonic() - t0 >= a.duration):
        time.sleep(0.2)
    stop.set()
    # Workers finish their current scenario (the hold one may take up to 45 s).
    merged = {"seed": seed, "workers": len(kinds), "seconds": 0, "counters": {},
              "anomalies": [], "per_worker": []}
    got = 0
    deadline = time.monotonic() + 60
    while got < len(procs) and time.monotonic() < deadline:
        try:
            r = results.get(timeout=1)
        except Exception:
            continue
        got += 1
        merged["per_worker"].append({"worker": r["worker"], "kind": r["kind"],
                                     "connections": r["counters"].get("connections", 0)})
        for k, v in r["counters"].items():
            if k.endswith("_max") or k.endswith("_max_ms"):
                merged["counters"][k] = max(merged["counters"].get(k, 0), v)
            else:
                merged["counters"][k] = merged["counters"].get(k, 0) + v
        merged["anomalies"].extend(r["anomalies"])
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
    merged["seconds"] = round(time.monotonic() - t0, 1)
    merged["workers_reported"] = got
    text = json.dumps(merged, indent=1, sort_keys=True)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
