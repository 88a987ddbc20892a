"""The ELBv2 data plane on HAProxy (Debian's haproxy 2.6, master-worker mode), one per daemon."""

from berth.elb.haproxy._render import render, structure_key
from berth.elb.haproxy._supervisor import ConfigRejected, ProxyUnavailable
from berth.elb.haproxy.plane import HaproxyPlane

__all__ = ["ConfigRejected", "HaproxyPlane", "ProxyUnavailable", "render", "structure_key"]
