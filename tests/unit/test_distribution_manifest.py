"""Manifests, indexes, platform selection and progress rendering (pure)."""

from __future__ import annotations

import json

import pytest

from berth.engine.distribution import human_size, progress_bar, render
from berth.errors import InvalidArgument, NotFound
from berth.images.distribution import (
    Descriptor, ImageManifest, Index, Platform, Progress, mediatypes as mt, parse_manifest, parse_platform,
    schema2_manifest, select_manifest,
)
from berth.images.distribution._progress import Meter
from berth.types import Digest

D1, D2, D3 = (Digest("sha256:" + c * 64) for c in "123")


def _index(*platforms: dict[str, str]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": str(d), "size": 10, "platform": p}
        for d, p in zip((D1, D2, D3), platforms)]}).encode()


def test_parse_image_manifest_round_trip() -> None:
    data = schema2_manifest(Descriptor(mt.DOCKER_CONFIG, D1, 5), [Descriptor(mt.DOCKER_LAYER_GZIP, D2, 7)])
    parsed = parse_manifest(data)
    assert isinstance(parsed, ImageManifest) and parsed.media_type == mt.DOCKER_MANIFEST
    assert parsed.config.digest == D1 and [(l.digest, l.size) for l in parsed.layers] == [(D2, 7)]
    assert json.loads(data)["layers"][0] == {"mediaType": mt.DOCKER_LAYER_GZIP, "size": 7, "digest": str(D2)}


def test_media_type_from_header_when_body_has_none() -> None:
    data = json.dumps({"schemaVersion": 2, "config": {"digest": str(D1), "size": 1}, "layers": []}).encode()
    assert parse_manifest(data, mt.OCI_MANIFEST + "; charset=utf-8").media_type == mt.OCI_MANIFEST


@pytest.mark.parametrize("data", [b"not json", b"[]", json.dumps({"schemaVersion": 1}).encode(),
                                  json.dumps({"schemaVersion": 2}).encode()])
def test_bad_manifests(data: bytes) -> None:
    with pytest.raises(InvalidArgument):
        parse_manifest(data)


def test_select_platform_from_index() -> None:
    index = parse_manifest(_index({"os": "linux", "architecture": "arm64", "variant": "v8"},
                                  {"os": "linux", "architecture": "amd64"},
                                  {"os": "unknown", "architecture": "unknown"}))
    assert isinstance(index, Index)
    assert select_manifest(index, Platform("linux", "amd64")).digest == D2
    assert select_manifest(index, parse_platform("linux/arm64/v8")).digest == D1
    assert select_manifest(index, parse_platform("arm64")).digest == D1
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x in the manifest list entries"):
        select_manifest(index, Platform("linux", "s390x"))


def test_arm64_variant_defaults_to_v8() -> None:
    index = parse_manifest(_index({"os": "linux", "architecture": "arm64"}))
    assert isinstance(index, Index)
    assert select_manifest(index, Platform("linux", "arm64", "v8")).digest == D1


def test_parse_platform_rejects_garbage() -> None:
    with pytest.raises(InvalidArgument):
        parse_platform("linux/amd64/v1/extra")


def test_render_progress_messages() -> None:
    assert render(Progress("Pulling fs layer", "abc")) == {"status": "Pulling fs layer", "progressDetail": {},
                                                           "id": "abc"}
    assert render(Progress("Digest: sha256:x")) == {"status": "Digest: sha256:x"}
    msg = render(Progress("Pushing", "abc", 2048, 4096))
    assert msg["progressDetail"] == {"current": 2048, "total": 4096}
    assert msg["progress"] == "[" + "=" * 25 + ">" + " " * 25 + "]  2.048kB/4.096kB"
    assert render(Progress("", aux={"Tag": "latest"})) == {"progressDetail": {}, "aux": {"Tag": "latest"}}


def test_human_size_and_bar_edges() -> None:
    assert human_size(0) == "0B" and human_size(999) == "999B" and human_size(105_956_311) == "106MB"
    assert progress_bar(10, 0) == "     10B"
    assert progress_bar(5, 4).endswith("] ")


def test_meter_throttles() -> None:
    seen: list[Progress] = []
    now = [0.0]
    meter = Meter(seen.append, "abc", "Downloading", 100, interval=1.0, clock=lambda: now[0])
    meter.add(10)
    meter.add(10)
    now[0] = 2.0
    meter.add(10)
    meter.done()
    assert [p.current for p in seen] == [10, 30, 30]
