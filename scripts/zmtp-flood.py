#!/usr/bin/env python3
"""An unauthenticated peer that tries to make a ZeroMQ server hold memory (test helper of
scripts/admission-test.sh): it connects over TCP, sends a ZMTP 3.0 greeting asking for the
CURVE mechanism, then a frame header claiming SIZE bytes, and streams zeros until the server
closes the connection; then it connects again, until it is killed. On exit (SIGTERM) it
prints how many connections it made on stderr.

    zmtp-flood.py HOST PORT SIZE
"""
import signal
import socket
import struct
import sys
import time

host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
connections = 0


def report(*_):
    print(connections, file=sys.stderr)
    sys.exit(0)


signal.signal(signal.SIGTERM, report)

# ZMTP 3.0 greeting: signature, version 3.0, mechanism (20 bytes), as-server 0, filler.
greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 0]) + b"CURVE".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
# A long command frame (flags: LONG | COMMAND) claiming `size` bytes.
header = bytes([0x06]) + struct.pack(">Q", size)
chunk = b"\x00" * 65536

while True:
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            connections += 1
            s.sendall(greeting + header)
            sent = 0
            while sent < size:
                s.sendall(chunk)
                sent += len(chunk)
    except OSError:
        pass
    time.sleep(0.05)
