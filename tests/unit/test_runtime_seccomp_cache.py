"""crun's compiled seccomp filter reused across containers (runtime/seccomp_cache.py)."""

from __future__ import annotations

import base64
from pathlib import Path

from berth.runtime.seccomp_cache import ANNOTATION, SeccompCache

PROFILE = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}


def config(profile: dict | None = PROFILE, **annotations: str) -> dict:
    linux = {"seccomp": profile} if profile else {}
    return {"linux": linux, "annotations": dict(annotations)}


def test_filter_is_reused_only_after_crun_compiled_it_once(tmp_path: Path) -> None:
    cache = SeccompCache("/usr/bin/crun")
    first = config()
    key = cache.apply(first)
    assert key and ANNOTATION not in first["annotations"]
    bpf = tmp_path / "seccomp.bpf"
    bpf.write_bytes(b"\x06\x00\x00\x00\x00\x00\xff\x7f" * 3)
    cache.learn(key, bpf)
    second = config()
    assert cache.apply(second) == key
    assert base64.b64decode(second["annotations"][ANNOTATION]) == bpf.read_bytes()
    other = config({**PROFILE, "defaultAction": "SCMP_ACT_KILL"})
    assert cache.apply(other) != key and ANNOTATION not in other["annotations"]


def test_no_profile_no_key_and_labels_cannot_smuggle_a_filter(tmp_path: Path) -> None:
    cache = SeccompCache("/usr/bin/crun")
    unconfined = config(None, **{ANNOTATION: "AAAA"})
    assert cache.apply(unconfined) is None and ANNOTATION not in unconfined["annotations"]
    labelled = config(**{ANNOTATION: "AAAA"})
    cache.apply(labelled)
    assert ANNOTATION not in labelled["annotations"]


def test_unreadable_or_malformed_filters_are_not_learned(tmp_path: Path) -> None:
    cache = SeccompCache("/usr/bin/crun")
    key = cache.apply(config())
    cache.learn(key, tmp_path / "missing.bpf")
    bad = tmp_path / "bad.bpf"
    bad.write_bytes(b"\x00" * 5)
    cache.learn(key, bad)
    assert key not in cache
