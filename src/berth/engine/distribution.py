"""Pull, push and login with Docker's semantics and JSON progress messages (engine API §3.12–3.15).

The services are blocking and emit Docker JSON messages through a callback; the API layer turns
them into a chunked stream. An error raised before the first message becomes the HTTP status
(`404 pull access denied ...`), one raised later goes into the stream as `errorDetail`, as dockerd
does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from berth import __version__
from berth.errors import InvalidArgument, NotFound
from berth.images import Image, ImageStore
from berth.images.distribution import (
    DOCKER_HUB, BlobIndex, Credentials, Endpoint, Platform, Progress, Puller, PushImage, Pusher, RegistryClient,
    RegistryError, RegistryHosts, Repository, Unreachable, credentials_from_json, host_platform,
    is_default_registry_address, mount_sources, parse_platform, resolve,
)
from berth.state import Database
from berth.types import Reference, parse_reference

log = logging.getLogger(__name__)
NO_DEFAULT_REGISTRY = ("berth does not contact public registries: name a registry on this host "
                       "(e.g. 127.0.0.1:5000/repo) or start the daemon with --registry-mirror")

Message = dict[str, Any]   # a Docker JSON progress message (wire JSON: any nesting)
Emit = Callable[[Message], None]


@dataclass(frozen=True)
class DistributionConfig:
    hosts: RegistryHosts
    tmp_dir: Path
    user_agent: str = f"berth/{__version__} docker/28.2.2"


class DistributionService:
    """`docker login`, `docker pull`, `docker push` against any v2 registry."""

    def __init__(self, store: ImageStore, db: Database, config: DistributionConfig) -> None:
        self._store = store
        self._blobs = BlobIndex(db)
        self._config = config

    @property
    def hosts(self) -> RegistryHosts:
        return self._config.hosts

    # login

    def login(self, auth: dict[str, Any]) -> Message:  # auth: the wire AuthConfig
        """`POST /auth`: check the credentials against the registry's `/v2/`.

        Raises:
            RegistryError: status 401, "login attempt to http://…/v2/ failed with status: 401 Unauthorized".
            Unreachable: the registry did not answer.
        """
        credentials = credentials_from_json(auth)
        domain = login_domain(credentials.server_address)
        client = self._client(domain, credentials, pull=False)
        client.login()
        return {"Status": "Login Succeeded", "IdentityToken": ""}

    # pull

    def pull(self, image: str, tag: str, credentials: Credentials, emit: Emit, *, platform: str = "") -> None:
        """`POST /images/create?fromImage=&tag=`: pull one tag or digest, or every tag if `tag` is
        empty and `image` names none."""
        wanted = parse_platform(platform) if platform else host_platform()
        if tag or _has_tag_or_digest(image):
            self._pull_one(pull_reference(image, tag), credentials, emit, wanted)
            return
        ref = parse_reference(image)
        repo, _ = self._connect_pull(ref, credentials)
        for each in sorted(repo.tags()):
            self._pull_one(parse_reference(f"{ref.repository}:{each}"), credentials, emit, wanted)

    def _pull_one(self, ref: Reference, credentials: Credentials, emit: Emit, wanted: Platform) -> None:
        repo, client = self._connect_pull(ref, credentials)
        reference = ref.digest or ref.tag or "latest"
        try:
            resolved = resolve(repo, reference, wanted)
        except RegistryError as err:
            raise _pull_error(ref, err) from err
        emit({"status": f"Pulling from {ref.path}", "id": reference})
        refs = [str(ref)] if not ref.digest else []
        refs.append(f"{ref.repository}@{resolved.digest}")
        puller = Puller(self._store, self._blobs, self._config.tmp_dir, ref.domain)
        result = puller.fetch(repo, resolved, refs, str(ref), _progress(emit))
        emit({"status": f"Digest: {result.digest}"})
        verdict = "Image is up to date" if result.up_to_date else "Downloaded newer image"
        emit({"status": f"Status: {verdict} for {ref.familiar()}"})

    def _connect_pull(self, ref: Reference, credentials: Credentials) -> tuple[Repository, RegistryClient]:
        """A repository handle on the first endpoint (mirror, then the registry) that has it."""
        failures: list[Exception] = []
        for endpoints in self._attempts(ref.domain):
            client = RegistryClient(endpoints, credentials, user_agent=self._config.user_agent)
            try:
                client.connect()
                repo = client.repository(ref.path, ("pull",))
                if endpoints[0].mirror:
                    repo.get_manifest(ref.digest or ref.tag or "latest")  # does the mirror have it?
                return repo, client
            except (RegistryError, Unreachable) as err:
                if endpoints[0].mirror:
                    log.info("mirror %s: %s", endpoints[0].url, err)
                failures.append(err)
        if not failures:
            raise NotFound(f"pull access denied for {ref.familiar_repository}, repository does not exist or may "
                           f"require 'docker login': {NO_DEFAULT_REGISTRY}")
        last = failures[-1]
        if isinstance(last, RegistryError):
            raise _pull_error(ref, last) from last
        raise last

    def _attempts(self, domain: str) -> Iterator[list[Endpoint]]:
        endpoints = self.hosts.endpoints(domain, pull=True)
        mirrors = [e for e in endpoints if e.mirror]
        for mirror in mirrors:
            yield [mirror]
        direct = [e for e in endpoints if not e.mirror]
        if direct:
            yield direct

    # push

    def push(self, name: str, tag: str, credentials: Credentials, emit: Emit) -> None:
        """`POST /images/{name}/push?tag=`: push one tag, or every tag of the repository."""
        ref = parse_reference(name)
        if ref.digest:
            raise InvalidArgument("cannot push a digest reference")
        tags = [tag] if tag else self._local_tags(ref)
        if not tags:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_repository}")
        images = [(t, self._local_image(ref, t)) for t in tags]
        emit({"status": f"The push refers to repository [{ref.repository}]"})
        client = self._client(ref.domain, credentials, pull=False)
        client.connect()
        for each_tag, image in images:
            self._push_one(client, ref, each_tag, image, emit)

    def _push_one(self, client: RegistryClient, ref: Reference, tag: str, image: Image, emit: Emit) -> None:
        push_image = PushImage(image.id, tuple(image.layers))
        sources = mount_sources(self._blobs, push_image, ref.domain, ref.path)
        repo = client.repository(ref.path, ("pull", "push"),
                                 tuple(f"repository:{s}:pull" for s in sources))
        result = Pusher(self._store, self._blobs, ref.domain).push(repo, push_image, tag, _progress(emit))
        emit({"status": f"{tag}: digest: {result.digest} size: {result.size}"})
        emit({"progressDetail": {}, "aux": {"Tag": tag, "Digest": str(result.digest), "Size": result.size}})
        self._store.add_digest_reference(image.id, f"{ref.repository}@{result.digest}")

    def _local_image(self, ref: Reference, tag: str) -> Image:
        try:
            return self._store.resolve(f"{ref.repository}:{tag}")
        except NotFound as err:
            raise NotFound(f"tag does not exist: {ref.familiar_repository}:{tag}"
                           if tag != "latest" else
                           f"An image does not exist locally with the tag: {ref.familiar_repository}") from err

    def _local_tags(self, ref: Reference) -> list[str]:
        return sorted({r.tag for image in self._store.list() for r in self._store.references(image.id)
                       if r.repository == ref.repository and r.tag and not r.digest})

    def _client(self, domain: str, credentials: Credentials, *, pull: bool) -> RegistryClient:
        endpoints = self.hosts.endpoints(domain, pull=pull)
        if not endpoints:
            raise InvalidArgument(NO_DEFAULT_REGISTRY)
        return RegistryClient(endpoints, credentials,
                              user_agent=self._config.user_agent)


# pure helpers


def pull_reference(image: str, tag: str) -> Reference:
    """`fromImage` plus `tag` (which may carry a digest, as moby accepts)."""
    if tag.startswith("sha256:"):
        return parse_reference(f"{image}@{tag}")
    if tag:
        return parse_reference(f"{image}:{tag}")
    return parse_reference(image)


def login_domain(server_address: str) -> str:
    """`127.0.0.1:5000`, `http://127.0.0.1:5000/v2/` → `127.0.0.1:5000`; Docker Hub's URLs → docker.io."""
    address = server_address.strip()
    if not address:
        return DOCKER_HUB
    host = urlsplit(address).netloc if "://" in address else address.split("/", 1)[0]
    return DOCKER_HUB if is_default_registry_address(host.split(":", 1)[0]) else host


