"""A container's managed /etc/hosts, /etc/hostname and /etc/resolv.conf.

The files live in the container directory and are bind-mounted over the image's:

    <container dir>/
        hosts          what the container reads: hosts.base + one line per peer on its networks
        hosts.base     the fixed part: localhost lines, own address, --add-host, --link aliases
        hostname
        resolv.conf    the host's (minus loopback nameservers) or --dns/--dns-search/--dns-option;
                       on user networks `nameserver 127.0.0.11` (the daemon's embedded DNS)

Name resolution on user networks is this file and the embedded DNS: whenever a container joins
or leaves a network, the hosts file of every member is rewritten (the DNS tables too). It is rewritten *in place* (truncate + write),
never by rename: the container holds a bind mount of the old inode, which a rename would orphan.
Content builders are pure; only `write_new` and `rewrite_in_place` touch files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from berth.errors import InvalidArgument
from berth.runtime import Mount
from berth.types.host_config import HostConfig

FILES = ("hosts", "hostname", "resolv.conf")
LOCALHOST = ("127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters")


def etc_mounts(etc_dir: Path, *, read_only: bool) -> tuple[Mount, ...]:
    """The bind mounts of the three files; read-only in a `--read-only` container, as moby's
    NetworkMounts makes them (writable = !ReadonlyRootfs). A volume mounted on one of the paths
    later in the mount list still wins."""
    options = ("rbind", "rprivate", "ro") if read_only else ("rbind", "rprivate")
    return tuple(Mount(source=str(etc_dir / f), destination=f"/etc/{f}", options=options) for f in FILES)


def parse_extra_host(entry: str) -> tuple[str, str]:
    """`--add-host name:ip` (also `name=ip`, IPv6 allowed) → (name, ip); `host-gateway` is kept."""
    sep = "=" if "=" in entry else ":"
    name, _, ip = entry.partition(sep)
    ip = ip.strip("[]")
    if not name or not ip:
        raise InvalidArgument(f"invalid IP address in add-host: \"{ip}\"" if name else
                              f"bad format for add-host: \"{entry}\"")
    return name, ip


def hosts_base(*, hostname: str, domainname: str, own_ip: str, extra_hosts: Sequence[str],
               links: Iterable[tuple[str, str]], gateway: str = "") -> str:
    """The fixed part of a container's hosts file.

    `links`: (ip, names) pairs, names space-separated (alias, then the target's name).
    `host-gateway` in --add-host means the gateway of the container's first network.
    """
    lines = list(LOCALHOST)
    if own_ip:
        fqdn = f"{hostname}.{domainname}" if domainname else ""
        lines.append(f"{own_ip}\t{(fqdn + ' ') if fqdn else ''}{hostname}")
    for entry in extra_hosts:
        name, ip = parse_extra_host(entry)
        if ip == "host-gateway":
            ip = gateway or "127.0.0.1"
        lines.append(f"{ip}\t{name}")
    for ip, names in links:
        lines.append(f"{ip}\t{names}")
    return "\n".join(lines) + "\n"


def peer_lines(peers: Iterable[tuple[str, Sequence[str]]]) -> str:
    """One `ip<TAB>name alias ...` line per peer, duplicates of a name dropped."""
    lines = []
    for ip, names in peers:
        unique = list(dict.fromkeys(n for n in names if n))
        if ip and unique:
            lines.append(f"{ip}\t{' '.join(unique)}")
    return "\n".join(lines) + ("\n" if lines else "")


def resolv_conf(host_text: str, *, host_network: bool, dns: Sequence[str], search: Sequence[str],
                options: Sequence[str]) -> str:
    """The host's resolv.conf with --dns/--dns-search/--dns-option applied.

    Loopback nameservers of the host cannot be reached from a container netns, so they are
    dropped (not for host networking).
    """
    lines = host_text.splitlines()
    if not host_network:
        lines = [ln for ln in lines if not (ln.startswith("nameserver") and (" 127." in ln or " ::1" in ln))]
    if dns:
        lines = [ln for ln in lines if not ln.startswith("nameserver")] + [f"nameserver {d}" for d in dns]
    if search:
        lines = [ln for ln in lines if not ln.startswith(("search", "domain"))]
        lines.append("search " + " ".join(s for s in search if s != "."))
    if options:
        lines = [ln for ln in lines if not ln.startswith("options")] + ["options " + " ".join(options)]
    return "\n".join(lines) + "\n"


EMBEDDED_DNS = "127.0.0.11"


def embedded_resolv_conf(host_text: str, *, search: Sequence[str], options: Sequence[str]) -> str:
    """resolv.conf of a container on user networks: Docker's embedded-DNS form.

    One nameserver, berth's resolver at 127.0.0.11 (berth.network.EmbeddedDns); search domains
    and options from the host unless --dns-search/--dns-option replace them; `ndots:0` unless
    an ndots option is given, as Docker does. --dns servers are not listed: Docker would have
    its resolver forward to them, and berth's resolver forwards nothing.
    """
    base = resolv_conf(host_text, host_network=False, dns=[EMBEDDED_DNS], search=search, options=options)
    lines = [ln for ln in base.splitlines() if not ln.startswith("nameserver")]
    opts = [ln.split()[1:] for ln in lines if ln.startswith("options")]
    flat = [o for group in opts for o in group]
    if not any(o.startswith("ndots:") for o in flat):
        flat.append("ndots:0")
    lines = [ln for ln in lines if not ln.startswith("options")]
    kept = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return "\n".join([f"nameserver {EMBEDDED_DNS}", *kept, "options " + " ".join(flat)]) + "\n"


def host_file(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def write_new(path: Path, text: str) -> None:
    """Atomic replace; only before the container starts (the bind mount is not made yet)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def rewrite_in_place(path: Path, text: str) -> None:
    """Same inode, new content (the container's bind mount keeps pointing at it)."""
    try:
        with open(path, "r+") as f:
            if f.read() == text:
                return
            f.seek(0)
            f.write(text)
            f.truncate()
    except FileNotFoundError:
        pass


def write_etc_files(cdir: Path, *, hostname: str, base: str, peers: str, resolv: str) -> None:
    write_new(cdir / "hosts.base", base)
    write_new(cdir / "hosts", base + peers)
    write_new(cdir / "hostname", hostname + "\n")
    write_new(cdir / "resolv.conf", resolv)


def dns_settings(host_config: HostConfig) -> dict[str, list[str]]:
    return {"dns": list(host_config.dns or ()), "search": list(host_config.dns_search or ()),
            "options": list(host_config.dns_options or ())}
