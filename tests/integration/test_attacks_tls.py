#!/usr/bin/python3
"""The TLS attack classes of docs/security.md (test_18_*): the server also
serves TLS (run_case(tls=True): a CA and certificate made once per class
with test_tls.make_pki) and the attacks go to that port; the benign client
stays on h2c, on the same shard.  What each case asserts (reaction, benign
latency, RSS) is test_attacks.py's docstring.

    /usr/bin/python3 tests/integration/test_attacks_tls.py build/apps/hello/spindle-hello [-k name]
"""
import contextlib
import os
import random
import select
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import unittest
import warnings

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import GOAWAY, HELLO, HOST, PREFACE, SETTINGS  # noqa: E402
from attacks_util import (CHURN_RSS_MAX, CLOSE_SLACK, GET_ROOT_TLS, MIB, TLS_ALERTS,  # noqa: E402
                          TLS_CT_ALERT, TlsBio, TlsPeer, fd_count, headers_frame,
                          ping, rss, rst_stream, settings_frame, shard_stats,
                          ssl_alert_name, strict_eof, tls_record, tls_records,
                          tls_stats, wait_server_close)
import attacks_runner  # noqa: E402


class TlsAttackTest(attacks_runner.AttackBase):
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
    harness.main()
