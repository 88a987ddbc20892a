"""`berth run` flags -> the create body docker-cli would send (reference §3.6)."""

import pytest

from berth.cli.main import build_parser
from berth.cli.runconfig import create_body


def body_for(*argv: str, environ: dict | None = None, console=(30, 100)) -> dict:
    args = build_parser().parse_args(["run", *argv])
    return create_body(args, environ or {}, console)


def test_interactive_tty_run() -> None:
    body = body_for("-t", "-i", "-p", "80:80", "containerofcats", "sh")
    assert body["AttachStdin"] and body["AttachStdout"] and body["AttachStderr"]
    assert body["Tty"] and body["OpenStdin"] and body["StdinOnce"]
    assert body["Cmd"] == ["sh"] and body["Entrypoint"] is None and body["Env"] is None
    assert body["Image"] == "containerofcats"
    assert body["ExposedPorts"] == {"80/tcp": {}}
    host = body["HostConfig"]
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "80"}]}
    assert host["ConsoleSize"] == [30, 100]
    assert host["NetworkMode"] == "default"
    assert host["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"default": {}}}


def test_detached_run() -> None:
    body = body_for("-d", "--name", "web", "-p", "8080:80", "-e", "A=b", "containerofcats")
    assert not any(body[k] for k in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce"))
    assert body["Env"] == ["A=b"] and body["Cmd"] is None
    assert body["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"] == "8080"
    assert body["HostConfig"]["ConsoleSize"] == [0, 0]


def test_rm_run_keeps_command_after_image_verbatim() -> None:
    body = body_for("--rm", "busybox", "sh", "-c", "echo -d --rm")
    assert body["HostConfig"]["AutoRemove"] is True
    assert body["Cmd"] == ["sh", "-c", "echo -d --rm"]
    assert body["ExposedPorts"] == {} and body["HostConfig"]["PortBindings"] == {}


def test_resources_and_identity_flags() -> None:
    body = body_for("-m", "64m", "--cpus", "0.5", "--pids-limit", "20", "-h", "box", "-u", "1000:1000",
                    "-w", "/tmp", "--entrypoint", "/bin/sh", "--network", "none", "-l", "a=b", "-P",
                    "-v", "/data:/data:ro", "-v", "/anon", "--restart", "on-failure:2", "busybox")
    host = body["HostConfig"]
    assert host["Memory"] == 64 << 20 and host["NanoCpus"] == 500_000_000 and host["PidsLimit"] == 20
    assert body["Hostname"] == "box" and body["User"] == "1000:1000" and body["WorkingDir"] == "/tmp"
    assert body["Entrypoint"] == ["/bin/sh"] and body["Labels"] == {"a": "b"}
    assert host["NetworkMode"] == "none" and body["NetworkingConfig"]["EndpointsConfig"] == {"none": {}}
    assert host["PublishAllPorts"] is True
    assert host["Binds"] == ["/data:/data:ro"] and body["Volumes"] == {"/anon": {}}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}


def test_empty_entrypoint_resets() -> None:
    assert body_for("--entrypoint", "", "busybox")["Entrypoint"] == [""]


def test_env_file_then_flags(tmp_path) -> None:
    path = tmp_path / "env"
    path.write_text("A=1\nHOME\n")
    body = body_for("--env-file", str(path), "-e", "B=2", "-e", "USER", "busybox", environ={"HOME": "/h", "USER": "u"})
    assert body["Env"] == ["A=1", "HOME=/h", "B=2", "USER=u"]


def test_rm_with_restart_conflicts() -> None:
    with pytest.raises(ValueError, match="conflicting options"):
        body_for("--rm", "--restart", "always", "busybox")


def test_bad_memory_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["run", "-m", "lots", "busybox"])
    assert exit_info.value.code == 125
    assert "invalid size: 'lots'" in capsys.readouterr().err
