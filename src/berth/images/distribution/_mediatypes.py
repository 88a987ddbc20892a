"""Media types of the manifests, configs and layers a registry serves (Docker schema 2 and OCI)."""

from __future__ import annotations

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_NONDIST_PREFIX = "application/vnd.oci.image.layer.nondistributable.v1.tar"

SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")

INDEXES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
IMAGE_MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
# The Accept header of a pull: what we can read, preferred first (dockerd sends the same four).
PULL_ACCEPT = ", ".join((DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX))

# Layer media types we can unpack (gzip and plain tar; zstd is refused by the image store).
LAYER_TYPES = (DOCKER_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_GZIP, OCI_LAYER_ZSTD)
