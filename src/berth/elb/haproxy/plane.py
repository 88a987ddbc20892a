"""`HaproxyPlane`: the `DataPlane` of the ELBv2 domain, one HAProxy per run dir.

apply() compares the new config with what runs: when only target lists differ (structure key
unchanged) it edits servers through the runtime API (no reload); otherwise it validates a new
haproxy.cfg with `haproxy -c`, renames it into place, saves the servers' states (so health-check
results survive) and reloads seamlessly. Either way it then brings every server's address,
weight and drain state in line through the runtime API.

Health mapping (`health()`), from `show stat` per server:
- target marked draining in the config                    → draining  Target.DeregistrationInProgress
- health checks disabled for its target group              → unavailable Target.HealthCheckDisabled
- target group not used by any listener action             → unused    Target.NotInUse
- server not in the proxy yet / check status INI or empty  → initial   Elb.RegistrationInProgress
- status UP (incl. "UP 1/3", going down) with a check      → healthy
- status DOWN whose last check passed (rising)             → initial   Elb.RegistrationInProgress
- DOWN with L7STS                                          → unhealthy Target.ResponseCodeMismatch
- DOWN with L4TOUT / L6TOUT / L7TOUT                        → unhealthy Target.Timeout
- DOWN with anything else (L4CON, L7RSP, SOCKERR, …)       → unhealthy Target.FailedHealthChecks
- MAINT                                                    → unused    Target.NotInUse
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from berth.elb._plane import (
    Action,
    Backend,
    Condition,
    Frontend,
    HealthCheck,
    PlaneConfig,
    Rule,
    Target,
    TargetHealth,
)
from berth.elb.haproxy._render import Paths, render, server_name, server_options, structure_key, used_backends
from berth.elb.haproxy._runtime import RuntimeError_, ServerState
from berth.elb.haproxy._supervisor import Supervisor

log = logging.getLogger(__name__)

_STATE_FILE = "plane.json"
STATE_POLL = 0.5        # seconds between looks at the servers' run-time state (servers.state)


class HaproxyPlane:
    """The HAProxy data plane. `run_dir` holds haproxy.cfg, haproxy.pid, master.sock, stats.sock,
    servers.state, plane.json (the last applied PlaneConfig) and haproxy.log. A running HAProxy
    found there is adopted; otherwise one starts at the first apply()."""

    def __init__(self, run_dir: Path, *, binary: str | None = None, restart: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.supervisor = Supervisor(self.run_dir, binary=binary, restart=restart)
        self._lock = threading.RLock()
        self._config: PlaneConfig | None = None
        self._key: str | None = None
        self._pending_delete: set[tuple[str, str]] = set()
        # servers added at run time and held DOWN until their first check passes (ELB: a new
        # target needs one passing check); `promote` brings them up
        self._fresh: set[tuple[str, str]] = set()
        self._state_checked = 0.0                  # monotonic time servers.state was last compared
        self._state_mark: tuple[tuple[str, ...], ...] | None = None   # what servers.state holds
        if self.supervisor.adopt():
            self._config = _load(self.run_dir / _STATE_FILE)
            self._key = structure_key(self._config) if self._config is not None else None

    @property
    def paths(self) -> Paths:
        return Paths(stats_socket=str(self.supervisor.stats_socket),
                     state_file=str(self.run_dir / "servers.state"))

    @property
    def config(self) -> PlaneConfig | None:
        return self._config

    # -- DataPlane --

    def apply(self, config: PlaneConfig) -> None:
        with self._lock:
            key = structure_key(config)
            if self.supervisor.running() and key == self._key:
                try:
                    self._reconcile(config)
                except RuntimeError_ as e:
                    log.warning("runtime API update failed (%s): reloading instead", e)
                    self._reload(config)
                else:   # haproxy.cfg lists every server too: a master restarted from it after a crash has them
                    self.supervisor.install(self.supervisor.write_config(render(config, self.paths)))
            else:
                self._reload(config)
            self._config = config
            self._key = key
            _save(self.run_dir / _STATE_FILE, config)
            # a restart after a crash starts from these check results, not from scratch
            self._state_mark = None
            self._save_servers_state()

    def health(self) -> Mapping[tuple[str, str, int], TargetHealth]:
        config = self._config
        if config is None:
            return {}
        stats: dict[tuple[str, str], dict[str, str]] = {}
        if self.supervisor.running():
            try:
                stats = {(row["pxname"], row["svname"]): row for row in self.supervisor.runtime.stat()}
            except RuntimeError_:
                stats = {}
        used = set(used_backends(config))
        out: dict[tuple[str, str, int], TargetHealth] = {}
        for b in config.backends:
            for t in b.targets:
                out[(b.name, t.id, t.port)] = _map_health(b, t, b.name in used, stats.get((b.name, server_name(t))))
        return out

    def promote(self) -> None:
        """Bring up new servers whose first check passed (HAProxy would wait for `rise` checks
        after the DOWN they were added in; ELB counts a new target healthy after one pass), and
        keep servers.state current: every `STATE_POLL` seconds, when a server's state changed at
        run time (its health checks took it down or up), the file is rewritten, so a master
        restarted after a crash starts from what the checks last said.
        Called often (the daemon's ELB loop)."""
        with self._lock:
            if not self.supervisor.running():
                return
            promoted = self._promote_fresh() if self._fresh else False
            now = time.monotonic()
            if promoted or now - self._state_checked >= STATE_POLL:
                self._state_checked = now
                self._save_servers_state()

    def _promote_fresh(self) -> bool:
        """Bring up fresh servers whose first check passed; whether any came up."""
        try:
            rows = {(r["pxname"], r["svname"]): r for r in self.supervisor.runtime.stat()}
        except RuntimeError_:
            return False
        promoted = False
        for key in list(self._fresh):
            row = rows.get(key)
            if row is None:
                self._fresh.discard(key)
                continue
            check = row.get("check_status", "").removeprefix("* ").strip()
            status = row.get("status", "")
            if status.startswith("UP"):
                self._fresh.discard(key)
            elif check in ("L7OK", "L4OK", "L6OK") and status.startswith("DOWN"):
                try:
                    self.supervisor.runtime.checked(f"set server {key[0]}/{key[1]} health up")
                except RuntimeError_ as err:
                    log.warning("could not bring %s/%s up: %s", key[0], key[1], err)
                    continue
                self._fresh.discard(key)
                promoted = True
        return promoted

    def _save_servers_state(self) -> None:
        """Write servers.state when a server's address, port, weight or state differs from what
        the file holds (the timers in it change all the time: they alone do not count)."""
        try:
            text = self.supervisor.runtime.servers_state_text()
        except RuntimeError_:
            return
        mark = _state_mark(text)
        if mark == self._state_mark:
            return
        _atomic_write(self.run_dir / "servers.state", text)
        self._state_mark = mark

    def port_free(self, bind: str, port: int) -> bool:
        config = self._config
        if config is not None and any(f.bind == bind and f.port == port for f in config.frontends):
            return True
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((bind, port))
            except OSError:
                return False
        return True

    # -- lifecycle --

    def detach(self) -> None:
        """Stop supervising, leave HAProxy serving (the next daemon adopts it)."""
        self.supervisor.detach()
        self.supervisor.close_fds()

    def shutdown(self) -> None:
        """Stop HAProxy for real."""
        self.supervisor.stop()
        self.supervisor.close_fds()

    # -- internals --

    def _reload(self, config: PlaneConfig) -> None:
        tmp = self.supervisor.write_config(render(config, self.paths))   # raises ConfigRejected
        previous = self.supervisor.config_path.read_text() if self.supervisor.config_path.exists() else None
        if self.supervisor.running():
            try:
                state = self.supervisor.runtime.servers_state_text()
                _atomic_write(self.run_dir / "servers.state", state)
            except RuntimeError_:
                pass
        if not (self.run_dir / "servers.state").exists():
            _atomic_write(self.run_dir / "servers.state", "1\n")
        self.supervisor.install(tmp)
        try:
            self.supervisor.reload() if self.supervisor.running() else self.supervisor.start()
        except Exception:
            if previous is not None:
                _atomic_write(self.supervisor.config_path, previous)
            raise
        self._reconcile(config)

    def _reconcile(self, config: PlaneConfig) -> None:
        """Make every server's presence, address, weight and drain state match `config`."""
        rt = self.supervisor.runtime
        actual: dict[tuple[str, str], ServerState] = {(s.backend, s.name): s for s in rt.servers_state()}
        wanted: set[tuple[str, str]] = set()
        for b in config.backends:
            for t in b.targets:
                name = server_name(t)
                wanted.add((b.name, name))
                current = actual.get((b.name, name))
                weight = 0 if t.draining else max(0, min(t.weight, 256))
                if current is None:
                    if t.draining:
                        continue     # never served here: nothing to drain
                    rt.add_server(b.name, name, t.address, t.port, server_options(b, t))
                    if b.health.enabled:
                        rt.enable_health(b.name, name)
                    rt.enable_server(b.name, name)
                    if b.health.enabled:
                        # leaving maintenance makes it UP; DOWN until its first check passes, as ELB
                        rt.mark_down(b.name, name)
                        self._fresh.add((b.name, name))
                    continue
                if (current.address, current.port) != (t.address, t.port):
                    rt.set_addr(b.name, name, t.address, t.port)
                if t.draining:
                    if not current.draining:
                        rt.set_state(b.name, name, "drain")
                    continue
                if current.in_maint or current.draining:
                    rt.set_state(b.name, name, "ready")
                if current.weight != weight:
                    rt.set_weight(b.name, name, weight)
        backends = {b.name for b in config.backends}
        for (be, name), s in actual.items():
            if (be, name) in wanted or be not in backends:
                continue
            if not s.in_maint:
                rt.set_state(be, name, "maint")
            try:
                rt.del_server(be, name)
                self._pending_delete.discard((be, name))
            except RuntimeError_ as e:
                log.info("server %s/%s kept in maintenance: %s", be, name, e)
                self._pending_delete.add((be, name))


def _state_mark(text: str) -> tuple[tuple[str, ...], ...]:
    """What matters of `show servers state` for a restart: per server its backend, name, address,
    operational and administrative state, weights and port (not the timers and check counters)."""
    rows = []
    for line in text.splitlines():
        words = line.split()
        if line.startswith("#") or len(words) < 19:
            continue
        rows.append((words[1], words[3], words[4], words[5], words[6], words[7], words[8], words[18]))
    return tuple(sorted(rows))


def _map_health(b: Backend, t: Target, used: bool, row: dict[str, str] | None) -> TargetHealth:
    if t.draining:
        return TargetHealth("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")
    if not b.health.enabled:
        return TargetHealth("unavailable", "Target.HealthCheckDisabled", "Health checks are disabled")
    if not used:
        return TargetHealth("unused", "Target.NotInUse", "Target group is not configured to receive traffic "
                            "from the load balancer")
    if row is None:
        return TargetHealth("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
    status = row.get("status", "")
    check = row.get("check_status", "").removeprefix("* ").strip()
    if status.startswith("MAINT"):
        return TargetHealth("unused", "Target.NotInUse", "Target is in maintenance")
    if check in ("", "INI", "UNK"):
        return TargetHealth("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
    if status.startswith(("UP", "NOLB", "DRAIN")):
        return TargetHealth("healthy")
    if check in ("L4OK", "L6OK", "L7OK", "L7OKC"):
        return TargetHealth("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
    if check == "L7STS":
        code = row.get("check_code", "")
        return TargetHealth("unhealthy", "Target.ResponseCodeMismatch",
                            f"Health checks failed with these codes: [{code}]")
    if check in ("L4TOUT", "L6TOUT", "L7TOUT"):
        return TargetHealth("unhealthy", "Target.Timeout", "Request timed out")
    return TargetHealth("unhealthy", "Target.FailedHealthChecks", "Health checks failed")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(text)
    os.replace(tmp, path)


# -- PlaneConfig ⇄ JSON (what the next daemon's plane reads back when it adopts HAProxy) --

def _save(path: Path, config: PlaneConfig) -> None:
    _atomic_write(path, json.dumps(dataclasses.asdict(config)))


def _load(path: Path) -> PlaneConfig | None:
    try:
        data = json.loads(path.read_text())
        return _config_from(data)
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("cannot read %s: %s", path, e)
        return None


def _action(d: dict[str, Any]) -> Action:
    return Action(type=d["type"], forward=tuple((n, int(w)) for n, w in d["forward"]),
                  stickiness_seconds=d["stickiness_seconds"], status_code=d["status_code"],
                  content_type=d["content_type"], body=d["body"], redirect=d["redirect"])


def _config_from(d: dict[str, Any]) -> PlaneConfig:
    frontends = tuple(
        Frontend(name=f["name"], bind=f["bind"], port=f["port"], protocol=f["protocol"], default=_action(f["default"]),
                 certificate=f.get("certificate", ""),
                 rules=tuple(Rule(priority=r["priority"], action=_action(r["action"]), conditions=tuple(
                     Condition(field=c["field"], values=tuple(c["values"]), header_name=c["header_name"],
                               query_pairs=tuple((k, v) for k, v in c["query_pairs"]))
                     for c in r["conditions"])) for r in f["rules"]))
        for f in d["frontends"])
    backends = tuple(
        Backend(name=b["name"], protocol=b["protocol"], health=HealthCheck(**b["health"]),
                targets=tuple(Target(**t) for t in b["targets"]), algorithm=b["algorithm"],
                slow_start=b["slow_start"], stickiness_seconds=b["stickiness_seconds"])
        for b in d["backends"])
    return PlaneConfig(frontends=frontends, backends=backends)
