"""berth's OCI distribution registry: storage, metadata, uploads, auth and the HTTP API.

Public surface:

- `RegistryConfig`, `RegistryServer` — what the daemon starts (`await server.start(host, port)`).
- `Registry` — the operations (blobs, uploads, manifests, tags, referrers, repositories), blocking.
- `open_registry(config)` — storage + index + service without a server (CLI, ECR, tests);
  `make_auth(config)` — the auth it would use; `parse_listen_addr` — `--registry-addr` values.
- `collect_garbage(...)`, `GcReport` — `berth registry gc`.
- `RegistryAuth`, `Htpasswd`, `TokenSigner`, `Policy`, `Access`, `Authenticator`, `hash_password` — auth.
- `RegistryError` and the descriptor table in `berth.registry._errors` — the spec's wire errors;
  `TAG_INVALID` — the one ECR's adapter raises itself.
- `UploadSession` — an upload in progress (ECR's layer API drives uploads through it).
- `BlobStorage`, `FilesystemStorage` — the storage driver seam.

See README.md beside this file for the layout on disk and the request flows.
"""

from berth.registry._auth import Access, Authenticator, Htpasswd, Policy, RegistryAuth, TokenSigner, hash_password
from berth.registry._errors import TAG_INVALID, RegistryError
from berth.registry._gc import GcReport, collect_garbage
from berth.registry._server import RegistryConfig, RegistryServer, make_auth, open_registry, parse_listen_addr
from berth.registry._service import Registry
from berth.registry._storage import BlobStorage, FilesystemStorage
from berth.registry._uploads import UploadSession

__all__ = [
    "TAG_INVALID", "Access", "Authenticator", "BlobStorage", "FilesystemStorage", "GcReport", "Htpasswd", "Policy",
    "Registry", "RegistryAuth", "RegistryConfig", "RegistryError", "RegistryServer", "TokenSigner",
    "UploadSession", "collect_garbage", "hash_password", "make_auth", "open_registry", "parse_listen_addr",
]
