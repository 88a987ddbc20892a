"""The seed's registry flow with the docker CLI: login, tag, push, rmi, pull, run.

Run twice: against Debian's docker-registry (distribution 2.8.2) and against berth's own registry
(served by the same daemon), both with htpasswd users. Each target gets a private berth daemon,
since the flow deletes and re-pulls its busybox image.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.helpers import BerthDaemon, api, free_port
from tests.peer_registry import PeerRegistry, htpasswd_line

pytestmark = pytest.mark.root


@dataclass
class Target:
    engine: BerthDaemon
    address: str          # the registry's host:port


@pytest.fixture(scope="module", params=["distribution", "berth"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if os.geteuid() != 0:
        pytest.skip("end-to-end tests need root")
    pytest.importorskip("bcrypt")
    peer = None
    engine = BerthDaemon()
    try:
        if request.param == "distribution":
            peer = PeerRegistry(users={"bob": "s3cret"}).start()
            address = peer.address
        else:
            htpasswd = engine.base / "htpasswd"
            htpasswd.write_text(htpasswd_line("bob", "s3cret") + "\n")
            address = f"127.0.0.1:{free_port()}"
            engine.extra_args = ("--registry-addr", address, "--registry-htpasswd", str(htpasswd))
        engine.start()
        engine.bootstrap_busybox()
        yield Target(engine, address)
    finally:
        engine.destroy()
        if peer is not None:
            peer.destroy()


def test_login_push_rmi_pull_run(target: Target) -> None:
    engine, address = target.engine, target.address
    repo = f"{address}/bob/cats"
    bad = engine.docker("login", "--username", "bob", "--password-stdin", address, input=b"wrong\n")
    assert bad.returncode == 1
    assert f"login attempt to http://{address}/v2/ failed with status: 401 Unauthorized" in bad.stderr

    login = engine.docker("login", "--username", "bob", "--password-stdin", address, input=b"s3cret\n")
    assert login.returncode == 0, login.stderr
    assert "Login Succeeded" in login.stdout

    image_id = engine.docker("images", "-q", "busybox", check=True).stdout.strip()
    engine.docker("tag", image_id, repo, check=True)
    push = engine.docker("push", repo, timeout=120)
    assert push.returncode == 0, push.stderr
    assert f"The push refers to repository [{repo}]" in push.stdout
    assert ": Pushed" in push.stdout
    assert "latest: digest: sha256:" in push.stdout

    again = engine.docker("push", repo, timeout=120)
    assert again.returncode == 0, again.stderr
    final = {}  # layer id -> its last status
    for line in again.stdout.splitlines():
        layer, sep, status = line.partition(": ")
        if sep and len(layer) == 12 and status not in ("Preparing", "Waiting"):
            final[layer] = status
    assert final and set(final.values()) == {"Layer already exists"}, again.stdout

    sibling = f"{address}/bob/dogs"
    engine.docker("tag", image_id, sibling, check=True)
    mounted = engine.docker("push", sibling, timeout=120)
    assert mounted.returncode == 0, mounted.stderr
    assert "Mounted from bob/cats" in mounted.stdout
    engine.docker("rmi", sibling, check=True)

    engine.docker("rmi", repo, "busybox", check=True)
    assert engine.docker("images", "-q", check=True).stdout.strip() == ""

    pull = engine.docker("pull", repo, timeout=120)
    assert pull.returncode == 0, pull.stderr
    assert "latest: Pulling from bob/cats" in pull.stdout
    assert f"Status: Downloaded newer image for {repo}:latest" in pull.stdout
    assert pull.stdout.strip().endswith(f"{repo}:latest")
    inspect = json.loads(engine.docker("image", "inspect", repo, check=True).stdout)[0]
    assert inspect["Id"].startswith(f"sha256:{image_id}")
    assert inspect["RepoDigests"] and inspect["RepoDigests"][0].startswith(f"{repo}@sha256:")

    again = engine.docker("pull", repo, timeout=120)
    assert f"Status: Image is up to date for {repo}:latest" in again.stdout

    digest = inspect["RepoDigests"][0].split("@", 1)[1]
    by_digest = engine.docker("pull", f"{repo}@{digest}", timeout=120)
    assert by_digest.returncode == 0, by_digest.stderr
    assert f"Status: Image is up to date for {repo}@{digest}" in by_digest.stdout

    run = engine.docker("run", "--rm", repo, "echo", "pulled")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "pulled\n"


def test_run_pulls_on_demand(target: Target) -> None:
    engine, address = target.engine, target.address
    repo = f"{address}/bob/cats"
    engine.docker("login", "--username", "bob", "--password-stdin", address, input=b"s3cret\n", check=True)
    if engine.docker("images", "-q", repo).stdout.strip() == "":
        pytest.skip("needs the image pushed by the flow test")
    engine.docker("rmi", "-f", repo, check=True)
    run = engine.docker("run", "--rm", repo, "echo", "on demand", timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"Unable to find image '{repo}:latest' locally" in run.stderr
    assert run.stdout == "on demand\n"


def test_pull_errors(target: Target) -> None:
    engine, address = target.engine, target.address
    missing = engine.docker("pull", f"{address}/bob/nothing-here")
    assert missing.returncode == 1
    assert "Error response from daemon:" in missing.stderr
    unreachable = engine.docker("pull", "127.0.0.1:1/x/y")
    assert unreachable.returncode == 1
    assert "connection refused" in unreachable.stderr
    status, body = api(engine.sock, "POST", f"/images/create?fromImage={address}/bob/nothing&tag=latest",
                       headers={"X-Registry-Auth": "e30"})
    assert status == 404 and "pull access denied" in body["message"] or "not found" in body["message"]


def test_push_unknown_image(target: Target) -> None:
    engine, address = target.engine, target.address
    result = engine.docker("push", f"{address}/bob/never-tagged")
    assert result.returncode == 1
    assert "An image does not exist locally with the tag" in result.stderr


def test_docker_py_login_push_pull(target: Target) -> None:
    docker = pytest.importorskip("docker")
    engine, address = target.engine, target.address
    client = docker.DockerClient(base_url=engine.host)
    try:
        with pytest.raises(docker.errors.APIError) as err:
            client.login(username="bob", password="wrong", registry=address)
        assert err.value.response.status_code == 401
        assert client.login(username="bob", password="s3cret", registry=address)["Status"] == "Login Succeeded"
        auth = {"username": "bob", "password": "s3cret"}
        image = client.images.list()[0]
        image.tag(f"{address}/py/cats", "v1")
        events = list(client.images.push(f"{address}/py/cats", tag="v1", auth_config=auth, stream=True, decode=True))
        assert not [e for e in events if "error" in e], events
        assert events[-1]["aux"]["Tag"] == "v1"
        client.images.remove(f"{address}/py/cats:v1")
        pulled = client.images.pull(f"{address}/py/cats", tag="v1", auth_config=auth)
        assert f"{address}/py/cats:v1" in pulled.tags
    finally:
        client.close()


def test_build_from_pulls_missing_base(target: Target, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """FROM of an image that is only in the registry pulls it (anonymous pull: berth's registry)."""
    if "--registry-addr" not in target.engine.extra_args:
        pytest.skip("the peer registry refuses anonymous pulls")
    engine, address = target.engine, target.address
    base = f"{address}/bob/base"
    engine.docker("login", "--username", "bob", "--password-stdin", address, input=b"s3cret\n", check=True)
    engine.bootstrap_busybox()  # earlier tests of the module remove the local busybox
    engine.docker("tag", "busybox", base, check=True)
    engine.docker("push", base, check=True)
    engine.docker("rmi", base, check=True)
    (tmp_path / "Dockerfile").write_text(f"FROM {base}\nRUN echo built > /built.txt\n")
    build = engine.docker("build", "-t", "from-pulled", str(tmp_path), timeout=120)
    assert build.returncode == 0, build.stderr
    assert "Pulling from bob/base" in build.stdout
    assert engine.docker("run", "--rm", "from-pulled", "cat", "/built.txt").stdout == "built\n"
    engine.docker("rmi", "from-pulled", base)
