"""HTTPS (application) and TLS (network) listeners end to end: a self-signed certificate made here
with openssl, given to CreateListener as `file:///…pem` (certificate and key in one file); clients
verify the listener against that certificate. ACM ARNs, missing files and files without a key are
refused with CertificateNotFound / ValidationError and change nothing in HAProxy."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import requests
from botocore.config import Config

from tests.e2e.elb_support import haproxy_stopped_after
from tests.helpers import free_port, running_aws_daemon, wait_for

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")]


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = f"plain {self.headers.get('X-Forwarded-For', '-')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Path]:
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=berth-test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    both = tmp_path / "site.pem"
    both.write_bytes(crt.read_bytes() + key.read_bytes())
    both.chmod(0o600)
    return {"cert": crt, "key": key, "both": both}


@pytest.fixture
def target() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def _code(call: Any) -> tuple[str, int, str]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Message"]


def test_https_and_tls_listeners_serve_with_a_local_certificate(certs: dict[str, Path], target: int) -> None:
    with running_aws_daemon(busybox=False) as d, haproxy_stopped_after(d):
        elb = d.aws_client("elbv2", config=Config(retries={"max_attempts": 1}))
        cert_arn = f"file://{certs['both']}"
        alb = elb.create_load_balancer(Name="secure", Subnets=["s-1"])["LoadBalancers"][0]["LoadBalancerArn"]
        tg = elb.create_target_group(Name="plain", Protocol="HTTP", Port=target, VpcId="v", TargetType="ip",
                                     HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2
                                     )["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1"}])
        https_port, http_port = free_port(), free_port()
        listener = elb.create_listener(LoadBalancerArn=alb, Protocol="HTTPS", Port=https_port,
                                       Certificates=[{"CertificateArn": cert_arn}],
                                       DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]
        assert listener["Certificates"] == [{"CertificateArn": cert_arn}]
        assert listener["SslPolicy"] == "ELBSecurityPolicy-2016-08" and listener["Protocol"] == "HTTPS"
        # the usual companion: HTTP redirected to HTTPS
        elb.create_listener(LoadBalancerArn=alb, Protocol="HTTP", Port=http_port, DefaultActions=[
            {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": str(https_port),
                                                    "StatusCode": "HTTP_301"}}])
        nlb = elb.create_load_balancer(Name="secure-net", Type="network", Subnets=["s-1"]
                                       )["LoadBalancers"][0]["LoadBalancerArn"]
        tcp = elb.create_target_group(Name="plain-tcp", Protocol="TCP", Port=target, VpcId="v", TargetType="ip",
                                      HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2
                                      )["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tcp, Targets=[{"Id": "127.0.0.1"}])
        tls_port = free_port()
        elb.create_listener(LoadBalancerArn=nlb, Protocol="TLS", Port=tls_port,
                            Certificates=[{"CertificateArn": cert_arn}],
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tcp}])

        def healthy(group: str) -> bool:
            rows = elb.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
            return len(rows) == 1 and rows[0]["TargetHealth"]["State"] == "healthy"
        wait_for("both targets healthy", lambda: healthy(tg) and healthy(tcp), timeout=40)

        verify = str(certs["cert"])
        answer = requests.get(f"https://127.0.0.1:{https_port}/", verify=verify, timeout=10)
        assert (answer.status_code, answer.text) == (200, "plain 127.0.0.1\n")   # HTTP behind, X-Forwarded-For set
        redirected = requests.get(f"http://127.0.0.1:{http_port}/x?y=1", allow_redirects=False, timeout=10)
        assert redirected.status_code == 301
        assert redirected.headers["Location"] == f"https://127.0.0.1:{https_port}/x?y=1"
        answer = requests.get(f"https://127.0.0.1:{tls_port}/", verify=verify, timeout=10)
        assert (answer.status_code, answer.text) == (200, "plain -\n")            # TLS ended, TCP behind
        with pytest.raises(requests.exceptions.SSLError):                          # verification is real
            requests.get(f"https://127.0.0.1:{https_port}/", verify=True, timeout=10)
        curl = subprocess.run(["curl", "-sS", "--cacert", verify, f"https://localhost:{https_port}/"],
                              capture_output=True, text=True, timeout=30)
        assert curl.stdout == "plain 127.0.0.1\n", curl.stderr

        # refused certificates change nothing in HAProxy
        cfg = d.run_root / "elb" / "haproxy.cfg"
        before = cfg.read_bytes()
        no_key = f"file://{certs['cert']}"
        for arn, code, words in [
            ("arn:aws:acm:us-east-1:123456789012:certificate/0f0e", "CertificateNotFound", "no ACM or IAM"),
            ("file:///nonexistent/site.pem", "CertificateNotFound", "no such file"),
            ("site.pem", "CertificateNotFound", "file:///absolute/path.pem"),
            (no_key, "ValidationError", "private key"),
        ]:
            got = _code(lambda arn=arn: elb.create_listener(    # type: ignore[misc]
                LoadBalancerArn=alb, Protocol="HTTPS", Port=free_port(), Certificates=[{"CertificateArn": arn}],
                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}]))
            assert got[:2] == (code, 400) and words in got[2], got
        got = _code(lambda: elb.create_listener(LoadBalancerArn=alb, Protocol="HTTPS", Port=free_port(),
                                                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}]))
        assert got[:2] == ("ValidationError", 400) and "A certificate must be specified" in got[2]
        got = _code(lambda: elb.modify_listener(ListenerArn=listener["ListenerArn"], Certificates=[
            {"CertificateArn": "file:///nonexistent/site.pem"}]))
        assert got[:2] == ("CertificateNotFound", 400)
        assert cfg.read_bytes() == before
        assert requests.get(f"https://127.0.0.1:{https_port}/", verify=verify, timeout=10).status_code == 200
