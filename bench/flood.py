"""A slow-loris flood, then the server's memory: opens CONNECTIONS connections that each send
half a request's headers, holds them, closes them all, and prints the server's resident
memory and open descriptors before, during and after (5 s, 35 s). The server must keep
answering /healthz, and give the flood's memory back once it ends.

    python3 bench/flood.py PORT PID [CONNECTIONS]
"""

import os
import socket
import sys
import time
import urllib.request


def resident(pid):
    with open(f"/proc/{pid}/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return f"{kib / 1024:.0f} MiB resident, {len(os.listdir(f'/proc/{pid}/fd'))} descriptors"


def healthy(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        return answer.status


def main():
    port, pid = int(sys.argv[1]), sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 9000
    print("before:", resident(pid), flush=True)
    held = []
    for _ in range(count):
        try:
            connection = socket.create_connection(("127.0.0.1", port))
            connection.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"b" * 2000)
            held.append(connection)
        except OSError as e:
            print(f"stopped opening at {len(held)}: {e}")
            break
    time.sleep(2)
    print(f"during ({len(held)} open):", resident(pid), f"/healthz {healthy(port)}", flush=True)
    for connection in held:
        connection.close()
    time.sleep(5)
    print("5 s after:", resident(pid), flush=True)
    time.sleep(30)
    print("35 s after:", resident(pid), f"/healthz {healthy(port)}", flush=True)


main()
