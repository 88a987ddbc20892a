"""PlaneConfig → haproxy.cfg text (pure: no I/O).

Rules keep ELB's priority semantics although HAProxy runs every `http-request` rule before any
`use_backend`: the first matching rule (by priority) records its number in `txn.berth_rule`, and
each action (return, redirect, use_backend) is conditioned on that number alone. Weighted forwards
draw one `rand(total)` per request into `txn.berth_w` and pick the backend by ranges of it, so the
split is exact in expectation; with target-group stickiness a cookie naming the backend chosen
before wins over the draw.

Values reach HAProxy's tokenizer hex-escaped (`\\xNN`) outside quotes, so no user text can end a
word, start a comment or expand a variable; regexes spell literal metacharacters as `[.]`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from berth.elb._plane import Action, Backend, Condition, Frontend, HealthCheck, PlaneConfig, Target

_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,;=+*?!@~%()[]{}^|&<>`")
_REGEX_META = set(".^$*+?()[]{}|\\")
_TIMEOUT_CONNECT = "5s"
_TIMEOUT_CLIENT = "60s"
_TIMEOUT_SERVER = "60s"
STICKY_TG_COOKIE = "AWSALBTG"
STICKY_COOKIE = "AWSALB"


@dataclass(frozen=True)
class Paths:
    """Where the rendered global section points HAProxy (files under the plane's run dir)."""

    stats_socket: str
    state_file: str


def word(text: str) -> str:
    """One HAProxy config word carrying `text` literally."""
    if text == "":
        return '""'
    out = []
    for ch in text:
        if ch in _SAFE:
            out.append(ch)
        else:
            for b in ch.encode():
                out.append(f"\\x{b:02x}")
    return "".join(out)


def _regex_literal(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "^":
            out.append("\\^")
        elif ch in _REGEX_META:
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def wildcard_regex(pattern: str, star: str = ".*", qmark: str = ".") -> str:
    """ELB wildcards (`*` any run, `?` one char) → an anchored regex matching the whole value."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(star)
        elif ch == "?":
            out.append(qmark)
        else:
            out.append(_regex_literal(ch))
    return "^" + "".join(out) + "$"


def server_name(target: Target) -> str:
    """A stable server name for (target id, port): HAProxy allows [A-Za-z0-9_.:-]."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", target.id)
    name = f"{safe}_{target.port}"
    if safe != target.id:
        name += "_" + hashlib.sha256(target.id.encode()).hexdigest()[:6]
    return name


def matcher_regex(matcher: str) -> str:
    """ELB matcher ("200", "200,202", "200-299", mixes) → an anchored status-code regex."""
    codes: list[str] = []
    for part in matcher.replace(" ", "").split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            codes.extend(str(c) for c in range(lo, hi + 1))
        else:
            codes.append(str(int(part)))
    return "^(" + "|".join(dict.fromkeys(codes)) + ")$"


def _seconds(value: int) -> str:
    return f"{max(int(value), 1)}s"


def check_options(health: HealthCheck, slow_start: int) -> list[str]:
    """Per-server options for health checks and slow start (also used by `add server`)."""
    opts: list[str] = []
    if health.enabled:
        opts += ["check", "inter", _seconds(health.interval), "rise", str(max(health.healthy_threshold, 1)),
                 "fall", str(max(health.unhealthy_threshold, 1))]
        if health.port and health.port != "traffic-port":
            opts += ["port", str(int(health.port))]
    if slow_start > 0:
        opts += ["slowstart", _seconds(slow_start)]
    return opts


def server_options(backend: Backend, target: Target) -> list[str]:
    opts = ["weight", str(_weight(target))]
    opts += check_options(backend.health, backend.slow_start)
    if backend.stickiness_seconds > 0 and backend.protocol != "TCP":
        opts += ["cookie", server_name(target)]
    return opts


def _weight(target: Target) -> int:
    return 0 if target.draining else max(0, min(int(target.weight), 256))


def _cond_acls(name: str, cond: Condition) -> list[str]:
    """`acl` lines for one condition: values OR together (same ACL name), conditions AND."""
    values = cond.values
    field = cond.field
    if field == "path-pattern":
        return [f"acl {name} path -m reg " + " ".join(word(wildcard_regex(v)) for v in values)]
    if field == "host-header":
        return [f"acl {name} req.hdr(host),field(1,:) -m reg -i " + " ".join(word(wildcard_regex(v)) for v in values)]
    if field == "http-header":
        fetch = f"req.hdr({word(cond.header_name)})"
        return [f"acl {name} {fetch} -m reg -i " + " ".join(word(wildcard_regex(v)) for v in values)]
    if field == "http-request-method":
        return [f"acl {name} method " + " ".join(word(v) for v in values)]
    if field == "source-ip":
        return [f"acl {name} src " + " ".join(word(v) for v in values)]
    if field == "query-string":
        lines = []
        for key, value in cond.query_pairs:
            if key:
                lines.append(f"acl {name} url_param({word(key)}) -m reg -i {word(wildcard_regex(value))}")
            else:
                rx = wildcard_regex(value, star="[^&]*", qmark="[^&]")[1:-1]
                lines.append(f"acl {name} query -m reg -i {word('(^|&)([^&=]*=)?' + rx + '(&|$)')}")
        return lines
    raise ValueError(f"unknown rule condition field {field!r}")


def _status(code: str) -> int:
    return int(code.removeprefix("HTTP_"))


def _redirect_location(redirect: dict[str, str], port: int, with_query: bool, scheme: str = "http") -> str:
    def fill(template: str) -> str:
        text = template.replace("%", "%%")
        text = text.replace("#{protocol}", scheme).replace("#{host}", "%[req.hdr(host),field(1,:)]")
        text = text.replace("#{port}", str(port)).replace("#{path}", "%[path,bytes(1)]")
        return text.replace("#{query}", "%[query]")

    proto = fill(redirect.get("Protocol", "#{protocol}")).lower()
    host = fill(redirect.get("Host", "#{host}"))
    port_text = fill(redirect.get("Port", "#{port}"))
    path = fill(redirect.get("Path", "/#{path}"))
    query = redirect.get("Query", "#{query}")
    location = f"{proto}://{host}"
    if not ((proto == "http" and port_text == "80") or (proto == "https" and port_text == "443")):
        location += f":{port_text}"
    location += path
    if with_query and query:
        location += "?" + fill(query)
    return location


def _action_lines(frontend: Frontend, action: Action, when: str, index: int) -> tuple[list[str], list[str]]:
    """(http-request/http-response lines, use_backend lines) for one action under condition `when`."""
    pre: list[str] = []
    use: list[str] = []
    http = is_http(frontend.protocol)
    scheme = "https" if frontend.protocol == "HTTPS" else "http"
    cond = f" if {when}" if when else ""
    if action.type == "fixed-response":
        line = f"http-request return status {_status(action.status_code or '200')}"
        if action.body:
            line += f" content-type {word(action.content_type or 'text/plain')} string {word(action.body)}"
        pre.append(line + cond)
    elif action.type == "redirect":
        redirect = dict(action.redirect or {})
        code = _status(action.status_code or "HTTP_302")
        has_query = bool(redirect.get("Query", "#{query}"))
        if has_query and "#{query}" in redirect.get("Query", "#{query}"):
            pre.append(f"http-request redirect location {word(_redirect_location(redirect, frontend.port, True, scheme))} "
                       f"code {code} if {when} {{ query -m len gt 0 }}".replace("if  {", "if {"))
            pre.append(f"http-request redirect location {word(_redirect_location(redirect, frontend.port, False, scheme))} "
                       f"code {code}{cond}")
        else:
            pre.append(f"http-request redirect location {word(_redirect_location(redirect, frontend.port, True, scheme))} "
                       f"code {code}{cond}")
    elif action.type == "forward":
        groups = [(name, w) for name, w in action.forward if w > 0] or list(action.forward[:1])
        if len(groups) == 1:
            use.append(f"use_backend {groups[0][0]}{cond}")
        else:
            var = f"txn.berth_w{index}"
            total = sum(w for _, w in groups)
            scope = "http-request" if http else "tcp-request content"
            pre.append(f"{scope} set-var({var}) rand({total}){cond}")
            if action.stickiness_seconds > 0 and http:
                cookie = f"{STICKY_TG_COOKIE}{index}"
                for name, _ in groups:
                    use.append(f"use_backend {name} if {when} {{ req.cook({cookie}) -m str {name} }}".replace(
                        "if  {", "if {"))
                pre.append(f'http-response add-header Set-Cookie "{cookie}=%[be_name]; Max-Age='
                           f'{action.stickiness_seconds}; Path=/"' + (f" if {when}" if when else ""))
            low = 0
            for name, w in groups:
                use.append(f"use_backend {name} if {when} {{ var({var}) -m int ge {low} }} "
                           f"{{ var({var}) -m int lt {low + w} }}".replace("if  {", "if {"))
                low += w
    else:
        raise ValueError(f"unknown action type {action.type!r}")
    return pre, use


def is_http(protocol: str) -> bool:
    """HTTP and HTTPS listeners are HAProxy `mode http`; TCP and TLS ones `mode tcp`."""
    return protocol in ("HTTP", "HTTPS")


def _frontend(f: Frontend) -> list[str]:
    http = is_http(f.protocol)
    bind = f"    bind {f.bind}:{f.port}"
    if f.certificate:   # HTTPS / TLS: HAProxy terminates TLS with this PEM (certificate and key)
        bind += f" ssl crt {word(f.certificate)}"
    lines = [f"frontend {f.name}", f"    mode {'http' if http else 'tcp'}", bind]
    if http:
        lines.append("    option forwardfor")
    acl_lines: list[str] = []
    select: list[str] = []
    rules = sorted(f.rules, key=lambda r: r.priority) if http else []
    for rule in rules:
        names = []
        for i, cond in enumerate(rule.conditions):
            name = f"r{rule.priority}_c{i}"
            acl_lines += _cond_acls(name, cond)
            names.append(name)
        select.append(f"http-request set-var(txn.berth_rule) int({rule.priority}) "
                      f"if !{{ var(txn.berth_rule) -m found }} {' '.join(names)}".rstrip())
    pres: list[str] = []
    uses: list[str] = []
    for rule in rules:
        pre, use = _action_lines(f, rule.action, f"{{ var(txn.berth_rule) -m int eq {rule.priority} }}",
                                 rule.priority)
        pres += pre
        uses += use
    default_when = "!{ var(txn.berth_rule) -m found }" if rules else ""
    pre, use = _action_lines(f, f.default, default_when, 0)
    pres += pre
    uses += use
    lines += ["    " + x for x in acl_lines + select + pres + uses]
    return lines


def _backend(b: Backend) -> list[str]:
    http = b.protocol != "TCP"
    lines = [f"backend {b.name}", f"    mode {'http' if http else 'tcp'}",
             f"    balance {'leastconn' if b.algorithm == 'least_outstanding_requests' else 'roundrobin'}"]
    hc = b.health
    if hc.enabled:
        lines.append(f"    timeout check {_seconds(hc.timeout)}")
        if hc.protocol in ("HTTP", "HTTPS"):
            lines += ["    option httpchk", f"    http-check send meth GET uri {word(hc.path or '/')}"]
            codes = matcher_regex(hc.matcher or "200")
            if re.fullmatch(r"\^\(\d{3}\)\$", codes):
                lines.append(f"    http-check expect status {codes[2:5]}")
            else:
                lines.append(f"    http-check expect rstatus {word(codes)}")
    if b.stickiness_seconds > 0 and http:
        lines.append(f"    cookie {STICKY_COOKIE} insert indirect nocache maxlife {b.stickiness_seconds}s")
    for t in b.targets:
        lines.append(f"    server {server_name(t)} {t.address}:{t.port} " + " ".join(server_options(b, t)))
    return lines


def structure_key(config: PlaneConfig) -> str:
    """What decides between the runtime API and a reload: everything but the target lists."""
    bare = dataclasses.replace(config, backends=tuple(dataclasses.replace(b, targets=()) for b in config.backends))
    return hashlib.sha256(render(bare, Paths("-", "-")).encode()).hexdigest()[:16]


def render(config: PlaneConfig, paths: Paths) -> str:
    lines = [
        "# written by berth: edits are overwritten",
        "global",
        f"    stats socket {paths.stats_socket} mode 600 level admin expose-fd listeners",
        f"    server-state-file {paths.state_file}",
        "    hard-stop-after 15m",
        "",
        "defaults",
        "    mode http",
        f"    timeout connect {_TIMEOUT_CONNECT}",
        f"    timeout client {_TIMEOUT_CLIENT}",
        f"    timeout server {_TIMEOUT_SERVER}",
        "    timeout http-request 30s",
        "    timeout http-keep-alive 10s",
        "    option redispatch",
        "    retries 3",
        "    load-server-state-from-file global",
        "",
    ]
    for f in config.frontends:
        lines += _frontend(f) + [""]
    for b in config.backends:
        lines += _backend(b) + [""]
    return "\n".join(lines)


def used_backends(config: PlaneConfig) -> Iterable[str]:
    for f in config.frontends:
        for action in [f.default, *(r.action for r in f.rules)]:
            for name, _ in action.forward:
                yield name
