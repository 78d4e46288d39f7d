#!/usr/bin/python3
"""Memory per idle HTTP/2 connection.

Opens N cleartext connections with prior knowledge (preface + empty SETTINGS,
reads the server's SETTINGS, ACKs it), leaves them idle, and reports the
server's resident memory (VmRSS summed over its process group) before and
after, as one JSON object on stdout.  Standard library only.

  idle_conns.py --port P --pgid G [--conns 1000] [--settle 2]
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

    time.sleep(0.5)
    before = rss_kib(a.pgid)
    socks, failed = [], 0
    t0 = time.monotonic()
    for i in range(0, a.conns, a.batch):
        batch = [socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                 for _ in range(min(a.batch, a.conns - i))]
        ok = handshake_batch(batch, a.port, 10.0)
        failed += len(batch) - len(ok)
        for s in batch:
            if s not in ok:
                s.close()
        socks += ok
    opened = time.monotonic() - t0
    time.sleep(a.settle)
    n_alive = sum(1 for s in socks if alive(s))
    after = rss_kib(a.pgid)
    for s in socks:
        s.close()
    per = (after - before) / n_alive if n_alive else None
    json.dump({"conns_requested": a.conns, "conns_handshaken": len(socks),
               "conns_failed": failed, "conns_alive": n_alive,
               "rss_before_kib": before, "rss_after_kib": after,
               "kib_per_conn": per, "open_seconds": round(opened, 3),
               "settle_seconds": a.settle}, sys.stdout)
    print()
    return 0 if n_alive == a.conns else 1


if __name__ == "__main__":
    sys.exit(main())
