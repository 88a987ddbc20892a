"""Crash safety of create and start (issue 11 §2): SIGKILL the daemon 10–120 ms into
`docker run -d -p …`, twenty times at delays spread over that range, restart it each time, and
check that every kill ends in one of two states:

- no container, or
- a container whose recorded state matches what runs:
  running -> its process runs under its conmon, its netns, lease, iptables rules and published
             port are there and the port answers;
  created (or exited) -> nothing of it runs, no bundle, netns, lease, attachment record or
             iptables rule is left, and `docker start` works (then it is checked as running).

Besides the container, nothing else may be left: every process under the daemon's base belongs
to a running container, and every netns, lease and per-container iptables rule of the daemon's
subnet to a running container or to a spare namespace of the pool.

The delay before the kill is the experiment's variable, not a wait for a condition, so it is a
plain sleep; everything after it waits on conditions with deadlines.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import DOCKER, BerthDaemon, api, container_cgroups_under, free_port, processes_of, wait_for

pytestmark = pytest.mark.root

KILLS = 20
DELAYS_MS = tuple(round(10 + i * 110 / (KILLS - 1)) for i in range(KILLS))  # 10, 16, … 120
HTTPD = ("busybox", "httpd", "-f", "-p", "80", "-h", "/etc")


@dataclass
class Facts:
    """What the host has of one daemon: the network's files and rules, and processes."""

    records: dict[str, dict[str, object]] = field(default_factory=dict)  # attachment records
    netns: set[str] = field(default_factory=set)                       # files under run/netns/netns
    leases: dict[str, str] = field(default_factory=dict)               # ip -> owner (CNI id)
    rules: list[str] = field(default_factory=list)                      # iptables rules of the subnet
    dnat: list[str] = field(default_factory=list)                       # DNAT rules of the port
    processes: dict[int, str] = field(default_factory=dict)


def _facts(d: BerthDaemon, port: int) -> Facts:
    facts = Facts()
    for path in (d.root / "network" / "attachments").glob("*.json"):
        facts.records[path.stem] = json.loads(path.read_text())
    netns_dir = d.run_root / "netns" / "netns"
    facts.netns = {p.name for p in netns_dir.iterdir()} if netns_dir.exists() else set()
    for ipam in (d.root / "network" / "ipam").glob("*"):
        for lease in ipam.iterdir():
            if _is_ip(lease.name):
                # host-local creates the file, then writes the owner: an empty file is one being
                # written (a background spare), so it counts as nobody's until the next look
                try:
                    lines = lease.read_text().splitlines()
                except FileNotFoundError:  # released between the listing and the read
                    continue
                facts.leases[lease.name] = lines[0].strip() if lines else "(empty lease file)"
    subnet = ipaddress.ip_network(d.subnet)
    for table in ("nat", "filter"):
        for line in subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True).stdout.splitlines():
            ips = [_address(w) for w in line.split() if _is_ip(_address(w))]
            if any(ipaddress.ip_address(ip) in subnet for ip in ips) and f"{d.subnet}" not in line:
                facts.rules.append(f"{table}: {line}")
            if table == "nat" and "DNAT" in line and f"{port}" in line.split("--dport")[-1].split()[:1]:
                facts.dnat.append(line)
    cgroups = container_cgroups_under(d.base)
    daemon_pid = d.proc.pid if d.proc is not None else -1
    facts.processes = {pid: why for pid, why in processes_of(d.base, cgroups).items() if pid != daemon_pid}
    return facts


def _netns_inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except OSError:
        return -1


