"""Registry client: talk OCI distribution v2 to any registry, and pull into / push from the store.

Pieces, each in its own module:

    _hosts      which URL(s) serve a registry domain (loopback/insecure → plain HTTP, mirrors)
    _auth       credentials (X-Registry-Auth) and WWW-Authenticate challenges
    _client     RegistryClient (ping, login, token flow) and Repository (blobs, manifests, uploads)
    _manifest   Docker schema 2 / OCI manifests and indexes as typed values
    _platform   picking one manifest from an index
    _pull       resolve a reference, download missing layers, commit through the image store
    _push       skip / mount / compress-and-upload layers, then config and manifest
    _blobindex  diff_id → remote blob digests seen, so pushes skip work
    _progress   Progress events (Docker's wording) and a throttled byte meter

Typical pull:

    client = RegistryClient(hosts.endpoints("127.0.0.1:5000"), credentials)
    client.connect()
    repo = client.repository("bob/cats", ("pull",))
    resolved = resolve(repo, "latest", host_platform())
    Puller(store, BlobIndex(db), tmp, "127.0.0.1:5000").fetch(repo, resolved, refs, tag_ref, report)
"""

from berth.images.distribution import _mediatypes as mediatypes
from berth.images.distribution._auth import (
    Challenge, Credentials, credentials_from_json, decode_registry_auth, parse_challenge,
)
from berth.images.distribution._blobindex import BlobIndex, RemoteBlob
from berth.images.distribution._client import Manifest, RegistryClient, Repository
from berth.images.distribution._errors import RegistryError, Unreachable
from berth.images.distribution._hosts import (
    DOCKER_HUB, Endpoint, RegistryHosts, is_default_registry_address, is_loopback, validate_insecure, validate_mirror,
)
from berth.images.distribution._manifest import (
    Descriptor, ImageManifest, Index, Platform, parse_manifest, schema2_manifest,
)
from berth.images.distribution._platform import host_platform, parse_platform, select_manifest
from berth.images.distribution._progress import Meter, Progress, Reporter
from berth.images.distribution._pull import Puller, PullResult, Resolved, resolve
from berth.images.distribution._push import PushImage, Pusher, PushResult, mount_sources

__all__ = [
    "BlobIndex", "Challenge", "Credentials", "DOCKER_HUB", "Descriptor", "Endpoint",
    "ImageManifest", "Index", "Manifest", "Meter", "Platform", "Progress", "PullResult", "Puller", "PushImage",
    "PushResult", "Pusher", "RegistryClient", "RegistryError", "RegistryHosts", "RemoteBlob", "Reporter",
    "Repository", "Resolved", "Unreachable", "credentials_from_json", "decode_registry_auth", "host_platform",
    "is_default_registry_address", "is_loopback", "mediatypes", "mount_sources", "parse_challenge", "parse_manifest", "parse_platform",
    "resolve", "schema2_manifest", "select_manifest", "validate_insecure", "validate_mirror",
]
