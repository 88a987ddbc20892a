"""ELB metrics: show-stat rows → samples → Prometheus text (and back), and `berth elb top`'s frame."""

from __future__ import annotations

from berth.cli.elb import render_frame
from berth.elb._plane import Backend, HealthCheck, PlaneConfig, Target, TargetHealth
from berth.elb.metrics import ListenerName, Names, Sample, escape_label, names_for, parse, render, samples
from berth.elb import _model as m

NAMES = Names(listeners={"ln-a1": ListenerName("front", "arn:aws:elasticloadbalancing:l/1", 8080)},
              groups={"tg-b2": "web"},
              targets={("tg-b2", "i-1_80"): ("i-1", 80)})


def _rows(req: int = 10, five: int = 2, srv_req: int = 10, rtime: str = "12") -> list[dict[str, str]]:
    return [
        {"pxname": "stats", "svname": "FRONTEND", "stot": "99", "req_tot": "99"},
        {"pxname": "ln-a1", "svname": "FRONTEND", "stot": "7", "req_tot": str(req), "scur": "1", "ereq": "0",
         "hrsp_1xx": "0", "hrsp_2xx": str(req - five), "hrsp_3xx": "0", "hrsp_4xx": "0", "hrsp_5xx": str(five),
         "hrsp_other": "0"},
        {"pxname": "tg-b2", "svname": "i-1_80", "stot": "5", "req_tot": str(srv_req), "scur": "0", "econ": "0",
         "eresp": "", "hrsp_5xx": str(five), "hrsp_2xx": str(srv_req - five), "rtime": rtime, "ctime": "1",
         "ttime": "20", "status": "UP"},
        {"pxname": "tg-b2", "svname": "BACKEND", "stot": "5"},
        {"pxname": "tg-b2", "svname": "unknown_1", "stot": "5"},
    ]


def _one(items: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in items if s.name == name and all(s.label(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_rows_become_listener_and_target_samples() -> None:
    items = samples(_rows(), NAMES, {("tg-b2", "i-1", 80): TargetHealth("healthy")})
    assert _one(items, "berth_elb_listener_requests_total", load_balancer="front", listener_port="8080") == 10
    assert _one(items, "berth_elb_listener_http_responses_total", code="5xx") == 2
    assert _one(items, "berth_elb_listener_connections_total") == 7
    assert _one(items, "berth_elb_target_requests_total", target_group="web", target="i-1", port="80") == 10
    assert _one(items, "berth_elb_target_http_responses_total", code="5xx") == 2
    assert _one(items, "berth_elb_target_response_time_average_seconds") == 0.012
    assert _one(items, "berth_elb_target_healthy") == 1
    assert _one(items, "berth_elb_target_health", state="healthy") == 1
    # HAProxy's own proxies, backends and unknown servers are not exported; empty fields are skipped
    assert not [s for s in items if s.label("listener_port") == "" and s.name.startswith("berth_elb_listener")]
    assert not [s for s in items if s.name == "berth_elb_target_response_errors_total"]
    assert {s.label("target") for s in items if s.name.startswith("berth_elb_target")} == {"i-1"}
    # no fake quantiles
    assert not any("quantile" in dict(s.labels) for s in items)


def test_health_falls_back_to_haproxy_status() -> None:
    rows = _rows()
    rows[2]["status"] = "DOWN"
    items = samples(rows, NAMES)
    assert _one(items, "berth_elb_target_healthy") == 0
    assert _one(items, "berth_elb_target_health", state="unhealthy") == 1


def test_render_has_help_type_and_round_trips() -> None:
    items = samples(_rows(), NAMES)
    text = render(items)
    assert "# HELP berth_elb_listener_requests_total " in text
    assert "# TYPE berth_elb_listener_requests_total counter" in text
    assert "# TYPE berth_elb_target_response_time_average_seconds gauge" in text
    assert ('berth_elb_listener_requests_total{load_balancer="front",listener_port="8080",'
            'listener="arn:aws:elasticloadbalancing:l/1"} 10') in text
    assert "berth_elb_target_response_time_average_seconds" in text and " 0.012\n" in text
    assert text.endswith("\n")
    assert sorted(parse(text), key=repr) == sorted(items, key=repr)


def test_label_values_are_escaped() -> None:
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    weird = Sample("berth_elb_target_healthy", (("target_group", 'x"y\\z\nw'), ("target", "t"), ("port", "1")), 1.0)
    text = render([weird])
    assert 'target_group="x\\"y\\\\z\\nw"' in text
    assert parse(text) == [weird]


def test_empty_render_still_declares_the_families() -> None:
    text = render([])
    assert "# TYPE berth_elb_target_requests_total counter" in text
    assert parse(text) == []


def test_names_from_records() -> None:
    lb = m.LoadBalancer(arn="arn:lb", name="front", id="l1", type="application", scheme="internal", dns_name="d",
                        created=0.0)
    ln = m.Listener(arn="arn:ln", id="a1", load_balancer_arn="arn:lb", port=8080, protocol="HTTP", default_actions=())
    tg = m.TargetGroup(arn="arn:tg", name="web", id="b2", target_type="instance", protocol="HTTP", port=80,
                       vpc_id="v", health=m.HealthSettings(), created=0.0)
    config = PlaneConfig(backends=(Backend("tg-b2", "HTTP", (Target("i-1", "127.0.0.1", 80),), HealthCheck()),))
    names = names_for([lb], [ln], [tg], config)
    assert names.listeners["ln-a1"] == ListenerName("front", "arn:ln", 8080)
    assert names.groups == {"tg-b2": "web"}
    assert names.targets == {("tg-b2", "i-1_80"): ("i-1", 80)}


def test_top_frame_from_two_scrapes() -> None:
    before = samples(_rows(req=10, five=2, srv_req=10), NAMES, {("tg-b2", "i-1", 80): TargetHealth("healthy")})
    after = samples(_rows(req=30, five=3, srv_req=30, rtime="250"), NAMES,
                    {("tg-b2", "i-1", 80): TargetHealth("healthy")})
    frame = render_frame(before, after, 2.0)
    lines = frame.splitlines()
    assert lines[0] == "LISTENERS"
    listener = next(line for line in lines if line.startswith("front"))
    assert listener.split() == ["front", "8080", "10.0", "30", "3", "7"]
    target = next(line for line in lines if line.startswith("web"))
    assert target.split() == ["web", "i-1:80", "healthy", "10.0", "30", "3", "250ms"]
    # a first frame has no rate yet; a reload (counter went down) counts from zero
    assert next(x for x in render_frame(None, after, 0).splitlines() if x.startswith("front")).split()[2] == "-"
    assert next(x for x in render_frame(after, before, 1.0).splitlines() if x.startswith("front")).split()[2] == "10.0"


def test_top_frame_without_load_balancers() -> None:
    frame = render_frame(None, [], 0)
    assert "(no listeners)" in frame and "(no targets)" in frame