def _address(word: str) -> str:
    """`10.0.0.2/32` or `10.0.0.2:80` -> `10.0.0.2`."""
    return word.split("/")[0].split(":")[0]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _get(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/passwd", timeout=2) as resp:
            return int(resp.status)
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _owner_of(why: str, pid: int, d: BerthDaemon) -> str | None:
    """The container id a leftover process belongs to (by cgroup or by the bundle it names)."""
    if why.startswith("in cgroup /"):
        return why.rsplit("/", 1)[-1]
    bundle = os.fsencode(d.run_root / "runtime") + b"/"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    for word in argv:  # conmon also names the runtime (`-r <run>/runtime/crun-cgroup-mask`)
        name = os.fsdecode(word[len(bundle):].split(b"/", 1)[0]) if word.startswith(bundle) else ""
        if len(name) == 64:
            return name
    return None


def _problems(d: BerthDaemon, port: int, running: dict[str, dict[str, object]]) -> list[str]:
    """Whatever does not match (`running` = inspect of the containers berth says run). The
    spare pool fills in the background after a restart (a netns a moment before its record, a
    fork of the daemon a moment before its exec), so the host facts are asked again until they
    match or 15 s passed; then a running container's port must answer."""
    problems: list[str] = []

    def settled() -> bool:
        problems[:] = _host_problems(d, port, running)
        return not problems
    try:
        wait_for("the host state to match", settled, timeout=15, every=0.2)
    except AssertionError:
        pass
    for cid in running:
        try:
            wait_for(f"port {port} of {cid[:12]} to answer", lambda: _get(port) == 200, timeout=20)
        except AssertionError as err:
            problems.append(str(err))
    return problems


def _host_problems(d: BerthDaemon, port: int, running: dict[str, dict[str, object]]) -> list[str]:
    facts = _facts(d, port)
    problems: list[str] = []
    owned_cni = {str(r.get("cni_id") or cid) for cid, r in facts.records.items()
                 if cid.startswith("spare-") or cid in running}
    for cid in facts.records:
        if not cid.startswith("spare-") and cid not in running:
            problems.append(f"attachment record of {cid[:12]}, which does not run")
    for name in facts.netns:
        if name not in owned_cni:
            problems.append(f"netns {name} belongs to nothing that runs")
    for ip, owner in facts.leases.items():
        if owner not in owned_cni:
            problems.append(f"lease {ip} of {owner[:18]} belongs to nothing that runs")
    owned_ips = {str(r["result"]["ips"][0]["address"]).split("/")[0]  # type: ignore[index]
                 for cid, r in facts.records.items()
                 if str(r.get("cni_id") or cid) in owned_cni and r.get("result")}
    for rule in facts.rules:
        if not any(f"{ip}/32" in rule or f"{ip}:" in rule for ip in owned_ips):
            problems.append(f"iptables rule of nothing that runs: {rule}")
    for pid, why in facts.processes.items():
        owner = _owner_of(why, pid, d)
        if owner not in running:
            problems.append(f"process {pid} ({why[:120]}) of {str(owner)[:12]}, which berth does not run")
    if not running and facts.dnat:
        problems.append(f"DNAT rules for port {port} with no container running: {facts.dnat}")
    for cid, info in running.items():
        problems += _running_problems(d, port, cid, info, facts)
    return problems


def _running_problems(d: BerthDaemon, port: int, cid: str, info: dict[str, object], facts: Facts) -> list[str]:
    state = info["State"]
    assert isinstance(state, dict)
    pid = int(state["Pid"])
    problems = []
    if pid <= 0 or not _alive(pid):
        problems.append(f"{cid[:12]} is recorded running with pid {pid}, which does not run")
    conmon = d.run_root / "runtime" / cid / "conmon.pid"
    if not conmon.exists() or not _alive(int(conmon.read_text())):
        problems.append(f"{cid[:12]} is recorded running without a conmon")
    record = facts.records.get(cid)
    if record is None or not record.get("result"):
        return [*problems, f"{cid[:12]} runs without an attachment record"]
    if Path(str(record["netns"])).name not in facts.netns:
        problems.append(f"{cid[:12]} runs without its netns file")
    elif pid > 0 and _netns_inode(f"/proc/{pid}/ns/net") != _netns_inode(str(record["netns"])):
        addresses = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-o", "-4", "addr"],
                                   capture_output=True, text=True).stdout.split("\n")
        problems.append(f"{cid[:12]} runs in another netns than its recorded one (it has {addresses})")
    settings = info["NetworkSettings"]
    assert isinstance(settings, dict)
    ip = str(record["result"]["ips"][0]["address"]).split("/")[0]  # type: ignore[index]
    if settings.get("IPAddress") != ip:
        problems.append(f"{cid[:12]}: inspect says IP {settings.get('IPAddress')!r}, the network {ip}")
    if facts.leases.get(ip) != str(record.get("cni_id") or cid):
        problems.append(f"{cid[:12]}: no lease for {ip}")
    if not any(f"{ip}:80" in rule for rule in facts.dnat):
        problems.append(f"{cid[:12]}: no DNAT of port {port} to {ip}:80 ({facts.dnat})")
    ports = settings.get("Ports") or {}
    assert isinstance(ports, dict)
    if [b.get("HostPort") for b in ports.get("80/tcp") or []][:1] != [str(port)]:
        problems.append(f"{cid[:12]}: port {port} not in inspect's Ports ({ports})")
    return problems


