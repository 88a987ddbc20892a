"""Reuse crun's compiled seccomp filter across containers with the same profile.

crun compiles the OCI `linux.seccomp` section with libseccomp on every `create` (≈ 8 ms of the
≈ 30 ms create for Docker's default profile on these hosts) and leaves the result in its state
dir as `<state root>/<id>/seccomp.bpf`. crun also accepts a precompiled filter through the
`run.oci.seccomp_bpf_data` annotation (base64; it then ignores the seccomp section). So after
the first container with a given profile we keep its BPF in memory and hand it to the next ones.

The key covers the profile's JSON and the crun binary (path, size, mtime): the filter depends on
crun's and libseccomp's translation and on the host architecture, all fixed for one binary on
one host. runc has no such annotation; this is used with crun only. The spec keeps its seccomp
section either way, so `docker inspect`-style readers and exec see the same profile.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

ANNOTATION = "run.oci.seccomp_bpf_data"
MAX_ENTRIES = 64  # distinct profiles kept; a daemon normally sees one or two


class SeccompCache:
    def __init__(self, runtime_binary: str) -> None:
        try:
            st = os.stat(runtime_binary)
            self._salt = f"{runtime_binary}:{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            self._salt = runtime_binary
        self._lock = threading.Lock()
        self._filters: dict[str, str] = {}  # key -> base64 BPF

    def key(self, config: dict[str, Any]) -> str | None:
        """The cache key of the spec's seccomp section; None when it has none."""
        profile = config.get("linux", {}).get("seccomp")
        if not profile:
            return None
        text = json.dumps(profile, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(f"{self._salt}\n{text}".encode()).hexdigest()

    def apply(self, config: dict[str, Any]) -> str | None:
        """Add the cached filter to `config` when there is one; returns the key to `learn` under.

        The annotation is always ours: one coming from the container's labels is dropped (it
        would replace the filter)."""
        annotations = config.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(ANNOTATION, None)
        key = self.key(config)
        if key is None:
            return None
        with self._lock:
            data = self._filters.get(key)
        if data is not None:
            config.setdefault("annotations", {})[ANNOTATION] = data
        return key

    def learn(self, key: str | None, bpf_file: Path) -> None:
        """Remember the filter crun compiled for `key` (read from its state dir)."""
        if key is None:
            return
        with self._lock:
            if key in self._filters:
                return
        try:
            data = bpf_file.read_bytes()
        except OSError:
            return
        if not data or len(data) % 8:  # a BPF program is a whole number of 8-byte instructions
            return
        with self._lock:
            if len(self._filters) >= MAX_ENTRIES:
                self._filters.pop(next(iter(self._filters)))
            self._filters[key] = base64.b64encode(data).decode()

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._filters
