"""A guard that refuses, and logs, every network connection to an address outside loopback.

In the test process, `install(log)` patches `socket.socket.connect`, `connect_ex`, `sendto`,
`socket.create_connection` and `socket.getaddrinfo` (a name that is not local is itself a DNS query leaving
the machine). For subprocesses, `sitecustomize_dir(tmp, log)` writes this file as `sitecustomize.py`; put
that folder first on PYTHONPATH and set CURBSIDE_NET_GUARD_LOG, and Python installs the guard at start-up
in every process, before any project code runs. Each process logs one `installed` line, so a test can tell
the guard was there; each refused attempt is one `VIOLATION` line with the address and a short stack.

Standard library only: this file is copied verbatim into subprocesses.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
import traceback
from pathlib import Path

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}
_lock = threading.Lock()
_state = {"log": None, "installed": False}


def is_local(host) -> bool:
    if host is None:
        return True
    host = host.decode() if isinstance(host, bytes) else str(host)
    host = host.strip("[]").split("%")[0]
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _record(kind: str, target) -> None:
    stack = "".join(traceback.format_stack(limit=12)[:-2]).replace("\n", " | ")
    line = f"VIOLATION pid={os.getpid()} {kind} {target!r} argv={sys.argv[:3]} stack={stack}\n"
    with _lock, open(_state["log"], "a") as f:
        f.write(line)


def _check_address(sock, address, kind: str) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # unix sockets, netlink: not the network
    host = address[0] if isinstance(address, tuple) and address else address
    if not is_local(host):
        _record(kind, address)
        raise ConnectionRefusedError(f"net guard: connection to {address!r} refused (tests allow loopback only)")


def install(log_path) -> None:
    """Patch the socket module in this process; idempotent."""
    if _state["installed"]:
        return
    _state["log"] = str(log_path)
    _state["installed"] = True
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_sendto, real_getaddrinfo = socket.socket.sendto, socket.getaddrinfo
    real_create_connection = socket.create_connection

    def connect(self, address):
        _check_address(self, address, "connect")
        return real_connect(self, address)

    def connect_ex(self, address):
        _check_address(self, address, "connect_ex")
        return real_connect_ex(self, address)

    def sendto(self, data, *args):
        address = args[-1]
        _check_address(self, address, "sendto")
        return real_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        if not is_local(host):
            _record("getaddrinfo", host)
            raise socket.gaierror(socket.EAI_NONAME, f"net guard: name lookup of {host!r} refused")
        return real_getaddrinfo(host, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        if not is_local(address[0]):
            _record("create_connection", address)
            raise ConnectionRefusedError(f"net guard: connection to {address!r} refused")
        return real_create_connection(address, *args, **kwargs)

    _state["real"] = (real_connect, real_connect_ex, real_sendto, real_getaddrinfo, real_create_connection)
    socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
    socket.getaddrinfo, socket.create_connection = getaddrinfo, create_connection
    with _lock, open(_state["log"], "a") as f:
        f.write(f"installed pid={os.getpid()} argv={sys.argv[:3]}\n")


def uninstall() -> None:
    """Put the socket module back as it was (the test process's guard ends with its test)."""
    if not _state["installed"]:
        return
    real_connect, real_connect_ex, real_sendto, real_getaddrinfo, real_create_connection = _state.pop("real")
    socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = real_connect, real_connect_ex, real_sendto
    socket.getaddrinfo, socket.create_connection = real_getaddrinfo, real_create_connection
    _state["installed"] = False


def violations(log_path) -> list[str]:
    path = Path(log_path)
    return [line for line in path.read_text().splitlines() if line.startswith("VIOLATION")] if path.exists() else []


def installed_in(log_path) -> list[str]:
    path = Path(log_path)
    return [line for line in path.read_text().splitlines() if line.startswith("installed")] if path.exists() else []


def sitecustomize_dir(tmp: Path, log_path: Path) -> dict:
    """Write this guard as tmp/guard/sitecustomize.py; returns the environment that makes Python load it."""
    folder = tmp / "guard"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(Path(__file__).read_text())
    path = os.pathsep.join(p for p in [str(folder), os.environ.get("PYTHONPATH", "")] if p)
    return {"PYTHONPATH": path, "CURBSIDE_NET_GUARD_LOG": str(log_path)}


if __name__ == "sitecustomize" and os.environ.get("CURBSIDE_NET_GUARD_LOG"):
    install(os.environ["CURBSIDE_NET_GUARD_LOG"])
