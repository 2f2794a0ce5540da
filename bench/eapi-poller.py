#!/usr/bin/env python3
"""A once-a-second Python eAPI poller, like the classic recipe's ztps_daemon.

Used by `cargo xtask bench` to measure what such a poller costs in RSS next to
ISC dhcpd. Every second it asks eAPI (here eos-sim, over its unix socket)
`show interfaces status connected` and runs a restart command when an interface
connects that was not connected at the previous poll (the recipe ran
`service dhcpd restart`; the benchmark passes `true`).

usage: eapi-poller.py SOCKET RESTART_COMMAND [MAX_SECONDS]
"""

import http.client
import json
import socket
import subprocess
import sys
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket, as eAPI's `protocol unix-socket` serves it."""

    def __init__(self, path):
        super().__init__("localhost", timeout=5)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(self.unix_path)
        self.sock = sock


def connected(path):
    body = json.dumps({
        "jsonrpc": "2.0",
        "method": "runCmds",
        "params": {"version": 1, "cmds": ["show interfaces status connected"], "format": "json"},
        "id": "ztps",
    })
    conn = UnixHTTPConnection(path)
    try:
        conn.request("POST", "/command-api", body, {"Content-Type": "application/json"})
        reply = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return set(reply["result"][0]["interfaceStatuses"])


def main():
    path, restart = sys.argv[1], sys.argv[2]
    max_seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 3600
    known = None
    for _ in range(max_seconds):
        try:
            now = connected(path)
        except (OSError, ValueError, KeyError, IndexError) as e:
            print(f"poller: eAPI: {e}", file=sys.stderr, flush=True)
            now = known if known is not None else set()
        if known is not None and now - known:
            print(f"poller: {sorted(now - known)} connected: {restart}", file=sys.stderr, flush=True)
            subprocess.call(restart, shell=True)
        known = now
        time.sleep(1)


if __name__ == "__main__":
    main()
