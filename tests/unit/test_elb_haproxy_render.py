"""PlaneConfig → haproxy.cfg: golden snippets per rule, action and health setting, and `haproxy -c`
on the rendered files when haproxy is installed."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from berth.elb._plane import Action, Backend, Condition, Frontend, HealthCheck, PlaneConfig, Rule, Target
from berth.elb.haproxy._render import (
    Paths,
    matcher_regex,
    render,
    server_name,
    structure_key,
    wildcard_regex,
    word,
)
from berth.elb.haproxy.plane import _config_from, _map_health

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
PATHS = Paths("/run/x/stats.sock", "/run/x/servers.state")


def fwd(name: str) -> Action:
    return Action("forward", forward=((name, 1),))


def backend(name: str = "tg-a", **kw: object) -> Backend:
    defaults: dict[str, object] = {"protocol": "HTTP", "targets": (Target("i-1", "10.0.0.1", 8080),),
                                   "health": HealthCheck()}
    defaults.update(kw)
    return Backend(name=name, **defaults)  # type: ignore[arg-type]


def cfg(rules: tuple[Rule, ...] = (), default: Action | None = None, backends: tuple[Backend, ...] | None = None,
        protocol: str = "HTTP") -> PlaneConfig:
    return PlaneConfig(frontends=(Frontend("ln-a", "127.0.0.1", 8080, protocol, rules, default or fwd("tg-a")),),
                       backends=backends if backends is not None else (backend(),))


def text(config: PlaneConfig) -> str:
    return render(config, PATHS)


def valid(config: PlaneConfig, tmp_path: Path) -> None:
    if HAPROXY is None:
        return
    f = tmp_path / "haproxy.cfg"
    f.write_text(text(config))
    proc = subprocess.run([HAPROXY, "-c", "-f", str(f)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_globals_and_defaults() -> None:
    t = text(cfg())
    assert "stats socket /run/x/stats.sock mode 600 level admin expose-fd listeners" in t
    assert "server-state-file /run/x/servers.state" in t
    for line in ("timeout connect 5s", "timeout client 60s", "timeout server 60s", "option redispatch",
                 "load-server-state-from-file global"):
        assert line in t


def test_frontend_and_backend_basics(tmp_path: Path) -> None:
    t = text(cfg())
    assert "frontend ln-a\n    mode http\n    bind 127.0.0.1:8080" in t
    assert "    use_backend tg-a\n" in t
    assert "backend tg-a\n    mode http\n    balance roundrobin" in t
    assert "    server i-1_8080 10.0.0.1:8080 weight 1 check inter 30s rise 5 fall 2" in t
    valid(cfg(), tmp_path)


def test_wildcards() -> None:
    """`$` reaches the config as \\x24 (see `word`), HAProxy's tokenizer turns it back."""
    assert wildcard_regex("/api/*") == "^/api/.*$"
    assert wildcard_regex("/a?c.html") == "^/a.c[.]html$"
    assert re.fullmatch(wildcard_regex("/x+$y"), "/x+$y")
    assert not re.fullmatch(wildcard_regex("/api/*"), "/apix")


def test_word_escapes_what_the_tokenizer_would_eat() -> None:
    assert word('a b"#\\$') == "a\\x20b\\x22\\x23\\x5c\\x24"
    assert word("") == '""'
    assert word("é") == "\\xc3\\xa9"


def test_path_rule(tmp_path: Path) -> None:
    config = cfg(rules=(Rule(10, (Condition("path-pattern", ("/api/*", "/v?/x")),), fwd("tg-a")),))
    t = text(config)
    assert "acl r10_c0 path -m reg ^/api/.*\\x24 ^/v./x\\x24" in t
    assert "http-request set-var(txn.berth_rule) int(10) if !{ var(txn.berth_rule) -m found } r10_c0" in t
    assert "use_backend tg-a if { var(txn.berth_rule) -m int eq 10 }" in t
    valid(config, tmp_path)


def test_every_condition_field(tmp_path: Path) -> None:
    config = cfg(rules=(Rule(1, (
        Condition("host-header", ("*.example.com",)),
        Condition("http-header", ("gold*",), header_name="X-Tier"),
        Condition("http-request-method", ("GET", "POST")),
        Condition("query-string", (), query_pairs=(("version", "v1*"), ("", "beta"))),
        Condition("source-ip", ("10.0.0.0/8", "192.168.1.1/32")),
    ), fwd("tg-a")),))
    t = text(config)
    assert "acl r1_c0 req.hdr(host),field(1,:) -m reg -i ^.*[.]example[.]com\\x24" in t
    assert "acl r1_c1 req.hdr(X-Tier) -m reg -i ^gold.*\\x24" in t
    assert "acl r1_c2 method GET POST" in t
    assert "acl r1_c3 url_param(version) -m reg -i ^v1.*\\x24" in t
    assert "acl r1_c3 query -m reg -i (^|&)([^&=]*=)?beta(&|\\x24)" in t
    assert "acl r1_c4 src 10.0.0.0/8 192.168.1.1/32" in t
    assert "r1_c0 r1_c1 r1_c2 r1_c3 r1_c4" in t
    valid(config, tmp_path)