def _has_tag_or_digest(image: str) -> bool:
    return "@" in image or ":" in image.rsplit("/", 1)[-1]


def _pull_error(ref: Reference, err: RegistryError) -> Exception:
    """dockerd's wording for pull failures the CLI reports before any progress."""
    if err.unauthorized or "NAME_UNKNOWN" in err.codes:
        return NotFound(f"pull access denied for {ref.familiar_repository}, repository does not exist or "
                        f"may require 'docker login': {err}")
    if err.not_found:
        return NotFound(f"manifest for {ref.familiar()} not found: {err}")
    return err


def _progress(emit: Emit) -> Callable[[Progress], None]:
    return lambda p: emit(render(p))


def render(p: Progress) -> Message:
    """One Progress as a Docker JSON message (jsonmessage.JSONMessage)."""
    if p.aux is not None:
        return {"progressDetail": {}, "aux": p.aux}
    message: Message = {"status": p.status}
    if p.current is not None:
        detail = {"current": p.current, **({"total": p.total} if p.total else {})}
        message["progressDetail"] = detail
        message["progress"] = progress_bar(p.current, p.total or 0)
    elif p.id:
        message["progressDetail"] = {}
    if p.id:
        message["id"] = p.id
    return message


def progress_bar(current: int, total: int) -> str:
    """moby's JSONProgress.String() at a wide terminal: `[=====>    ]  2.048kB/4.096kB`."""
    if total <= 0:
        return f"{human_size(current):>8}"
    filled = min(50, int(current / total * 100) // 2)
    bar = f"[{'=' * filled}>{' ' * (50 - filled)}] "
    numbers = f"{human_size(current):>8}/{human_size(total)}" if current <= total else ""
    return bar + numbers


def human_size(size: float) -> str:
    """go-units HumanSize: decimal units, four significant digits (`2.048kB`, `105.9MB`)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000
        i += 1
    return f"{size:.4g}{units[i]}"
