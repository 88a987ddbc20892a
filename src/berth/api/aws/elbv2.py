"""ELBv2 on the AWS endpoint: the Query protocol (aws-apis.md §1) over `berth.elb.ElbService`.

    POST /  Content-Type: application/x-www-form-urlencoded
            Action=RegisterTargets&Version=2015-12-01&TargetGroupArn=...&Targets.member.1.Id=i-1
    → 200   <RegisterTargetsResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
              <RegisterTargetsResult/><ResponseMetadata><RequestId>…</RequestId></ResponseMetadata>
            </RegisterTargetsResponse>
    → 400   <ErrorResponse xmlns="…"><Error><Type>Sender</Type><Code>TargetGroupNotFound</Code>
              <Message>…</Message></Error><RequestId>…</RequestId></ErrorResponse>

The form is parsed into nested members (`Names.member.1` → a list, `Targets.member.1.Id` → a
list of structures) with text leaves; the service validates and returns records; this module
shapes them as ELB writes them (`<member>` lists, ISO 8601 timestamps). XML is written with
ElementTree, so no value can inject markup.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from berth.api.aws._errors import AwsError
from berth.api.aws._server import AwsContext, ErrorRenderer
from berth.elb import ElbService, Page, Scope
from berth.elb import model as m
from berth.errors import BerthError, Unavailable

log = logging.getLogger("berth.api.aws.elbv2")

NAMESPACE = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
VERSION = "2015-12-01"
SIGNING_NAME = "elasticloadbalancing"
HOSTED_ZONE_ID = "Z0BERTHLOCALELB"
_MAX_BODY = 1 << 20

Params = dict[str, Any]
Out = dict[str, Any]
Handler = Callable[[web.Request, AwsContext], Any]


# ==== request parsing =========================================================================


def parse_query(body: bytes) -> Params:
    """A form-encoded Query body as nested members: `X.member.N` → lists, `A.B` → structures.

    Raises:
        AwsError: MalformedQueryString for text that is not a form or paths that contradict.
    """
    try:
        text = body.decode("utf-8")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                                       errors="strict", max_num_fields=10_000)
    except (UnicodeDecodeError, ValueError) as err:
        raise AwsError("MalformedQueryString", f"The query string is malformed: {err}") from err
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.split(".")
        if any(not part for part in parts):
            raise AwsError("MalformedQueryString", f"The query string is malformed: bad parameter name '{key}'")
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise AwsError("MalformedQueryString", f"Parameter '{key}' conflicts with another parameter")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise AwsError("MalformedQueryString", f"Parameter '{key}' conflicts with another parameter")
        node[parts[-1]] = value
    converted = _lists(root)
    assert isinstance(converted, dict)
    return converted


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if set(node) == {"member"} and isinstance(node["member"], dict):
        items = node["member"]
        if not all(k.isdigit() and 0 < int(k) <= 10_000 for k in items):
            raise AwsError("MalformedQueryString", "List members must be numbered from 1")
        return [_lists(items[k]) for k in sorted(items, key=int)]
    return {k: _lists(v) for k, v in node.items()}


# ==== response rendering ======================================================================


def _xml(parent: ET.Element, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if item is None:
                continue
            _xml(ET.SubElement(parent, key), item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _xml(ET.SubElement(parent, "member"), item)
    elif isinstance(value, bool):
        parent.text = "true" if value else "false"
    else:
        parent.text = str(value)


def render(operation: str, result: Out, request_id: str) -> web.Response:
    root = ET.Element(f"{operation}Response", xmlns=NAMESPACE)
    _xml(ET.SubElement(root, f"{operation}Result"), result)
    meta = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(meta, "RequestId").text = request_id
    return web.Response(body=ET.tostring(root, encoding="utf-8", xml_declaration=True), content_type="text/xml",
                        headers={"x-amzn-RequestId": request_id})


def render_error(err: AwsError, request_id: str) -> web.Response:
    root = ET.Element("ErrorResponse", xmlns=NAMESPACE)
    error = ET.SubElement(root, "Error")
    ET.SubElement(error, "Type").text = "Receiver" if err.status >= 500 else "Sender"
    ET.SubElement(error, "Code").text = err.code
    ET.SubElement(error, "Message").text = err.message
    ET.SubElement(root, "RequestId").text = request_id
    return web.Response(status=err.status, body=ET.tostring(root, encoding="utf-8", xml_declaration=True),
                        content_type="text/xml", headers={"x-amzn-RequestId": request_id})


def to_elb_error(err: Exception) -> AwsError:
    """berth errors → ELBv2's codes: a domain `aws_code` wins; a refused data-plane change is the
    caller's InvalidConfigurationRequest (nothing was changed); anything else client-side is a
    ValidationError; only a bug is a 500."""
    if isinstance(err, AwsError):
        return err
    code = getattr(err, "aws_code", None)
    if isinstance(err, BerthError):
        if isinstance(code, str) and code.endswith("Exception"):  # an error from another package
            code = None
        if isinstance(err, Unavailable) and not code:
            return AwsError("InvalidConfigurationRequest", f"The load balancer could not apply the change "
                            f"(nothing was changed): {err}")
        return AwsError(code or "ValidationError", str(err), 400)
    return AwsError("InternalFailure", "The request processing has failed because of an unknown error", 500)


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _zones(lb: m.LoadBalancer, scope: Scope) -> list[Out]:
    return [{"ZoneName": f"{scope.region}a", "SubnetId": s} for s in lb.subnets]


def _lb(lb: m.LoadBalancer, scope: Scope) -> Out:
    return {"LoadBalancerArn": lb.arn, "DNSName": lb.dns_name, "CanonicalHostedZoneId": HOSTED_ZONE_ID,
            "CreatedTime": _time(lb.created), "LoadBalancerName": lb.name, "Scheme": lb.scheme,
            "VpcId": lb.vpc_id or None, "State": {"Code": lb.state}, "Type": lb.type,
            "AvailabilityZones": _zones(lb, scope), "SecurityGroups": list(lb.security_groups),
            "IpAddressType": lb.ip_address_type}


def _tg(service: ElbService, tg: m.TargetGroup) -> Out:
    h = tg.health
    return {"TargetGroupArn": tg.arn, "TargetGroupName": tg.name, "Protocol": tg.protocol, "Port": tg.port,
            "VpcId": tg.vpc_id or None, "HealthCheckProtocol": h.protocol, "HealthCheckPort": h.port,
            "HealthCheckEnabled": h.enabled, "HealthCheckIntervalSeconds": h.interval,
            "HealthCheckTimeoutSeconds": h.timeout, "HealthyThresholdCount": h.healthy_threshold,
            "UnhealthyThresholdCount": h.unhealthy_threshold, "HealthCheckPath": h.path or None,
            "Matcher": {"HttpCode": h.matcher} if h.matcher else None,
            "LoadBalancerArns": list(service.load_balancers_of(None, tg.arn)), "TargetType": tg.target_type,
            "ProtocolVersion": tg.protocol_version or None, "IpAddressType": tg.ip_address_type}


def _action(a: m.ActionSpec) -> Out:
    out: Out = {"Type": a.type, "Order": a.order}
    if a.type == "forward":
        out["TargetGroupArn"] = a.target_group_arn or None
        out["ForwardConfig"] = {
            "TargetGroups": [{"TargetGroupArn": g.target_group_arn, "Weight": g.weight} for g in a.groups],
            "TargetGroupStickinessConfig": {"Enabled": a.stickiness_enabled,
                                            "DurationSeconds": a.stickiness_seconds or None}}
    elif a.type == "fixed-response":
        out["FixedResponseConfig"] = {"MessageBody": a.body, "StatusCode": a.status_code,
                                      "ContentType": a.content_type or None}
    else:
        out["RedirectConfig"] = {**a.redirect, "StatusCode": a.status_code}
    return out


def _listener(ln: m.Listener) -> Out:
    return {"ListenerArn": ln.arn, "LoadBalancerArn": ln.load_balancer_arn, "Port": ln.port,
            "Protocol": ln.protocol, "Certificates": [{"CertificateArn": c} for c in ln.certificates] or None,
            "SslPolicy": ln.ssl_policy or None, "DefaultActions": [_action(a) for a in ln.default_actions]}


_CONFIG_NAMES = {"path-pattern": "PathPatternConfig", "host-header": "HostHeaderConfig",
                 "http-request-method": "HttpRequestMethodConfig", "source-ip": "SourceIpConfig"}


def _condition(c: m.ConditionSpec) -> Out:
    out: Out = {"Field": c.field}
    if c.field in ("path-pattern", "host-header"):
        out["Values"] = list(c.values)
    if c.field in _CONFIG_NAMES:
        out[_CONFIG_NAMES[c.field]] = {"Values": list(c.values)}
    elif c.field == "http-header":
        out["HttpHeaderConfig"] = {"HttpHeaderName": c.header_name, "Values": list(c.values)}
    elif c.field == "query-string":
        out["QueryStringConfig"] = {"Values": [{"Key": k or None, "Value": v} for k, v in c.pairs]}
    return out


def _rule(rule: m.Rule | m.DefaultRule) -> Out:
    if isinstance(rule, m.DefaultRule):
        return {"RuleArn": rule.arn, "Priority": "default", "Conditions": [],
                "Actions": [_action(a) for a in rule.actions], "IsDefault": True}
    return {"RuleArn": rule.arn, "Priority": str(rule.priority),
            "Conditions": [_condition(c) for c in rule.conditions],
            "Actions": [_action(a) for a in rule.actions], "IsDefault": False}


def _attrs(attrs: Mapping[str, str]) -> Out:
    return {"Attributes": [{"Key": k, "Value": v} for k, v in sorted(attrs.items())]}


def _paged(key: str, page: Page, shape: Callable[[Any], Out]) -> Out:
    return {key: [shape(x) for x in page.items], "NextMarker": page.next_marker}


# ==== operations ===============================================================================


def operations(service: ElbService) -> dict[str, Callable[[Params, Scope], Out]]:
    s = service

    def tg(x: m.TargetGroup) -> Out:
        return _tg(s, x)

    def health(h: m.TargetHealthInfo) -> Out:
        return {"Target": {"Id": h.id, "Port": h.port, "AvailabilityZone": h.availability_zone or None},
                "HealthCheckPort": h.health_check_port,
                "TargetHealth": {"State": h.state, "Reason": h.reason or None,
                                 "Description": h.description or None}}

    def sg(p: Params, sc: Scope) -> Out:
        return {"SecurityGroupIds": list(s.set_security_groups(sc, p))}

    def subnets(p: Params, sc: Scope) -> Out:
        lb = s.set_subnets(sc, p)
        return {"AvailabilityZones": _zones(lb, sc), "IpAddressType": lb.ip_address_type}

    def empty(fn: Callable[[Scope, Params], None]) -> Callable[[Params, Scope], Out]:
        def run(p: Params, sc: Scope) -> Out:
            fn(sc, p)
            return {}
        return run

    return {
        "CreateLoadBalancer": lambda p, sc: {"LoadBalancers": [_lb(s.create_load_balancer(sc, p), sc)]},
        "DescribeLoadBalancers": lambda p, sc: _paged("LoadBalancers", s.describe_load_balancers(sc, p),
                                                      lambda lb: _lb(lb, sc)),
        "DeleteLoadBalancer": empty(s.delete_load_balancer),
        "DescribeLoadBalancerAttributes": lambda p, sc: _attrs(s.describe_load_balancer_attributes(sc, p)),
        "ModifyLoadBalancerAttributes": lambda p, sc: _attrs(s.modify_load_balancer_attributes(sc, p)),
        "SetSecurityGroups": sg,
        "SetSubnets": subnets,
        "CreateTargetGroup": lambda p, sc: {"TargetGroups": [tg(s.create_target_group(sc, p))]},
        "DescribeTargetGroups": lambda p, sc: _paged("TargetGroups", s.describe_target_groups(sc, p), tg),
        "ModifyTargetGroup": lambda p, sc: {"TargetGroups": [tg(s.modify_target_group(sc, p))]},
        "DeleteTargetGroup": empty(s.delete_target_group),
        "DescribeTargetGroupAttributes": lambda p, sc: _attrs(s.describe_target_group_attributes(sc, p)),
        "ModifyTargetGroupAttributes": lambda p, sc: _attrs(s.modify_target_group_attributes(sc, p)),
        "RegisterTargets": empty(s.register_targets),
        "DeregisterTargets": empty(s.deregister_targets),
        "DescribeTargetHealth": lambda p, sc: {
            "TargetHealthDescriptions": [health(h) for h in s.describe_target_health(sc, p)]},
        "CreateListener": lambda p, sc: {"Listeners": [_listener(s.create_listener(sc, p))]},
        "DescribeListeners": lambda p, sc: _paged("Listeners", s.describe_listeners(sc, p), _listener),
        "ModifyListener": lambda p, sc: {"Listeners": [_listener(s.modify_listener(sc, p))]},
        "DeleteListener": empty(s.delete_listener),
        "CreateRule": lambda p, sc: {"Rules": [_rule(s.create_rule(sc, p))]},
        "DescribeRules": lambda p, sc: _paged("Rules", s.describe_rules(sc, p), _rule),
        "ModifyRule": lambda p, sc: {"Rules": [_rule(s.modify_rule(sc, p))]},
        "DeleteRule": empty(s.delete_rule),
        "SetRulePriorities": lambda p, sc: {"Rules": [_rule(r) for r in s.set_rule_priorities(sc, p)]},
        "AddTags": empty(s.add_tags),
        "RemoveTags": empty(s.remove_tags),
        "DescribeTags": lambda p, sc: {"TagDescriptions": [
            {"ResourceArn": arn, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            for arn, tags in s.describe_tags(sc, p)]},
        "DescribeAccountLimits": lambda p, sc: _paged("Limits", s.describe_account_limits(sc, p),
                                                      lambda kv: {"Name": kv[0], "Max": kv[1]}),
    }


def elbv2_handler(service: ElbService) -> tuple[Handler, ErrorRenderer]:
    """The Query handler and error renderer for
    `AwsApi.add_query_service("elasticloadbalancing", handler, render_error=render)`."""
    ops = operations(service)

    async def handle(request: web.Request, ctx: AwsContext) -> web.Response:
        try:
            body = await request.read()
        except (ConnectionResetError, HttpProcessingError) as err:
            return render_error(AwsError("MalformedQueryString", f"incomplete request body: {err}"), ctx.request_id)
        except web.HTTPRequestEntityTooLarge:
            return render_error(AwsError("ValidationError", "The request body is too large"), ctx.request_id)
        if request.method == "GET" and not body:
            body = request.rel_url.raw_query_string.encode()
        action = ""
        try:
            if len(body) > _MAX_BODY:
                raise AwsError("ValidationError", "The request body is too large")
            params = parse_query(body)
            action = params.pop("Action", "")
            version = params.pop("Version", "")
            if not isinstance(action, str) or not action:
                raise AwsError("MissingAction", "The request must contain the parameter Action")
            if not isinstance(version, str) or not version:
                raise AwsError("MissingParameter", "The request must contain the parameter Version")
            operation = ops.get(action)
            if operation is None or version != VERSION:
                raise AwsError("InvalidAction", f"Could not find operation {action} for version {version}")
            scope = Scope(ctx.region, ctx.account)
            result = await asyncio.to_thread(operation, params, scope)
        except Exception as err:  # noqa: BLE001 - every failure becomes an ELB error shape
            aws = to_elb_error(err)
            if aws.status >= 500:
                log.exception("ELBv2 %s failed", action or "request")
            return render_error(aws, ctx.request_id)
        return render(action, result, ctx.request_id)

    return handle, render_error