def test_priority_order_wins_over_haproxy_rule_kinds() -> None:
    """A forward at priority 1 beats a fixed-response at 2 although http-request runs first."""
    config = cfg(rules=(Rule(2, (Condition("path-pattern", ("/*",)),), Action("fixed-response", status_code="404")),
                        Rule(1, (Condition("path-pattern", ("/a",)),), fwd("tg-a"))))
    t = text(config)
    assert t.index("int(1) if") < t.index("int(2) if")
    assert "http-request return status 404 if { var(txn.berth_rule) -m int eq 2 }" in t


def test_fixed_response(tmp_path: Path) -> None:
    config = cfg(default=Action("fixed-response", status_code="503", content_type="application/json",
                                body='{"a": "b#c"}'))
    t = text(config)
    assert ('http-request return status 503 content-type application/json string '
            '{\\x22a\\x22:\\x20\\x22b\\x23c\\x22}') in t
    valid(config, tmp_path)


def test_redirect(tmp_path: Path) -> None:
    config = cfg(default=Action("redirect", status_code="HTTP_301",
                                redirect={"Protocol": "HTTPS", "Port": "443", "Host": "#{host}", "Path": "/#{path}",
                                          "Query": "#{query}"}))
    t = text(config)
    assert ("http-request redirect location https://%[req.hdr(host),field(1,:)]/%[path,bytes(1)]?%[query] "
            "code 301 if { query -m len gt 0 }") in t
    assert "http-request redirect location https://%[req.hdr(host),field(1,:)]/%[path,bytes(1)] code 301" in t
    valid(config, tmp_path)


def test_weighted_forward_with_stickiness(tmp_path: Path) -> None:
    action = Action("forward", forward=(("tg-a", 80), ("tg-b", 20)), stickiness_seconds=300)
    config = cfg(default=action, backends=(backend("tg-a"), backend("tg-b")))
    t = text(config)
    assert "http-request set-var(txn.berth_w0) rand(100)" in t
    assert "use_backend tg-a if { req.cook(AWSALBTG0) -m str tg-a }" in t
    assert "use_backend tg-a if { var(txn.berth_w0) -m int ge 0 } { var(txn.berth_w0) -m int lt 80 }" in t
    assert "use_backend tg-b if { var(txn.berth_w0) -m int ge 80 } { var(txn.berth_w0) -m int lt 100 }" in t
    assert 'Set-Cookie "AWSALBTG0=%[be_name]; Max-Age=300; Path=/"' in t
    valid(config, tmp_path)


def test_health_check_settings(tmp_path: Path) -> None:
    hc = HealthCheck(path="/healthz", port="9000", interval=10, timeout=3, healthy_threshold=3,
                     unhealthy_threshold=4, matcher="200-202,204")
    b = backend(health=hc, slow_start=60, algorithm="least_outstanding_requests", stickiness_seconds=120)
    config = cfg(backends=(b,))
    t = text(config)
    assert "balance leastconn" in t
    assert "timeout check 3s" in t
    assert "option httpchk\n    http-check send meth GET uri /healthz" in t
    assert "http-check expect rstatus ^(200|201|202|204)\\x24" in t
    assert "cookie AWSALB insert indirect nocache maxlife 120s" in t
    assert "server i-1_8080 10.0.0.1:8080 weight 1 check inter 10s rise 3 fall 4 port 9000 slowstart 60s " \
           "cookie i-1_8080" in t
    valid(config, tmp_path)


def test_single_code_matcher_and_tcp_groups(tmp_path: Path) -> None:
    assert "http-check expect status 200" in text(cfg())
    assert matcher_regex("200,202") == "^(200|202)$"
    tcp = cfg(protocol="TCP", backends=(backend(protocol="TCP", health=HealthCheck(protocol="TCP")),))
    t = text(tcp)
    assert "frontend ln-a\n    mode tcp" in t and "backend tg-a\n    mode tcp" in t
    assert "httpchk" not in t
    assert "check inter 30s" in t
    valid(tcp, tmp_path)


