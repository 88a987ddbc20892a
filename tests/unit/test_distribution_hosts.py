"""Where registries are reached: loopback and insecure registries, mirrors."""

from __future__ import annotations

import pytest

from berth.engine.distribution import login_domain, pull_reference
from berth.errors import InvalidArgument
from berth.images.distribution import Endpoint, RegistryHosts, is_loopback, validate_insecure, validate_mirror


@pytest.mark.parametrize("domain", ["127.0.0.1:5000", "127.9.9.9", "localhost:5000", "localhost", "[::1]:5000"])
def test_loopback_is_plain_http_first(domain: str) -> None:
    assert is_loopback(domain)
    endpoints = RegistryHosts().endpoints(domain)
    assert endpoints[0] == Endpoint(f"http://{domain}")
    assert endpoints[1].url.startswith("https://") and not endpoints[1].verify_tls


def test_secure_registry_is_https_only() -> None:
    assert RegistryHosts().endpoints("registry.example:443") == [Endpoint("https://registry.example:443")]
    assert not is_loopback("10.0.0.1:5000")


def test_insecure_by_name_and_by_cidr() -> None:
    hosts = RegistryHosts(insecure=("reg.lan:5000", "10.1.0.0/16"))
    assert hosts.endpoints("reg.lan:5000") == [Endpoint("https://reg.lan:5000", verify_tls=False),
                                               Endpoint("http://reg.lan:5000")]
    assert hosts.is_insecure("10.1.2.3:5000")
    assert not hosts.is_insecure("10.2.0.1:5000")
    assert hosts.insecure_cidrs() == ["127.0.0.0/8", "::1/128", "10.1.0.0/16"]


def test_mirrors_only_for_docker_hub_pulls() -> None:
    hosts = RegistryHosts(mirrors=("http://127.0.0.1:6000/",))
    # The default registry is reached only through mirrors: berth never dials a public registry.
    assert [e.url for e in hosts.endpoints("docker.io")] == ["http://127.0.0.1:6000"]
    assert hosts.endpoints("docker.io")[0].mirror
    assert hosts.endpoints("docker.io", pull=False) == []
    assert RegistryHosts().endpoints("docker.io") == []
    assert all(not e.mirror for e in hosts.endpoints("127.0.0.1:5000"))


@pytest.mark.parametrize("bad", ["ftp://x", "http://x/path", "127.0.0.1:5000"])
def test_invalid_mirrors(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_mirror(bad)


def test_insecure_entry_must_not_have_a_scheme() -> None:
    with pytest.raises(InvalidArgument):
        validate_insecure("http://reg:5000")
    assert validate_insecure("reg:5000") == "reg:5000"


@pytest.mark.parametrize(("address", "domain"), [
    ("127.0.0.1:5000", "127.0.0.1:5000"), ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
    ("https://x.docker.io/v1/", "docker.io"), ("", "docker.io"), ("localhost:5000", "localhost:5000"),
])
def test_login_domain(address: str, domain: str) -> None:
    assert login_domain(address) == domain


def test_pull_reference_takes_tag_or_digest() -> None:
    assert str(pull_reference("127.0.0.1:5000/bob/cats", "v1")) == "127.0.0.1:5000/bob/cats:v1"
    digest = "sha256:" + "a" * 64
    assert pull_reference("127.0.0.1:5000/bob/cats", digest).digest == digest
    assert str(pull_reference("docker.io/library/busybox", "latest")) == "docker.io/library/busybox:latest"
