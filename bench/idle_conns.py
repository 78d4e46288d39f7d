#!/usr/bin/python3
"""Memory per idle HTTP/2 connection.

Opens N cleartext connections with prior knowledge (preface + empty SETTINGS,
reads the server's SETTINGS, ACKs it), leaves them idle, and reports the
server's resident memory (VmRSS summed over its process group) before and
after, as one JSON object on stdout.  Two steps of N connections, all kept
open: kib_per_conn_cold is the RSS growth over the first N on a fresh server
(one-time costs included: pools, arenas, tables sized on first use);
kib_per_conn is the growth over the next N, the marginal cost of one more
idle connection.  Standard library only.

  idle_conns.py --port P --pgid G [--conns 1000] [--settle 2]   (opens 2 x conns)
"""
import argparse
import errno
import json
import os
import selectors
import socket
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = struct.pack(">I", 0)[1:] + bytes([4, 0]) + struct.pack(">I", 0)  # empty SETTINGS
SETTINGS_ACK = struct.pack(">I", 0)[1:] + bytes([4, 1]) + struct.pack(">I", 0)


def group_pids(pgid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:  # field 5: pgrp
            pids.append(int(d))
    return pids


def rss_kib(pgid):
    total = 0
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


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


def handshake_batch(socks, port, timeout):
    """Connect, send preface+SETTINGS, wait for the server SETTINGS, ACK it.
    Returns the sockets that completed."""
    sel = selectors.DefaultSelector()
    bufs = {}
    for s in socks:
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        sel.register(s, selectors.EVENT_WRITE)
        bufs[s] = b""
    done, pending = [], set(socks)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, ev in sel.select(0.2):
            s = key.fileobj
            if ev & selectors.EVENT_WRITE:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    pending.discard(s)
                    sel.unregister(s)
                    continue
                s.sendall(PREFACE + SETTINGS)
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                pending.discard(s)
                sel.unregister(s)
                continue
            bufs[s] += data
            if saw_settings(bufs[s]):
                s.sendall(SETTINGS_ACK)
                pending.discard(s)
                sel.unregister(s)
                done.append(s)
    sel.close()
    return done


def alive(s):
    try:
        while True:
            data = s.recv(65536, socket.MSG_DONTWAIT)
            if not data:
                return False  # EOF: the server closed it
    except BlockingIOError:
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
    a = ap.parse_args()

    def open_batchwise(n):
        socks, failed = [], 0
        for i in range(0, n, a.batch):
            batch = [socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                     for _ in range(min(a.batch, n - i))]
            ok = handshake_batch(batch, a.port, 5.0)
            failed += len(batch) - len(ok)
            for s in batch:
                if s not in ok:
                    s.close()
            socks += ok
        return socks, failed

    time.sleep(0.5)
    rss = [rss_kib(a.pgid)]
    socks, failed, alive_n = [], 0, []
    t0 = time.monotonic()
    for _ in range(2):
        more, f = open_batchwise(a.conns)
        socks += more
        failed += f
        time.sleep(a.settle)
        alive_n.append(sum(1 for s in socks if alive(s)))
        rss.append(rss_kib(a.pgid))
    opened = time.monotonic() - t0
    for s in socks:
        s.close()
    first = (rss[1] - rss[0]) / alive_n[0] if alive_n[0] else None
    second = (rss[2] - rss[1]) / (alive_n[1] - alive_n[0]) if alive_n[1] > alive_n[0] else None
    json.dump({"conns_requested": 2 * a.conns, "conns_handshaken": len(socks),
               "conns_failed": failed, "conns_alive": alive_n[1],
               "rss_before_kib": rss[0], "rss_mid_kib": rss[1], "rss_after_kib": rss[2],
               "kib_per_conn": second, "kib_per_conn_cold": first,
               "open_seconds": round(opened, 3), "settle_seconds": a.settle}, sys.stdout)
    print()
    return 0 if alive_n[1] == 2 * a.conns else 1


if __name__ == "__main__":
    sys.exit(main())
