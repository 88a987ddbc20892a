"""Representative container records for the inspect / ps JSON golden test (test_api_container_json).

The golden file (golden/container_json.json) was written by the engine's renderer before the JSON
moved to api/docker; the renderer there must keep producing it byte for byte. Only its HostConfig
objects were rewritten since, to dockerd's full shape, when HostConfig became typed (every key the
records were created with kept its value; checked when the file was rewritten).
"""

from __future__ import annotations

from datetime import datetime, timezone

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.engine.containers import Container, ContainerState, EndpointSettings
from berth.engine.containers._stored import config_from_legacy as typed_config
from berth.types.container import EndpointIPAMConfig
from berth.volumes import MountPoint

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=timezone.utc)
RUNTIME = "crun"


def _endpoint(network_id: str, ip: str, mac: str) -> dict[str, object]:
    return {"network_id": network_id, "ip_address": ip, "prefix_len": 24, "gateway": ip.rsplit(".", 1)[0] + ".1",
            "mac_address": mac, "aliases": ["web"], "ifname": "eth1"}


def running_with_ports() -> Container:
    """Default bridge plus a user network, published and exposed-only ports, two mounts, healthy."""
    return Container(
        id="a" * 64, name="web", created="2026-12-07T11:00:00.123456Z", image="nginx:latest",
        image_id="sha256:" + "1" * 64,
        config=typed_config({"Hostname": "aaaaaaaaaaaa", "Cmd": ["nginx", "-g", "daemon off;"],
                             "Entrypoint": ["/docker-entrypoint.sh"], "Env": ["PATH=/usr/bin", "A=b c"],
                             "ExposedPorts": {"80/tcp": {}, "443/tcp": {}, "53/udp": {}},
                             "Labels": {"com.example": "x", "tier": "front"}, "StopSignal": "SIGQUIT",
                             "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000,
                                             "Retries": 2},
                             "Volumes": {"/data": {}}, "WorkingDir": "/srv"}),
        host_config=typed_hc({"NetworkMode": "default", "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                              "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0},
                              "Binds": ["/srv/www:/www:ro"]}),
        endpoints={"app": EndpointSettings(aliases=("web", "www"), network_id="n" * 64,
                                           ipam_config=EndpointIPAMConfig(ipv4_address="172.30.0.9")),
                   "default": EndpointSettings()},
        state=ContainerState(status="running", pid=4242, started_at="2026-12-07T11:59:57.000001Z"),
        network={"mode": "bridge", "netns_path": "/run/berth/netns/aaaa", "ip_address": "10.88.0.5",
                 "prefix_len": 16, "gateway": "10.88.0.1", "mac_address": "02:42:0a:58:00:05",
                 "ports": [{"container_port": 80, "protocol": "tcp", "host_ip": "", "host_port": 8080},
                           {"container_port": 80, "protocol": "tcp", "host_ip": "127.0.0.1", "host_port": 8081}],
                 "endpoints": {"app": _endpoint("n" * 64, "172.30.0.9", "02:42:ac:1e:00:09")},
                 "dns": True, "dns_port": 53000},
        restart_count=2, runtime="",
        mounts=[MountPoint(type="volume", destination="/data", source="/var/lib/berth/volumes/v1/_data",
                           name="v1", anonymous=True).to_record(),
                MountPoint(type="bind", destination="/www", source="/srv/www", rw=False, mode="ro",
                           propagation="rprivate").to_record()],
        health={"Status": "healthy", "FailingStreak": 0,
                "Log": [{"Start": "2026-12-07T11:59:58.000000Z", "End": "2026-12-07T11:59:58.100000Z",
                         "ExitCode": 0, "Output": "ok\n"}]},
    )


def exited_with_health() -> Container:
    """Exited (its health shows unhealthy, as moby's stopped monitor), a recorded network left over."""
    return Container(
        id="b" * 64, name="job", created="2026-12-07T10:00:00Z", image="busybox", image_id="sha256:" + "2" * 64,
        config=typed_config({"Cmd": ["sh", "-c", "exit 3"], "Env": ["PATH=/bin"], "Tty": True,
                             "OpenStdin": True, "Healthcheck": {"Test": ["CMD", "true"]}, "Labels": {}}),
        host_config=typed_hc({"NetworkMode": "bridge", "Runtime": "runc", "AutoRemove": False}),
        state=ContainerState(status="exited", exit_code=3, error="", oom_killed=True,
                             started_at="2026-12-07T10:00:01Z", finished_at="2026-12-07T11:55:00Z"),
        network={"mode": "bridge", "ip_address": "10.88.0.7", "ports": []},
        runtime="crun",
        health={"Status": "healthy", "FailingStreak": 1, "Log": []},
    )


def joined_network() -> Container:
    """`--network container:web`: no network of its own, the joined container's /etc files."""
    return Container(
        id="c" * 64, name="side", created="2026-12-07T11:30:00Z", image="busybox", image_id="sha256:" + "3" * 64,
        config=typed_config({"Hostname": "aaaaaaaaaaaa", "Cmd": ["sleep", "300"],
                             "ExposedPorts": {"9000/tcp": {}}}),
        host_config=typed_hc({"NetworkMode": "container:web"}),
        state=ContainerState(status="running", pid=77, started_at="2026-12-07T11:30:01Z"),
        network={"mode": "container", "container_id": "a" * 64, "netns_path": "/run/berth/netns/aaaa",
                 "etc_dir": "/var/lib/berth/containers/" + "a" * 64, "hostname": "aaaaaaaaaaaa",
                 "domainname": "", "ports": [], "endpoints": {}},
    )


def created_on_user_network() -> Container:
    """Created, never started, on a user network with aliases (compose reads them)."""
    return Container(
        id="d" * 64, name="db", created="2026-12-07T11:58:00Z", image="postgres:16", image_id="sha256:" + "4" * 64,
        config=typed_config({"Cmd": None, "Entrypoint": ["docker-entrypoint.sh"], "Labels": {"svc": "db"},
                             "ExposedPorts": {"5432/tcp": {}}, "Shell": ["/bin/bash", "-c"]}),
        host_config=typed_hc({"NetworkMode": "app"}),
        endpoints={"app": EndpointSettings(aliases=("db", "postgres"), network_id="m" * 64,
                                           links=("web:w",), driver_opts={"k": "v"})},
    )


def paused_host_network() -> Container:
    return Container(
        id="e" * 64, name="host-one", created="2026-12-07T09:00:00Z", image="busybox",
        image_id="sha256:" + "5" * 64,
        config=typed_config({"Cmd": ["top"]}), host_config=typed_hc({"NetworkMode": "host"}),
        state=ContainerState(status="paused", pid=99, started_at="2026-12-07T09:00:01Z"),
        network={"mode": "host", "netns_path": None, "ports": []},
        health={"Status": "starting", "FailingStreak": 0, "Log": []},
    )


SAMPLES = {"running_with_ports": running_with_ports, "exited_with_health": exited_with_health,
           "joined_network": joined_network, "created_on_user_network": created_on_user_network,
           "paused_host_network": paused_host_network}
