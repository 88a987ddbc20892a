"""The HAProxy data plane for real: an haproxy master-worker on 127.0.0.1 in front of tiny Python
HTTP backends started here. Every haproxy and backend process started is stopped by PID."""

from __future__ import annotations

import collections
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from berth.elb._plane import Action, Backend, Condition, Frontend, HealthCheck, PlaneConfig, Rule, Target
from berth.elb.haproxy import ConfigRejected, HaproxyPlane
from berth.elb.haproxy._render import server_name
from berth.elb.haproxy._runtime import RuntimeError_, ServerState
from tests.helpers import holds_for, wait_for

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None and not os.path.exists("/usr/sbin/haproxy"),
                                reason="needs haproxy (Debian package haproxy)")

BACKEND = r'''
import sys, time, http.server
from urllib.parse import urlparse, parse_qs
port, name, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        q = parse_qs(urlparse(self.path).query)
        if "mark" in q:  # the test learns the request has arrived
            open(q["mark"][0], "w").close()
        if "sleep" in q:
            time.sleep(float(q["sleep"][0]))
        code = 500 if mode == "500" else 200
        body = name.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
'''

HC = HealthCheck(interval=1, timeout=1, healthy_threshold=2, unhealthy_threshold=2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Backends:
    def __init__(self, workdir: Path) -> None:
        self.script = workdir / "backend.py"
        self.script.write_text(BACKEND)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, mode: str = "ok") -> int:
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(self.script), str(port), name, mode],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)

        def up() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_for(f"backend {name} on {port}", up, timeout=10, every=0.02)
        return port

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def _kill_haproxies_of(run_dir: Path) -> None:
    """Any haproxy whose command line names this run dir, by PID (master, workers, restarts)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if b"haproxy" in argv and str(run_dir).encode() in argv:
            try:
                os.kill(int(entry), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="hx", dir="/tmp"))     # short: unix socket paths
    try:
        yield d
    finally:
        _kill_haproxies_of(d)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def backends(workdir: Path) -> Iterator[Backends]:
    b = Backends(workdir)
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def plane(workdir: Path) -> Iterator[HaproxyPlane]:
    p = HaproxyPlane(workdir / "elb")
    try:
        yield p
    finally:
        p.shutdown()


def get(port: int, path: str = "/", timeout: float = 10) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def forward(name: str) -> Action:
    return Action("forward", forward=((name, 1),))


def simple(port: int, targets: list[Target], health: HealthCheck = HC) -> PlaneConfig:
    return PlaneConfig(frontends=(Frontend("ln-a", "127.0.0.1", port, "HTTP", (), forward("tg-a")),),
                       backends=(Backend("tg-a", "HTTP", tuple(targets), health),))


def healthy(plane: HaproxyPlane, n: int) -> bool:
    return sum(1 for h in plane.health().values() if h.state == "healthy") == n


def test_round_robin_across_three_targets(plane: HaproxyPlane, backends: Backends) -> None:
    ports = [backends.start(n) for n in ("t1", "t2", "t3")]
    lp = free_port()
    plane.apply(simple(lp, [Target(f"t{i + 1}", "127.0.0.1", p) for i, p in enumerate(ports)]))
    wait_for("3 healthy", lambda: healthy(plane, 3), timeout=10)
    seen = collections.Counter(get(lp)[1] for _ in range(30))
    assert seen == {"t1": 10, "t2": 10, "t3": 10}


def test_targets_change_through_the_runtime_api_without_reload_or_failures(plane: HaproxyPlane,
                                                                           backends: Backends) -> None:
    p1, p2, p3 = (backends.start(n) for n in ("t1", "t2", "t3"))
    lp = free_port()
    t1, t2, t3 = Target("t1", "127.0.0.1", p1), Target("t2", "127.0.0.1", p2), Target("t3", "127.0.0.1", p3)
    plane.apply(simple(lp, [t1, t2]))
    wait_for("2 healthy", lambda: healthy(plane, 2), timeout=10)
    worker = plane.supervisor.runtime.worker_pid()

    failures: list[str] = []
    seen: collections.Counter[str] = collections.Counter()
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                status, body = get(lp, timeout=5)
                seen[body] += 1
                if status != 200:
                    failures.append(f"{status} {body}")
            except OSError as e:
                failures.append(repr(e))
            time.sleep(0.005)

    th = threading.Thread(target=client)
    th.start()
    try:
        plane.apply(simple(lp, [t1, t2, t3]))                       # add
        wait_for("t3 serving", lambda: seen["t3"] > 0, timeout=10)
        plane.apply(simple(lp, [t1, Target("t2", "127.0.0.1", p2, draining=True), t3]))   # drain
        assert plane.health()[("tg-a", "t2", p2)].state == "draining"
        before = seen["t2"]
        # no new request may reach the draining target: an absence, so watched for a while
        holds_for("no request reaching the draining t2", lambda: seen["t2"] == before, 0.3, every=0.02)
        plane.apply(simple(lp, [t1, t3]))                           # remove after the delay
        states = plane.supervisor.runtime.servers_state("tg-a")
        assert sorted(s.name for s in states) == sorted([f"t1_{p1}", f"t3_{p3}"])
    finally:
        stop.set()
        th.join()
    assert failures == []
    assert plane.supervisor.runtime.worker_pid() == worker


def test_listener_change_reloads_seamlessly_keeping_a_request_in_flight(plane: HaproxyPlane,
                                                                        backends: Backends) -> None:
    port = backends.start("t1")
    lp, lp2 = free_port(), free_port()
    target = Target("t1", "127.0.0.1", port)
    plane.apply(simple(lp, [target]))
    worker = plane.supervisor.runtime.worker_pid()
    result: list[tuple[int, str]] = []
    arrived = backends.script.parent / "slow-request-arrived"
    th = threading.Thread(target=lambda: result.append(get(lp, f"/?sleep=1.5&mark={quote(str(arrived))}")))
    th.start()
    wait_for("the slow request to reach the backend", arrived.exists, timeout=10, every=0.01)  # before the reload
    config = simple(lp, [target])
    config = PlaneConfig(frontends=config.frontends + (Frontend("ln-b", "127.0.0.1", lp2, "HTTP", (),
                                                                Action("fixed-response", status_code="200",
                                                                       content_type="text/plain", body="new")),),
                         backends=config.backends)
    plane.apply(config)
    assert plane.supervisor.runtime.worker_pid() != worker
    assert get(lp2) == (200, "new")
    assert get(lp)[0] == 200
    th.join()
    assert result == [(200, "t1")]


def test_path_rules_fixed_response_and_weighted_forward(plane: HaproxyPlane, backends: Backends) -> None:
    api, a, b = backends.start("api"), backends.start("a"), backends.start("b")
    lp = free_port()
    config = PlaneConfig(
        frontends=(Frontend("ln-a", "127.0.0.1", lp, "HTTP", (
            Rule(10, (Condition("path-pattern", ("/api/*",)),), forward("tg-api")),
            Rule(5, (Condition("path-pattern", ("/health",)),),
                 Action("fixed-response", status_code="200", content_type="text/plain", body='ok "fine"')),
        ), Action("forward", forward=(("tg-a", 80), ("tg-b", 20)))),),
        backends=(Backend("tg-api", "HTTP", (Target("api", "127.0.0.1", api),), HC),
                  Backend("tg-a", "HTTP", (Target("a", "127.0.0.1", a),), HC),
                  Backend("tg-b", "HTTP", (Target("b", "127.0.0.1", b),), HC)))
    plane.apply(config)
    wait_for("3 healthy", lambda: healthy(plane, 3), timeout=10)
    assert get(lp, "/api/users") == (200, "api")
    assert get(lp, "/health") == (200, 'ok "fine"')
    assert get(lp, "/healthz")[1] in ("a", "b")
    counts: collections.Counter[str] = collections.Counter()
    conn = http.client.HTTPConnection("127.0.0.1", lp, timeout=10)
    for _ in range(1000):
        conn.request("GET", "/x")
        resp = conn.getresponse()
        assert resp.status == 200
        counts[resp.read().decode()] += 1
    conn.close()
    assert 720 <= counts["a"] <= 880, counts
    assert counts["a"] + counts["b"] == 1000


def test_health_states_from_checks(plane: HaproxyPlane, backends: Backends) -> None:
    ok, bad = backends.start("ok"), backends.start("bad", mode="500")
    closed = free_port()
    lp = free_port()
    plane.apply(simple(lp, [Target("ok", "127.0.0.1", ok), Target("bad", "127.0.0.1", bad),
                            Target("gone", "127.0.0.1", closed)]))

    def settled() -> bool:
        h = plane.health()
        return h[("tg-a", "bad", bad)].state == "unhealthy" and h[("tg-a", "gone", closed)].state == "unhealthy" \
            and h[("tg-a", "ok", ok)].state == "healthy"

    wait_for(lambda: f"health settled: {plane.health()}", settled, timeout=15)
    h = plane.health()
    assert h[("tg-a", "bad", bad)].reason == "Target.ResponseCodeMismatch"
    assert "500" in h[("tg-a", "bad", bad)].description
    assert h[("tg-a", "gone", closed)].reason == "Target.FailedHealthChecks"
    assert get(lp) == (200, "ok")


def test_sigkill_restarts_within_a_second(plane: HaproxyPlane, backends: Backends) -> None:
    port = backends.start("t1")
    lp = free_port()
    plane.apply(simple(lp, [Target("t1", "127.0.0.1", port)]))
    master = plane.supervisor.pid
    assert master is not None
    os.kill(master, signal.SIGKILL)
    killed = time.monotonic()
    wait_for("a new master", lambda: plane.supervisor.pid not in (None, master), timeout=1, every=0.01)
    wait_for("serving", lambda: _serves(lp), timeout=1, every=0.01)
    assert time.monotonic() - killed < 1.0
    wait_for("the restart counted", lambda: plane.supervisor.restarts == 1, timeout=5)


def _serves(port: int) -> bool:
    try:
        return get(port, timeout=1)[0] == 200
    except OSError:
        return False


def test_new_plane_adopts_the_running_haproxy(workdir: Path, backends: Backends) -> None:
    port = backends.start("t1")
    lp = free_port()
    config = simple(lp, [Target("t1", "127.0.0.1", port)])
    first = HaproxyPlane(workdir / "elb")
    second: HaproxyPlane | None = None
    try:
        first.apply(config)
        master, worker = first.supervisor.pid, first.supervisor.runtime.worker_pid()
        first.detach()                          # the daemon stops; haproxy goes on serving
        assert get(lp) == (200, "t1")
        second = HaproxyPlane(workdir / "elb")
        assert second.supervisor.pid == master
        assert second.config == config
        wait_for("healthy", lambda: healthy(second, 1), timeout=10)   # type: ignore[arg-type]
        second.apply(config)                    # same config: nothing to reload
        assert second.supervisor.runtime.worker_pid() == worker
        assert second.port_free("127.0.0.1", lp)        # ours, for that frontend
    finally:
        (second or first).shutdown()


def test_refused_config_keeps_the_old_one_serving(plane: HaproxyPlane, backends: Backends) -> None:
    port = backends.start("t1")
    lp = free_port()
    plane.apply(simple(lp, [Target("t1", "127.0.0.1", port)]))
    bad = PlaneConfig(frontends=(Frontend("ln-a", "127.0.0.1", lp, "HTTP", (), forward("tg-missing")),),
                      backends=())
    with pytest.raises(ConfigRejected):
        plane.apply(bad)
    assert get(lp) == (200, "t1")
    assert plane.config is not None and plane.config.backends[0].name == "tg-a"


def test_port_free_sees_other_listeners(plane: HaproxyPlane) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        assert not plane.port_free("127.0.0.1", taken)
    assert plane.port_free("127.0.0.1", free_port())


def test_a_new_target_gets_no_request_before_its_first_check_passes(plane: HaproxyPlane,
                                                                     backends: Backends) -> None:
    p1, p2 = backends.start("t1"), backends.start("t2")
    lp = free_port()
    t1, t2 = Target("t1", "127.0.0.1", p1), Target("t2", "127.0.0.1", p2)
    plane.apply(simple(lp, [t1]))
    wait_for("t1 healthy", lambda: healthy(plane, 1), timeout=10)
    plane.apply(simple(lp, [t1, t2]))          # added through the runtime API: held DOWN
    assert plane.health()[("tg-a", "t2", p2)].state != "healthy"
    assert {get(lp)[1] for _ in range(20)} == {"t1"}

    def promoted() -> bool:
        plane.promote()                         # what the daemon's ELB loop calls every 50 ms
        return healthy(plane, 2)

    wait_for("t2 healthy after one passing check", promoted, timeout=HC.interval + 3)
    wait_for("t2 serving", lambda: "t2" in {get(lp)[1] for _ in range(10)}, timeout=5)


def _state_in_file(plane: HaproxyPlane, server: str) -> str | None:
    """The operational state (0 down, 2 up) servers.state holds for `server` of tg-a."""
    for line in (plane.run_dir / "servers.state").read_text().splitlines():
        words = line.split()
        if len(words) >= 19 and not line.startswith("#") and words[1] == "tg-a" and words[3] == server:
            return words[5]
    return None


def test_servers_state_follows_health_check_changes_without_an_apply(plane: HaproxyPlane,
                                                                     backends: Backends) -> None:
    """A master restarted after a crash loads servers.state: it must say what the checks said
    last, also when only the checks changed something (no apply, no promotion)."""
    port = backends.start("t1")
    lp = free_port()
    plane.apply(simple(lp, [Target("t1", "127.0.0.1", port)]))
    wait_for("t1 healthy", lambda: healthy(plane, 1), timeout=10)
    name = server_name(Target("t1", "127.0.0.1", port))

    def file_says(state: str) -> bool:
        plane.promote()                         # what the daemon's ELB loop calls every 50 ms
        return _state_in_file(plane, name) == state

    wait_for("servers.state: t1 up", lambda: file_says("2"), timeout=5, every=0.05)
    backends.procs[0].kill()                    # its checks fail: HAProxy takes it down by itself
    backends.procs[0].wait()
    wait_for("t1 down by its checks", lambda: plane.health()[("tg-a", "t1", port)].state == "unhealthy", timeout=15)
    wait_for("servers.state: t1 down", lambda: file_says("0"), timeout=5, every=0.05)
    # a master restarted now (SIGKILL) starts from that file: t1 stays down, no request is sent to it
    master = plane.supervisor.pid
    assert master is not None
    os.kill(master, signal.SIGKILL)
    wait_for("a new master", lambda: plane.supervisor.pid not in (None, master) and plane.supervisor.running()
             and plane.supervisor.stats_socket.exists(), timeout=5, every=0.01)
    states = {s.name: s.op_state for s in wait_for("the new worker's servers",
                                                   lambda: _servers(plane), timeout=5)}
    assert states[name] == 0


def _servers(plane: HaproxyPlane) -> list[ServerState] | None:
    try:
        return plane.supervisor.runtime.servers_state("tg-a") or None
    except RuntimeError_:
        return None
