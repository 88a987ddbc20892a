"""Human durations, sizes and Docker value syntaxes, checked against go-units' outputs."""

import pytest

from berth.cli.humanize import ago, bytes_size, human_duration, human_size
from berth.cli.units import go_duration_seconds, nano_cpus, ram_in_bytes, timestamp_param


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "Less than a second"),
        (0.9, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (59 * 60, "59 minutes"),
        (3600, "About an hour"),
        (89 * 60, "About an hour"),
        (91 * 60, "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (13 * 86400, "13 days"),
        (14 * 86400, "2 weeks"),
        (59 * 86400, "8 weeks"),
        (60 * 86400, "2 months"),
        (2 * 365 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_ago_never_negative() -> None:
    assert ago(100.0, 95.0) == "Less than a second ago"
    assert ago(0.0, 5.0) == "5 seconds ago"


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (2048000, "2.05MB"),
        (4_261_000, "4.26MB"),
        (1_234_567_890, "1.23GB"),
        (999_999, "1e+03kB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


def test_bytes_size() -> None:
    assert bytes_size(16 * 1024 * 1024) == "16MiB"
    assert bytes_size(16_700_000_000) == "15.55GiB"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("64m", 64 << 20),
        ("64M", 64 << 20),
        ("64mb", 64 << 20),
        ("64MiB", 64 << 20),
        ("1g", 1 << 30),
        ("1.5g", int(1.5 * (1 << 30))),
        ("512", 512),
        ("10 k", 10240),
        ("2b", 2),
    ],
)
def test_ram_in_bytes(text: str, value: int) -> None:
    assert ram_in_bytes(text) == value


@pytest.mark.parametrize("text", ["", "m", "64x", "-1m", "1..2m", "64 mm"])
def test_ram_in_bytes_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        ram_in_bytes(text)


def test_nano_cpus() -> None:
    assert nano_cpus("1.5") == 1_500_000_000
    assert nano_cpus("0.01") == 10_000_000
    with pytest.raises(ValueError):
        nano_cpus("two")
    with pytest.raises(ValueError):
        nano_cpus("-1")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("42m", 2520.0), ("1h30m", 5400.0), ("1.5h", 5400.0), ("500ms", 0.5), ("0", 0.0), ("10s", 10.0)],
)
def test_go_duration(text: str, seconds: float) -> None:
    assert go_duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "abc", "1x", "2013-01-02"])
def test_go_duration_rejects(text: str) -> None:
    assert go_duration_seconds(text) is None


def test_timestamp_param_forms() -> None:
    now = 1_700_000_000.0
    assert timestamp_param("10m", now) == "1699999400.000000000"
    assert timestamp_param("1699999999", now) == "1699999999"
    assert timestamp_param("2013-01-02T13:23:37Z", now) == "1357133017.000000000"
    assert timestamp_param("2013-01-02T13:23:37.5+01:00", now) == "1357129417.500000000"
    with pytest.raises(ValueError, match="failed to parse"):
        timestamp_param("yesterday", now)
