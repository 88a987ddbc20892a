"""Test helpers: a private berth daemon on a temp root, a raw HTTP client for its socket, and what
the tests of its AWS endpoint share (clients, raw signed requests, polling with a deadline)."""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import pty
import secrets
import select
import shutil
import signal
import socket
import subprocess
import struct
import sys
import tempfile
import termios
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
BERTH = str(Path(sys.executable).parent / "berth")
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
REGION = "us-east-1"
AMZ_JSON = "application/x-amz-json-1.1"
T = TypeVar("T")


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def api(sock: str, method: str, path: str, body: Any = None, raw: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request; returns (status, parsed JSON or raw bytes)."""
    conn = UnixHTTPConnection(sock)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(payload) if payload else None
    except ValueError:
        return resp.status, payload


def free_subnet() -> str:
    """A random 10.200-249.x.0/24 that no route on the host uses yet: two bridges with one subnet
    (a daemon left by an interrupted run, another session's) would send replies to the wrong one."""
    try:
        routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        routes = ""
    taken = {line.split()[0] for line in routes.splitlines() if line.strip()}
    for _ in range(200):
        subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}.0/24"
        if subnet not in taken:
            return subnet
    return subnet


@dataclass
class BerthDaemon:
    """A berth daemon on its own root, run root, socket, bridge and subnet."""

    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="berth-test-")))
    bridge: str = field(default_factory=lambda: "bt" + secrets.token_hex(3))
    subnet: str = field(default_factory=lambda: free_subnet())
    runtime: str = "auto"
    # Extra `berth daemon` flags. The registry is off unless a test passes --registry-addr
    # (daemons running side by side would otherwise all fight for 127.0.0.1:5000).
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def run_root(self) -> Path:
        return self.base / "run"

    @property
    def sock(self) -> str:
        return str(self.base / "docker.sock")

    @property
    def host(self) -> str:
        return f"unix://{self.sock}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env["DOCKER_CONFIG"] = str(self.base / "docker-config")
        return env

    def aws_credentials(self) -> tuple[str, str]:
        """The key pair the daemon generated for its AWS endpoint (`<root>/aws/credentials`)."""
        from berth.api.aws import KeyFile

        credential = KeyFile(self.root).read()
        return credential.access_key, credential.secret_key

    @property
    def aws_env(self) -> dict[str, str]:
        """`env` plus the daemon's AWS keys, for the AWS CLI and boto3."""
        key, secret = self.aws_credentials()
        return {**self.env, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_DEFAULT_REGION": REGION, "AWS_PAGER": ""}

    def _flag(self, name: str) -> str | None:
        """The value of `name` in `extra_args` (`--name value` or `--name=value`), None when absent."""
        for i, arg in enumerate(self.extra_args):
            if arg == name and i + 1 < len(self.extra_args):
                return self.extra_args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
        return None

    @property
    def aws_port(self) -> int:
        addr = self._flag("--aws-addr")
        assert addr and addr != "off", "this daemon has no AWS endpoint (pass --aws-addr)"
        return int(addr.rsplit(":", 1)[1])

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    @property
    def registry_addr(self) -> str:
        addr = self._flag("--registry-addr")
        assert addr and addr != "off", "this daemon has no registry (pass --registry-addr)"
        return addr

    def aws_client(self, service: str = "ecs", key: str | None = None, secret: str | None = None,
                   token: str | None = None, **config: Any) -> Any:
        """A boto3 client of the daemon's AWS endpoint, signed with its keys or with `key`/`secret`
        (and a session `token`); `config`: more boto3.client arguments."""
        import boto3

        good_key, good_secret = self.aws_credentials()
        return boto3.client(service, endpoint_url=self.aws_url, region_name=REGION,
                            aws_access_key_id=key or good_key, aws_secret_access_key=secret or good_secret,
                            aws_session_token=token, **config)

    def aws_sign(self, service: str, target: str, body: bytes) -> dict[str, str]:
        """The headers of a raw POST of `body` to the AWS endpoint as the JSON 1.1 operation `target`
        (its X-Amz-Target), SigV4-signed for `service` with the daemon's keys."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method="POST", url=self.aws_url + "/", data=body,
                             headers={"X-Amz-Target": target, "Content-Type": AMZ_JSON})
        SigV4Auth(Credentials(*self.aws_credentials()), service, REGION).add_auth(request)
        return dict(request.headers.items())

    def aws_post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """A raw POST to the AWS endpoint: (status, body), whatever the status."""
        request = urllib.request.Request(self.aws_url + "/", data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def start(self, timeout: float = 30) -> None:
        log = open(self.base / "daemon.log", "ab")
        self.proc = subprocess.Popen(
            [BERTH, "daemon", "--root", str(self.root), "--run-root", str(self.run_root),
             "--docker-host", self.host, "--bridge-name", self.bridge, "--bridge-subnet", self.subnet,
             "--runtime", self.runtime, "--log-level", "debug", *self._registry_default(), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited early:\n{self.log()}")
            try:
                if api(self.sock, "GET", "/_ping")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"daemon not ready:\n{self.log()}")

    def _registry_default(self) -> list[str]:
        """The registry and the AWS endpoint are off unless a test asks for them (fixed ports collide)."""
        off = [] if any(a.startswith("--registry-addr") for a in self.extra_args) else ["--registry-addr", "off"]
        if not any(a.startswith("--aws-addr") for a in self.extra_args):
            off += ["--aws-addr", "off"]
        if not any(a.startswith("--metrics-addr") for a in self.extra_args):
            off += ["--metrics-addr", "off"]
        return off

    def exit_file(self, container_id: str) -> Path:
        """Where conmon records a container's exit code: it exists once the exit is recorded,
        also while no daemon runs."""
        return self.run_root / "runtime" / "exits" / container_id

    def log(self) -> str:
        path = self.base / "daemon.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    def bootstrap_busybox(self) -> str:
        status, body = api(self.sock, "POST", "/berth/images/bootstrap?name=busybox&tag=latest")
        assert status == 200, body
        return body["Id"]

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60,
               check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([DOCKER, *args], env=self.env, input=input.decode() if input else None,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr}")
        return result

    def remove_all_containers(self) -> None:
        try:
            status, items = api(self.sock, "GET", "/containers/json?all=1")
        except OSError:
            return
        for item in items or []:
            try:  # a wedged container must not stop the rest of the clean-up
                api(self.sock, "DELETE", f"/containers/{item['Id']}?force=1")
            except OSError:
                continue

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def destroy(self) -> None:
        """Stop everything this daemon made: containers, daemon, conmons, mounts, bridge, dirs."""
        self.remove_all_containers()
        self.stop()
        # Every process of its containers, whatever state the daemon left them in (a container
        # created by a SIGKILLed daemon waits on its exec FIFO forever once its files are gone).
        kill_container_processes(self.base, self._flag("--cgroup-parent") or "berth")
        kill_conmons_under(self.base)
        from berth.network import BridgeConfig, NetworkManager

        bridge = BridgeConfig(network_name=self.bridge, bridge=self.bridge, subnet=self.subnet,
                              gateway=self.subnet.rsplit(".", 1)[0] + ".1")
        from berth.network import EndpointManager, IsolatedBridge, NetworkIsolation, NetworkRegistry

        # user networks: endpoints DEL first (needs the netns), then their bridges
        EndpointManager(state_dir=self.root / "network", ipam_dir=self.root / "network" / "ipam").cleanup_stale(set())
        registry = NetworkRegistry(state_dir=self.root / "network")
        # this daemon's isolation rules only: other daemons' bridges keep theirs (and the shared chains)
        NetworkIsolation().remove([IsolatedBridge(self.bridge, self.subnet)] + [
            IsolatedBridge(n.bridge, n.subnet, internal=n.internal) for n in registry.list()])
        registry.destroy()
        from berth.agent.metadata import remove_dnat

        remove_dnat(self.bridge)  # the ECS metadata DNAT chain, when the daemon was killed
        NetworkManager(state_dir=self.root / "network", run_dir=self.run_root / "netns", bridge=bridge).destroy()
        unmount_under(self.base)
        shutil.rmtree(self.base, ignore_errors=True)


def conmons_under(base: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"conmon") and any(str(base).encode() in a for a in cmd):
            pids.append(int(entry.name))
    return pids


# What destroy() cleaned, for the session guard (tests/conftest.py): nothing may survive it.
DESTROYED_BASES: list[Path] = []
DESTROYED_CGROUPS: set[str] = set()


def container_cgroups_under(base: Path, cgroup_parent: str = "berth") -> set[str]:
    """The cgroup paths of every container a daemon on `base` may have made: each bundle's
    cgroupsPath, and `/<parent>/<id>` for each id with runtime state or a container dir."""
    runtime_dir = base / "run" / "runtime"
    paths, ids = set(), set()
    for bundle in _subdirs(runtime_dir):
        try:
            config = json.loads((bundle / "config.json").read_text())
            paths.add(str(config["linux"]["cgroupsPath"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        ids.add(bundle.name)
    for state_root in (runtime_dir / "crun", runtime_dir / "runc"):
        ids.update(d.name for d in _subdirs(state_root))
    ids.update(d.name for d in _subdirs(base / "root" / "containers"))
    ids -= {"crun", "runc", "exits"}
    return paths | {f"/{cgroup_parent.strip('/')}/{i}" for i in ids}


def _subdirs(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def processes_of(base: Path, cgroups: set[str]) -> dict[int, str]:
    """pid -> why: members of `cgroups`, and processes whose argv names `base` (conmon, the
    `crun create` init that waits for a start, runtime calls), but not this process's ancestors."""
    from berth.runtime.runtime import cgroup_pids

    mine = _ancestors()
    found: dict[int, str] = {}
    for path in cgroups:
        for pid in cgroup_pids(path):
            found[pid] = f"in cgroup {path}"
    needle = str(base).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in found:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmd:
            found[int(entry.name)] = cmd.replace(b"\0", b" ")[:200].decode(errors="replace")
    return {pid: why for pid, why in found.items() if pid not in mine}


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            pid = int(stat[stat.rfind(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def kill_container_processes(base: Path, cgroup_parent: str = "berth", timeout: float = 10) -> None:
    """SIGKILL every process of the containers of a daemon on `base` until none is left, then
    remove their cgroups; DESTROYED_* let the session guard check that nothing survived."""
    from berth.runtime.runtime import kill_verified, remove_cgroup_leaves, thaw_cgroup

    cgroups = container_cgroups_under(base, cgroup_parent)
    DESTROYED_BASES.append(base)
    DESTROYED_CGROUPS.update(cgroups)
    needle = str(base).encode()

    def still_ours(pid: int) -> bool:
        try:
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return False
        return any(line.split(":", 2)[-1] in cgroups for line in lines)

    deadline = time.monotonic() + timeout
    thawed = False
    while found := processes_of(base, cgroups):
        if not thawed:  # a frozen (paused) process dies only once thawed
            for path in cgroups:
                thaw_cgroup(path)
            thawed = True
        for pid in found:
            kill_verified(pid, still_ours)
        if time.monotonic() > deadline:
            break  # the session guard reports them
        time.sleep(0.02)
    for path in cgroups:
        remove_cgroup_leaves(path)


def kill_conmons_under(base: Path) -> None:
    for pid in conmons_under(base):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def mounts_under(base: Path) -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(str(base))]


def unmount_under(base: Path) -> None:
    for target in sorted(mounts_under(base), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False)


def aws_daemon(*flags: str, registry: bool = False) -> BerthDaemon:
    """A daemon (not started) with its AWS endpoint on a free loopback port, and `flags`;
    `registry`: its registry on another one (`registry_addr`)."""
    extra = ("--registry-addr", f"127.0.0.1:{free_port()}") if registry else ()
    return BerthDaemon(extra_args=(*extra, "--aws-addr", f"127.0.0.1:{free_port()}", *flags))


@contextlib.contextmanager
def running_aws_daemon(*flags: str, registry: bool = False, busybox: bool = True) -> Iterator[BerthDaemon]:
    """`aws_daemon(*flags)` started (busybox bootstrapped unless told not to) and destroyed on the
    way out; skips the test unless root."""
    if os.geteuid() != 0:
        import pytest

        pytest.skip("end-to-end tests need root")
    d = aws_daemon(*flags, registry=registry)
    try:
        d.start()
        if busybox:
            d.bootstrap_busybox()
        yield d
    finally:
        d.destroy()


def wait_for(what: str | Callable[[], str], probe: Callable[[], T | None], timeout: float = 20.0,
             every: float = 0.1) -> T:
    """Call `probe` every `every` s until it returns something truthy, and return that; after
    `timeout` s an AssertionError naming `what` (a callable: asked then, for the latest news)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            last = "" if value is None else f" (last: {value!r})"
            raise AssertionError(f"timed out waiting for {what if isinstance(what, str) else what()}{last}")
        time.sleep(every)


def holds_for(what: str | Callable[[], str], probe: Callable[[], object], seconds: float,
              every: float = 0.1) -> None:
    """Call `probe` every `every` s for `seconds` s (once more at the end); each answer must be
    truthy, else an AssertionError naming `what` at once. For tests whose subject is that something
    does not happen (no restart, no probe): an absence shows only over a bounded time."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if not value:
            raise AssertionError(f"no longer {what if isinstance(what, str) else what()} (last: {value!r})")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(every, remaining))


def wait_task(ecs: Any, arn: str, statuses: str | tuple[str, ...], timeout: float = 20.0, every: float = 0.1,
              cluster: str = "default") -> dict[str, Any]:
    """Poll DescribeTasks (boto3 client `ecs`) until task `arn`'s lastStatus is one of `statuses`;
    that task."""
    wanted = (statuses,) if isinstance(statuses, str) else statuses
    last: list[dict[str, Any]] = []

    def probe() -> dict[str, Any] | None:
        last[:] = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"]
        return last[0] if last and last[0]["lastStatus"] in wanted else None

    return wait_for(lambda: f"task {arn} {'/'.join(wanted)}, it is {last[0]['lastStatus'] if last else 'unknown'}",
                    probe, timeout, every)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a test daemon's registry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_tar(path: Path, entries: list[tuple[str, bytes | None, str]]) -> Path:
    """A tar at `path` of (name, data, link) entries: link -> a symlink, data None -> a dir."""
    import io
    import tarfile

    with tarfile.open(path, "w") as tar:
        for name, data, link in entries:
            info = tarfile.TarInfo(name)
            if link:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def drive_pty(env: dict[str, str], argv: list[str], actions: list[tuple[bytes, bytes]], *,
              timeout: float = 30, size: tuple[int, int] | None = None) -> tuple[int | None, bytes]:
    """Run the docker CLI (`argv` after `docker`) on a pty; once the output so far holds a
    trigger, type its keys. Returns the exit code (None after `timeout`) and all the output,
    including what the CLI wrote just before it exited (read after the exit: e.g. "read escape
    sequence" may still be in the pty when the exit is seen)."""
    master, slave = pty.openpty()
    if size is not None:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    proc = subprocess.Popen([DOCKER, *argv], env=env, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out, pending = b"", list(actions)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    break
            if pending and pending[0][0] in out:
                os.write(master, pending.pop(0)[1])
        code = proc.wait(timeout=10)
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the CLI's side is closed and drained
                break
            if not chunk:
                break
            out += chunk
        return code, out
    except subprocess.TimeoutExpired:
        return None, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