def test_disabled_checks_and_draining_targets() -> None:
    b = backend(health=HealthCheck(enabled=False), targets=(Target("i-1", "10.0.0.1", 80, draining=True),))
    t = text(cfg(backends=(b,)))
    assert "server i-1_80 10.0.0.1:80 weight 0\n" in t
    assert "httpchk" not in t


def test_structure_key_ignores_targets_only() -> None:
    base = cfg()
    more = dataclasses.replace(base, backends=(backend(targets=(Target("i-2", "10.0.0.2", 80),)),))
    assert structure_key(base) == structure_key(more)
    other = dataclasses.replace(base, backends=(backend(health=HealthCheck(path="/x")),))
    assert structure_key(base) != structure_key(other)


def test_server_names_are_proxy_safe() -> None:
    assert server_name(Target("10.0.0.1", "10.0.0.1", 80)) == "10.0.0.1_80"
    odd = server_name(Target("a b/c", "10.0.0.1", 80))
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", odd) and odd.startswith("a_b_c_80_")


def test_config_json_round_trip() -> None:
    config = cfg(rules=(Rule(1, (Condition("query-string", (), query_pairs=(("k", "v"),)),),
                             Action("redirect", status_code="HTTP_302", redirect={"Port": "81"})),))
    assert _config_from(dataclasses.asdict(config)) == config


@pytest.mark.parametrize("row, state, reason", [
    (None, "initial", "Elb.RegistrationInProgress"),
    ({"status": "UP", "check_status": "INI"}, "initial", "Elb.RegistrationInProgress"),
    ({"status": "UP", "check_status": "L7OK"}, "healthy", ""),
    ({"status": "UP 1/2", "check_status": "* L4OK"}, "healthy", ""),
    ({"status": "DOWN 1/3", "check_status": "L7OK"}, "initial", "Elb.RegistrationInProgress"),
    ({"status": "DOWN", "check_status": "L7STS", "check_code": "500"}, "unhealthy", "Target.ResponseCodeMismatch"),
    ({"status": "DOWN", "check_status": "L4TOUT"}, "unhealthy", "Target.Timeout"),
    ({"status": "DOWN", "check_status": "L7TOUT"}, "unhealthy", "Target.Timeout"),
    ({"status": "DOWN", "check_status": "L4CON"}, "unhealthy", "Target.FailedHealthChecks"),
    ({"status": "MAINT", "check_status": "L7OK"}, "unused", "Target.NotInUse"),
])
def test_health_mapping(row: dict[str, str] | None, state: str, reason: str) -> None:
    h = _map_health(backend(), Target("i-1", "10.0.0.1", 8080), True, row)
    assert (h.state, h.reason) == (state, reason)


def test_health_mapping_from_the_config() -> None:
    t = Target("i-1", "10.0.0.1", 8080)
    row = {"status": "UP", "check_status": "L7OK"}
    assert _map_health(backend(), dataclasses.replace(t, draining=True), True, row).state == "draining"
    assert _map_health(backend(health=HealthCheck(enabled=False)), t, True, row).state == "unavailable"
    assert _map_health(backend(), t, False, row).state == "unused"


def _pem(tmp_path: Path) -> str:
    """A self-signed certificate and its key in one PEM (what `crt` loads), made with openssl."""
    path = tmp_path / "site.pem"
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    path.write_bytes(crt.read_bytes() + key.read_bytes())
    return str(path)


def test_https_and_tls_frontends_terminate_tls(tmp_path: Path) -> None:
    pem = _pem(tmp_path) if shutil.which("openssl") else "/etc/berth/site.pem"
    redirect = Action("redirect", status_code="HTTP_302", redirect={
        "Protocol": "#{protocol}", "Port": "8443", "Host": "x.test", "Path": "/#{path}", "Query": ""})
    https = PlaneConfig(frontends=(Frontend("ln-a", "127.0.0.1", 8443, "HTTPS", (), redirect, certificate=pem),),
                        backends=(backend(),))
    t = text(https)
    assert f"frontend ln-a\n    mode http\n    bind 127.0.0.1:8443 ssl crt {word(pem)}\n" in t
    assert "redirect location https://x.test:8443/" in t            # #{protocol} of an HTTPS listener
    tls = PlaneConfig(frontends=(Frontend("ln-b", "127.0.0.1", 9443, "TLS", (), fwd("tg-t"), certificate=pem),),
                      backends=(backend("tg-t", protocol="TCP", health=HealthCheck(protocol="TCP")),))
    t = text(tls)
    assert f"frontend ln-b\n    mode tcp\n    bind 127.0.0.1:9443 ssl crt {word(pem)}\n" in t
    assert _config_from(dataclasses.asdict(tls)) == tls
    if shutil.which("openssl"):
        valid(https, tmp_path)
        valid(tls, tmp_path)
