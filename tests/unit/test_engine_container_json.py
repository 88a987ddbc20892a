from __future__ import annotations

from datetime import datetime, timedelta, timezone

from berth.api.docker import container_json as cj
from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine.containers import ContainerSnapshot, matches_filters, snapshot_of
from berth.engine.containers._stored import config_from_legacy as typed_config
from berth.engine.containers._model import Container, ContainerState
from berth.types.durations import human_duration


def make(status: str = "running", **state: object) -> Container:
    now = datetime.now(timezone.utc)
    c = Container(id="f" * 64, name="web", created=now.isoformat(), image="busybox", image_id="sha256:" + "1" * 64,
                  config=typed_config({"Cmd": ["httpd", "-f"], "Entrypoint": None, "ExposedPorts": {"80/tcp": {}},
                                      "Labels": {"a": "b"}}),
                  host_config=typed_hc({"NetworkMode": "default"}),
                  state=ContainerState(status=status, **state))  # type: ignore[arg-type]
    c.network = {"ip_address": "10.0.0.2", "gateway": "10.0.0.1", "prefix_len": 24, "mac_address": "",
                 "netns_path": "/x", "ports": [{"container_port": 80, "protocol": "tcp", "host_ip": "", "host_port": 8080}]}
    return c


def snap(c: Container) -> ContainerSnapshot:
    return snapshot_of(c, dir="/r", log_path="/r/ctr.log", default_runtime="")


def test_human_duration() -> None:
    assert human_duration(0.2) == "Less than a second"
    assert human_duration(5) == "5 seconds"
    assert human_duration(61) == "About a minute"
    assert human_duration(3 * 3600) == "3 hours"


def test_status_text() -> None:
    now = datetime.now(timezone.utc)
    up = make(started_at=(now - timedelta(seconds=3)).isoformat())
    assert cj.status_text(snap(up), now) == "Up 3 seconds"
    done = make("exited", exit_code=3, finished_at=(now - timedelta(minutes=5)).isoformat())
    assert cj.status_text(snap(done), now) == "Exited (3) 5 minutes ago"
    assert cj.status_text(snap(make("created"))) == "Created"


def test_list_item_shape() -> None:
    item = cj.list_item(snap(make()))
    assert item["Names"] == ["/web"] and item["Command"] == "httpd -f"
    assert item["Ports"] == [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]
    assert item["HostConfig"] == {"NetworkMode": "bridge"}


def test_exited_container_hides_ports() -> None:
    item = cj.list_item(snap(make("exited")))
    assert item["Ports"] == [{"PrivatePort": 80, "Type": "tcp"}]


def test_inspect_shape() -> None:
    data = cj.inspect(snap(make()))
    assert data["Name"] == "/web" and data["Path"] == "httpd" and data["Args"] == ["-f"]
    assert data["NetworkSettings"]["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}
    assert data["NetworkSettings"]["IPAddress"] == "10.0.0.2"
    assert data["State"]["Running"] is True and "Config" in data


def test_filters() -> None:
    c = make()
    assert matches_filters(c, {"name": ["we"], "status": ["running"]})
    assert not matches_filters(c, {"status": ["exited"]})
    assert matches_filters(c, {"label": ["a=b"], "ancestor": ["busybox"]})
    assert not matches_filters(c, {"label": ["a=c"]})
    assert matches_filters(c, {"id": ["fff"]})
