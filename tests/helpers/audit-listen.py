#!/usr/bin/python3
"""The kernel's audit records, as the suite reads them: switch the kernel's audit on
(AUDIT_SET enabled=1), read every record from the audit multicast group (the way
journald does), and put the switch back as it was when stopped (SIGTERM) or done.

    audit-listen.py OUT     prints "ready" (or "unavailable: WHY") on stdout, then writes
                            one line "TYPE TEXT" per record to OUT until SIGTERM

Needs root (CAP_AUDIT_CONTROL, CAP_AUDIT_READ)."""

import ctypes
import os
import signal
import socket
import struct
import sys

NETLINK_AUDIT = 9
AUDIT_GET, AUDIT_SET = 1000, 1001
AUDIT_NLGRP_READLOG = 1
AUDIT_STATUS_ENABLED = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def request(sock, msg_type, payload, seq, ack=True):
    flags = NLM_F_REQUEST | (NLM_F_ACK if ack else 0)
    header = struct.pack("=LHHLL", 16 + len(payload), msg_type, flags, seq, 0)
    sock.send(header + payload)


def replies(sock, seq):
    """(type, payload) of the answers to seq, until its ACK or error."""
    while True:
        data = sock.recv(65536)
        off = 0
        while off + 16 <= len(data):
            length, msg_type, _, got_seq, _ = struct.unpack_from("=LHHLL", data, off)
            payload = data[off + 16:off + length]
            off += (length + 3) & ~3
            if got_seq != seq:
                continue
            if msg_type == NLMSG_ERROR:
                error = struct.unpack_from("=i", payload)[0]
                if error:
                    raise OSError(-error, os.strerror(-error))
                return
            yield msg_type, payload


def get_enabled(sock):
    # No ACK asked: the kernel sends the status from a thread of its own, after any ACK.
    request(sock, AUDIT_GET, b"", 1, ack=False)
    for msg_type, payload in replies(sock, 1):
        if msg_type == AUDIT_GET:
            return struct.unpack_from("=LL", payload)[1]
    return None


def set_enabled(sock, value, seq):
    # struct audit_status: mask, enabled, failure, pid, rate_limit, backlog_limit, lost, backlog
    request(sock, AUDIT_SET, struct.pack("=8L", AUDIT_STATUS_ENABLED, value, 0, 0, 0, 0, 0, 0), seq)
    for _ in replies(sock, seq):
        pass


def main():
    # A test killed at its timeout must not leave the kernel's audit on: the parent's death
    # is a SIGTERM here too (PR_SET_PDEATHSIG).
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    out = open(sys.argv[1], "w", buffering=1)
    try:
        control = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        control.bind((0, 0))
        was = get_enabled(control)
        listen = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        listen.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
        if was == 0:
            set_enabled(control, 1, 2)
    except OSError as e:
        print(f"unavailable: {e}", flush=True)
        return 0
    stopping = []
    signal.signal(signal.SIGTERM, lambda *a: stopping.append(1))
    print("ready", flush=True)
    listen.settimeout(0.2)
    try:
        while not stopping:
            try:
                data = listen.recv(65536)
            except socket.timeout:
                continue
            except InterruptedError:
                continue
            off = 0
            while off + 16 <= len(data):
                length, msg_type, _, _, _ = struct.unpack_from("=LHHLL", data, off)
                text = data[off + 16:off + length].rstrip(b"\0").decode("utf-8", "replace")
                out.write(f"{msg_type} {text}\n")
                off += (length + 3) & ~3
    finally:
        if was == 0:
            set_enabled(control, 0, 3)   # as it was
    return 0


if __name__ == "__main__":
    sys.exit(main())
