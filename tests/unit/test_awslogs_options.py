"""The awslogs driver's options at create (dockerd's wording) and its settings at start."""

from __future__ import annotations

from typing import Any

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.api.docker import wire
from berth.api.shapes import check
from berth.engine.containers import _config as cfg
from berth.engine.awslogs_options import (
    DEFAULT_MAX_BUFFER, awslogs_config, log_tag, multiline_pattern, ram_in_bytes, validate_log_config,
)
from berth.errors import InvalidArgument

CID = "ab" * 32


def create(options: dict[str, str], driver: str = "awslogs") -> None:
    """A create's HostConfig as the API takes it: the wire shape checked, then converted."""
    body = check({"Image": "busybox", "HostConfig": {"LogConfig": {"Type": driver, "Config": options}}},
                 wire.CONTAINER_CREATE)
    cfg.validate_host_config(cfg.normalize_host_config(typed_hc(body["HostConfig"])))


@pytest.mark.parametrize(("options", "message"), [
    ({"awslogs-group": "g", "bogus": "x"}, "unknown log opt 'bogus' for awslogs log driver"),
    ({"awslogs-region": "us-east-1"}, "must specify a value for log opt 'awslogs-group'"),
    ({"awslogs-group": ""}, "must specify a value for log opt 'awslogs-group'"),
    ({"awslogs-group": "g", "awslogs-create-group": "yes"},
     "must specify valid value for log opt 'awslogs-create-group': strconv.ParseBool: parsing \"yes\": invalid syntax"),
    ({"awslogs-group": "g", "awslogs-datetime-format": "%Y", "awslogs-multiline-pattern": "^x"},
     "you cannot configure log opt 'awslogs-datetime-format' and 'awslogs-multiline-pattern' at the same time"),
    ({"awslogs-group": "g", "mode": "sometimes"}, "logger: logging mode not supported: sometimes"),
    ({"awslogs-group": "g", "max-buffer-size": "4m"},
     "logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
    ({"awslogs-group": "g", "mode": "non-blocking", "max-buffer-size": "lots"},
     "error parsing option max-buffer-size: invalid size: 'lots'"),
    ({"awslogs-group": "g", "awslogs-max-buffered-events": "0"},
     "must specify a positive integer for log opt 'awslogs-max-buffered-events': 0"),
])
def test_create_refuses_what_dockerd_refuses(options: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        create(options)
    assert str(err.value) == message


def test_unknown_driver_is_worded_as_dockerd() -> None:
    with pytest.raises(InvalidArgument) as err:
        create({}, driver="bogus")
    assert str(err.value) == "logger: no log driver named 'bogus' is registered"


def test_mode_is_checked_before_the_driver_as_moby_does() -> None:
    with pytest.raises(InvalidArgument, match="logging mode not supported"):
        create({"mode": "x"}, driver="bogus")


def test_every_documented_option_is_accepted() -> None:
    create({"awslogs-group": "g", "awslogs-stream": "s", "awslogs-region": "eu-west-1", "awslogs-create-group": "true",
            "mode": "non-blocking", "max-buffer-size": "4m", "awslogs-datetime-format": "%Y-%m-%d",
            "awslogs-endpoint": "http://x", "tag": "{{.Name}}", "awslogs-stream-prefix": "p"})
    create({"awslogs-group": "g", "awslogs-multiline-pattern": "^INFO", "mode": "blocking"})


def test_none_driver_takes_any_option() -> None:
    validate_log_config("none", {"whatever": "x", "mode": "bogus"}, ("none",))


def test_log_options_must_be_strings() -> None:
    # refused at the edge, in Go's words (as dockerd's JSON decoder refuses it)
    with pytest.raises(InvalidArgument, match="Go struct field HostConfig.LogConfig.Config of type string"):
        create({"awslogs-group": 5})  # type: ignore[dict-item]


def config(**options: Any) -> Any:
    return awslogs_config(options, container_id=CID, name="/web", image="busybox", image_id="sha256:" + "c" * 64,
                          default_region="us-east-1")


def test_stream_name_rules() -> None:
    assert config(**{"awslogs-group": "g"}).stream == CID  # dockerd's default {{.FullID}}
    assert config(**{"awslogs-group": "g", "awslogs-stream": "s1"}).stream == "s1"
    assert config(**{"awslogs-group": "g", "awslogs-stream-prefix": "web"}).stream == f"web/{CID}"
    assert config(**{"awslogs-group": "g", "tag": "{{.Name}}/{{.ID}}"}).stream == f"web/{CID[:12]}"


def test_unknown_tag_field_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="can't evaluate field Nope"):
        log_tag("{{.Nope}}", container_id=CID, name="x", image="i", image_id="")


def test_settings_at_start() -> None:
    c = config(**{"awslogs-group": "g", "awslogs-create-group": "true", "mode": "non-blocking",
                  "max-buffer-size": "4m", "awslogs-region": "eu-west-1"})
    assert (c.group, c.region, c.create_group, c.blocking, c.max_buffer) == ("g", "eu-west-1", True, False, 4 << 20)
    d = config(**{"awslogs-group": "g"})
    assert (d.region, d.create_group, d.blocking, d.max_buffer, d.multiline) == (
        "us-east-1", False, True, DEFAULT_MAX_BUFFER, None)


def test_datetime_format_becomes_moby_pattern() -> None:
    pattern = multiline_pattern({"awslogs-datetime-format": "%Y-%m-%d %H:%M:%S"})
    assert pattern is not None
    assert pattern.search(b"2026-12-07 10:11:12 start")
    assert not pattern.search(b"    at frame 3")


def test_bad_multiline_pattern_fails_at_start() -> None:
    with pytest.raises(InvalidArgument, match="awslogs could not parse multiline pattern key"):
        config(**{"awslogs-group": "g", "awslogs-multiline-pattern": "("})


@pytest.mark.parametrize(("text", "size"), [("4m", 4 << 20), ("1k", 1024), ("512", 512), ("2MiB", 2 << 20),
                                            ("1.5k", 1536), ("1 g", 1 << 30)])
def test_ram_in_bytes(text: str, size: int) -> None:
    assert ram_in_bytes(text) == size