def _settle(d: BerthDaemon, port: int, kill: int) -> tuple[str, list[str]]:
    """After a restart: the outcome (none / running / created→started / exited→started) and
    the problems found, before and after `docker start` of a container that does not run."""
    status, items = api(d.sock, "GET", "/containers/json?all=1")
    assert status == 200, items
    if not items:
        return "none", _problems(d, port, {})
    if len(items) > 1:
        return "several", [f"kill {kill}: {len(items)} containers from one docker run"]
    cid = items[0]["Id"]
    info = json.loads(d.docker("inspect", cid, check=True).stdout)[0]
    outcome = info["State"]["Status"]
    if info["State"]["Running"]:
        return outcome, _problems(d, port, {cid: info})
    problems = _problems(d, port, {})
    if info["State"]["Pid"]:
        problems.append(f"{cid[:12]} is {outcome} with pid {info['State']['Pid']}")
    started = d.docker("start", cid)
    if started.returncode != 0:
        return outcome, [*problems, f"docker start {cid[:12]} ({outcome}) failed: {started.stderr.strip()}"]
    info = json.loads(d.docker("inspect", cid, check=True).stdout)[0]
    return f"{outcome}->started", problems + _problems(d, port, {cid: info})


def _clean(d: BerthDaemon, port: int) -> None:
    """Remove every container and wait until its network state has gone too."""
    d.remove_all_containers()

    def clean() -> bool:
        facts = _facts(d, port)
        return not facts.dnat and not [c for c in facts.records if not c.startswith("spare-")]
    wait_for("the containers' network state to go", clean, timeout=30)


def test_sigkill_during_docker_run_leaves_consistent_state(private: BerthDaemon) -> None:
    d = private
    port = free_port()
    outcomes: list[str] = []
    failures: list[str] = []
    for kill, delay in enumerate(DELAYS_MS):
        run = subprocess.Popen([DOCKER, "run", "-d", "--name", f"crash{kill}", "-p", f"{port}:80", *HTTPD],
                               env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay / 1000)  # where in create/start the kill lands: the experiment's variable
        d.kill()
        run.communicate(timeout=60)
        d.start()
        outcome, problems = _settle(d, port, kill)
        outcomes.append(f"{delay}ms:{outcome}")
        failures += [f"kill {kill} at {delay} ms ({outcome}): {p}" for p in problems]
        if problems and os.environ.get("BERTH_CRASH_DEBUG"):
            with open(os.environ["BERTH_CRASH_DEBUG"], "a") as f:
                f.write(f"=== kill {kill} at {delay} ms: {problems}\n{(d.base / 'daemon.log').read_text()[-30000:]}\n")
        _clean(d, port)
    print("outcomes:", " ".join(outcomes))
    assert not failures, "\n".join(failures)
    # the daemon's state is whole again: a fresh run publishes the same port
    d.docker("run", "-d", "--name", "after", "-p", f"{port}:80", *HTTPD, check=True)
    wait_for(f"port {port} to answer", lambda: _get(port) == 200, timeout=20)
    d.docker("rm", "-f", "after", check=True)



def test_an_exit_while_the_daemon_is_down_keeps_its_own_time(private: BerthDaemon) -> None:
    """FinishedAt of a container that exited while no daemon ran is when it exited (conmon's
    exit file), not when the next daemon noticed."""
    import datetime as dt
    import signal

    d = private
    cid = d.docker("run", "-d", "busybox", "sleep", "3600", check=True).stdout.strip()
    pid = json.loads(d.docker("inspect", cid, check=True).stdout)[0]["State"]["Pid"]
    d.kill()
    os.kill(pid, signal.SIGKILL)
    exit_file = d.run_root / "runtime" / "exits" / cid
    wait_for("conmon's exit file", exit_file.exists, timeout=20)
    exited = exit_file.stat().st_mtime
    # the gap between the exit and the restart is the experiment's variable: a plain sleep
    time.sleep(1.5)
    restarted = time.time()
    d.start()
    state = wait_for("the exit recorded", lambda: (lambda s: s if s["Status"] == "exited" else None)(
        json.loads(d.docker("inspect", cid, check=True).stdout)[0]["State"]), timeout=30)
    finished = dt.datetime.fromisoformat(state["FinishedAt"].replace("Z", "+00:00")).timestamp()
    assert abs(finished - exited) < 0.01 and finished < restarted, (state["FinishedAt"], exited, restarted)
    assert state["ExitCode"] == 137
    d.docker("rm", cid, check=True)

if os.geteuid() != 0:  # pragma: no cover - the module is root-only
    pytestmark = [pytestmark, pytest.mark.skip(reason="end-to-end tests need root")]
