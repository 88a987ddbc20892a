"""Debian's docker-registry (distribution 2.8.2) as a test peer, on a free loopback port.

host-notes §9.3: a temp config, filesystem storage, deletes on, optional htpasswd (bcrypt) auth.
Started and stopped by PID; everything lives under one temp dir.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    import bcrypt

    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"


@dataclass
class PeerRegistry:
    users: dict[str, str] = field(default_factory=dict)   # empty: no auth
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="berth-peer-reg-")))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def config(self) -> str:
        auth = ""
        if self.users:
            (self.base / "htpasswd").write_text("".join(htpasswd_line(u, p) + "\n" for u, p in self.users.items()))
            auth = f"auth:\n  htpasswd:\n    realm: berth-test\n    path: {self.base / 'htpasswd'}\n"
        return (f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {self.base / 'data'}\n"
                f"  delete:\n    enabled: true\nhttp:\n  addr: {self.address}\n{auth}")

    def start(self, timeout: float = 15) -> "PeerRegistry":
        (self.base / "config.yml").write_text(self.config())
        log = open(self.base / "registry.log", "ab")
        self.proc = subprocess.Popen([REGISTRY, "serve", str(self.base / "config.yml")],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited: " + (self.base / "registry.log").read_text())
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1)
                return self
            except urllib.error.HTTPError:
                return self  # 401: up, with auth
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
