import subprocess
import sys
import time
from pathlib import Path

import pytest

from berth.errors import Unavailable
from berth.network import BridgeConfig
from berth.network._cni import CniRunner, PluginProcesses
from berth.network._cniconfig import bridge_conflist
from berth.network.testing import FakePlugins

CONF = bridge_conflist(BridgeConfig(subnet="10.123.5.0/24", gateway="10.123.5.1"), Path("/ipam"))
RT = {"portMappings": [{"hostPort": 18080, "containerPort": 80, "protocol": "tcp"}]}


def test_add_chains_results_through_the_list() -> None:
    plugins = FakePlugins()
    result = CniRunner(plugins, "/cni").add(CONF, "c1", "/ns/c1", RT)
    assert plugins.commands() == [("bridge", "ADD"), ("portmap", "ADD"), ("firewall", "ADD")]
    bridge_result = plugins.calls[0]
    assert plugins.calls[1].config["prevResult"]["ips"][0]["address"] == "10.123.5.2/24"
    assert plugins.calls[2].config["prevResult"] == plugins.calls[1].config["prevResult"]
    assert result["ips"][0]["address"] == "10.123.5.2/24"
    assert bridge_result.env["CNI_PATH"] == "/cni"


def test_delete_runs_in_reverse_with_cached_result_and_runtime_config() -> None:
    plugins = FakePlugins()
    runner = CniRunner(plugins, "/cni")
    result = runner.add(CONF, "c1", "/ns/c1", RT)
    plugins.calls.clear()
    runner.delete(CONF, "c1", "/ns/c1", RT, result)
    assert plugins.commands() == [("firewall", "DEL"), ("portmap", "DEL"), ("bridge", "DEL")]
    assert all(c.config["prevResult"] == result for c in plugins.calls)
    assert plugins.calls[1].config["runtimeConfig"] == RT


def test_failed_add_deletes_what_was_tried_in_reverse() -> None:
    plugins = FakePlugins(fail={("portmap", "ADD"): "port 18080 busy"})
    with pytest.raises(Unavailable, match="CNI plugin portmap: port 18080 busy"):
        CniRunner(plugins, "/cni").add(CONF, "c1", "/ns/c1", RT)
    assert plugins.commands() == [
        ("bridge", "ADD"),
        ("portmap", "ADD"),
        ("portmap", "DEL"),
        ("bridge", "DEL"),
    ]
    assert plugins.calls[3].config["prevResult"]["ips"][0]["address"] == "10.123.5.2/24"


def test_delete_tries_every_plugin_and_reports_failures() -> None:
    plugins = FakePlugins(fail={("firewall", "DEL"): "iptables busy"})
    with pytest.raises(Unavailable, match="iptables busy"):
        CniRunner(plugins, "/cni").delete(CONF, "c1", "", RT, None)
    assert plugins.commands() == [("firewall", "DEL"), ("portmap", "DEL"), ("bridge", "DEL")]
    assert "prevResult" not in plugins.calls[0].config
    assert plugins.calls[0].env["CNI_NETNS"] == ""


def test_never_uses_check() -> None:
    plugins = FakePlugins()
    runner = CniRunner(plugins, "/cni")
    runner.delete(CONF, "c1", "/ns", RT, runner.add(CONF, "c1", "/ns", RT))
    assert all(c.command != "CHECK" for c in plugins.calls)


# -- PluginProcesses: the real executor, and the plugins a killed daemon leaves running --------

def _plugin(tmp_path: Path, body: str) -> str:
    script = tmp_path / "plugin"
    script.write_text("#!/bin/sh\ncat >/dev/null\n" + body)
    script.chmod(0o755)
    return str(script)


def _wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.01)


def test_plugin_processes_run_the_plugin_and_hold_the_lock_only_meanwhile(tmp_path: Path) -> None:
    lock = tmp_path / "state" / "plugins.lock"
    plugins = PluginProcesses(lock)
    assert plugins(_plugin(tmp_path, 'echo "{\\"cniVersion\\": \\"1.0.0\\"}"'), {}, b"{}") == (
        b'{"cniVersion": "1.0.0"}\n'
    )
    assert PluginProcesses(lock).wait_for_strays(timeout=0) is True
    with pytest.raises(Unavailable, match="CNI plugin plugin: boom"):
        plugins(_plugin(tmp_path, 'echo \'{"code": 11, "msg": "boom"}\'; exit 1'), {}, b"{}")


def test_wait_for_strays_waits_for_a_plugin_that_outlives_its_killed_daemon(tmp_path: Path) -> None:
    """A daemon SIGKILLed mid-ADD: the plugin finishes on its own, and the restarted
    daemon must not DEL (and remove the netns) before it has."""
    lock = tmp_path / "state" / "plugins.lock"
    started, go, done = tmp_path / "started", tmp_path / "go", tmp_path / "done"
    plugin = _plugin(tmp_path, f"touch {started}\nwhile [ ! -e {go} ]; do sleep 0.01; done\n"
                               f"touch {done}\necho '{{}}'\n")
    daemon = subprocess.Popen([sys.executable, "-c", (
        "import sys; from pathlib import Path; from berth.network._cni import PluginProcesses; "
        f"PluginProcesses(Path({str(lock)!r}))({plugin!r}, {{}}, b'{{}}')")])
    try:
        _wait_for(started)
        daemon.kill()
        daemon.wait()
        restarted = PluginProcesses(lock)
        assert restarted.wait_for_strays(timeout=0.2) is False  # the orphan still runs
        go.touch()
        assert restarted.wait_for_strays(timeout=10) is True
        assert done.exists(), "wait_for_strays returned before the plugin finished"
    finally:
        go.touch()
        daemon.kill()
