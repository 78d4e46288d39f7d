#!/usr/bin/python3
"""Memory per idle HTTP/2 connection.

Opens N cleartext connections with prior knowledge (preface + empty SETTINGS,
reads the server's SETTINGS, ACKs it), leaves them idle, and reports the
server's resident memory (VmRSS summed over its process group) before and
after, as one JSON object on stdout.  With --tls the connections are TLS 1.3
with ALPN h2 (no certificate check), the same exchange inside TLS; the anon_*
fields count anonymous RSS only (RssAnon: the heap, not the mapped binary and
libraries), which is what an idle TLS connection costs.  Two steps of N
connections, all kept open: kib_per_conn_cold is the RSS growth over the first
N on a fresh server (one-time costs included: pools, arenas, tables sized on
first use); kib_per_conn is the growth over the next N, the marginal cost of
one more idle connection.  Standard library only.

  idle_conns.py --port P --pgid G [--conns 1000] [--settle 2] [--tls]   (opens 2 x conns)
"""
import argparse
import errno
import json
import os
import selectors
import socket
import ssl
import struct
import sys
import time

import e2e_report_proc

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = struct.pack(">I", 0)[1:] + bytes([4, 0]) + struct.pack(">I", 0)  # empty SETTINGS
SETTINGS_ACK = struct.pack(">I", 0)[1:] + bytes([4, 1]) + struct.pack(">I", 0)


def group_pids(pgid):
    """The pids of process group pgid (e2e_report_proc.group_pids without
    the CPU ticks)."""
    return [pid for pid, _ in e2e_report_proc.group_pids(pgid)]


def rss_kib(pgid, field="VmRSS:"):
    total = 0
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(field):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["h2"])
    return ctx


def saw_settings(buf):
    """True once buf holds a complete non-ACK SETTINGS frame."""
    off = 0
    while len(buf) - off >= 9:
        length = int.from_bytes(buf[off:off + 3], "big")
        ftype, flags = buf[off + 3], buf[off + 4]
        if len(buf) - off < 9 + length:
            return False
        if ftype == 4 and not flags & 1:
            return True
        off += 9 + length
    return False


def handshake_batch(socks, port, timeout, tls=None):
    """Connect (and with tls, an SSLContext, do the TLS handshake), send
    preface+SETTINGS, wait for the server SETTINGS, ACK it.  Returns the
    sockets that completed (SSLSockets with tls)."""
    sel = selectors.DefaultSelector()
    bufs = {}
    state = {}  # "connect", "tls", "h2"
    for s in socks:
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        sel.register(s, selectors.EVENT_WRITE)
        bufs[s] = b""
        state[s] = "connect"
    done, pending = [], set(socks)
    deadline = time.monotonic() + timeout

    def drop(s):
        pending.discard(s)
        sel.unregister(s)

    def tls_step(s):
        try:
            s.do_handshake()
        except ssl.SSLWantReadError:
            sel.modify(s, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            sel.modify(s, selectors.EVENT_WRITE)
            return
        except (ssl.SSLError, OSError):
            drop(s)
            return
        if s.selected_alpn_protocol() != "h2":
            drop(s)
            return
        state[s] = "h2"
        s.sendall(PREFACE + SETTINGS)  # small: fits the socket buffer
        sel.modify(s, selectors.EVENT_READ)

    while pending and time.monotonic() < deadline:
        for key, ev in sel.select(0.2):
            s = key.fileobj
            if state[s] == "connect":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    drop(s)
                    continue
                if tls is None:
                    state[s] = "h2"
                    s.sendall(PREFACE + SETTINGS)
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                sel.unregister(s)
                pending.discard(s)
                t = tls.wrap_socket(s, server_side=False, do_handshake_on_connect=False,
                                    server_hostname="localhost")
                bufs[t] = b""
                state[t] = "tls"
                pending.add(t)
                sel.register(t, selectors.EVENT_WRITE)
                tls_step(t)
                continue
            if state[s] == "tls":
                tls_step(s)
                continue
            try:
                data = s.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except OSError:
                data = b""
            if not data:
                drop(s)
                continue
            bufs[s] += data
            if saw_settings(bufs[s]):
                s.sendall(SETTINGS_ACK)
                drop(s)
                done.append(s)
    sel.close()
    return done


def alive(s):
    """No EOF from the server.  (TLS: whatever arrived, e.g. tickets, is
    read on the raw socket's behalf by recv(); only EOF or an error counts.)"""
    try:
        s.setblocking(False)
        while True:
            data = s.recv(65536)
            if not data:
                return False  # EOF: the server closed it
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pgid", type=int, required=True, help="the server's process group")
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds idle before measuring")
    ap.add_argument("--tls", action="store_true", help="TLS 1.3 with ALPN h2")
    a = ap.parse_args()
    tls = tls_context() if a.tls else None

    def open_batchwise(n):
        socks, failed = [], 0
        for i in range(0, n, a.batch):
            batch = [socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                     for _ in range(min(a.batch, n - i))]
            ok = handshake_batch(batch, a.port, 10.0 if tls else 5.0, tls)
            failed += len(batch) - len(ok)
            for s in batch:
                if all(s.fileno() != o.fileno() for o in ok):
                    s.close()
            socks += ok
        return socks, failed

    time.sleep(0.5)
    rss = [rss_kib(a.pgid)]
    anon = [rss_kib(a.pgid, "RssAnon:")]
    socks, failed, alive_n = [], 0, []
    t0 = time.monotonic()
    for _ in range(2):
        more, f = open_batchwise(a.conns)
        socks += more
        failed += f
        time.sleep(a.settle)
        alive_n.append(sum(1 for s in socks if alive(s)))
        rss.append(rss_kib(a.pgid))
        anon.append(rss_kib(a.pgid, "RssAnon:"))
    opened = time.monotonic() - t0
    for s in socks:
        s.close()
    first = (rss[1] - rss[0]) / alive_n[0] if alive_n[0] else None
    second = (rss[2] - rss[1]) / (alive_n[1] - alive_n[0]) if alive_n[1] > alive_n[0] else None
    anon_first = (anon[1] - anon[0]) / alive_n[0] if alive_n[0] else None
    anon_second = ((anon[2] - anon[1]) / (alive_n[1] - alive_n[0])
                   if alive_n[1] > alive_n[0] else None)
    json.dump({"conns_requested": 2 * a.conns, "conns_handshaken": len(socks),
               "conns_failed": failed, "conns_alive": alive_n[1],
               "rss_before_kib": rss[0], "rss_mid_kib": rss[1], "rss_after_kib": rss[2],
               "kib_per_conn": second, "kib_per_conn_cold": first,
               "anon_before_kib": anon[0], "anon_mid_kib": anon[1], "anon_after_kib": anon[2],
               "anon_kib_per_conn": anon_second, "anon_kib_per_conn_cold": anon_first,
               "tls": a.tls,
               "open_seconds": round(opened, 3), "settle_seconds": a.settle}, sys.stdout)
    print()
    return 0 if alive_n[1] == 2 * a.conns else 1


if __name__ == "__main__":
    sys.exit(main())
