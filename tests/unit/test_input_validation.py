"""Domain checks that turn bad client input into InvalidArgument (400) before anything changes."""

from __future__ import annotations

from berth.api.docker.create_requests import volume_create_from_wire

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from berth.api.docker.container_spec import host_config_from_wire as typed_hc
from berth.api.docker.container_spec import config_from_wire
from berth.engine.containers import _config as cfg
from berth.engine import filters
from berth.engine.containers import check_list_filters, check_tty_size, check_wait_condition, parse_signal
from berth.engine.image_prune import _dangling_only
from berth.engine.volumes import VolumeService
from berth.errors import InvalidArgument
from berth.state import Database
from berth.types import parse_reference
from berth.volumes import VolumeStore


# --- filters -----------------------------------------------------------------------------------------

def test_filter_timestamps() -> None:
    assert filters.timestamp("1700000000.5") == 1700000000.5
    assert filters.timestamp("2024-01-02T03:04:05Z") == 1704164645
    assert filters.timestamp("2024-01-02T03:04:05.123456Z") == pytest.approx(1704164645.123456)
    assert filters.timestamp("2024-01-02") == 1704153600
    assert filters.timestamp("1h30m", now=lambda: 10_000.0) == 10_000 - 5400
    for bad in ("soon", "1e400", "nan", "", "12x"):
        with pytest.raises(InvalidArgument):
            filters.timestamp(bad)


def test_container_list_filters_are_checked() -> None:
    check_list_filters({"status": ["running", "exited"], "label": ["a=b"], "exited": ["0"]})
    for bad in ({"status": ["bogus"]}, {"exited": ["x"]}, {"bogus": ["1"]}):
        with pytest.raises(InvalidArgument, match="invalid filter"):
            check_list_filters(bad)


def test_image_prune_refuses_an_unreadable_dangling_value() -> None:
    assert _dangling_only({"dangling": ["false"]}) is False
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling=maybe'"):
        _dangling_only({"dangling": ["maybe"]})


def test_volume_filters_are_checked_even_with_no_volumes(tmp_path: Path) -> None:
    svc = VolumeService(VolumeStore(tmp_path, Database(tmp_path / "state.db")), users=lambda: [])
    for bad in ({"dangling": ["maybe"]}, {"bogus": ["x"]}):
        with pytest.raises(InvalidArgument, match="invalid filter"):
            svc.list_json(bad)
        with pytest.raises(InvalidArgument, match="invalid filter"):
            svc.prune(bad, all_volumes=True)
    with pytest.raises(InvalidArgument, match="too long"):
        svc.create_json(volume_create_from_wire({"Name": "v" * 256}))


# --- containers ----------------------------------------------------------------------------------------

def test_wait_conditions_and_terminal_sizes() -> None:
    for ok in ("", "not-running", "next-exit", "removed"):
        check_wait_condition(ok)
    with pytest.raises(InvalidArgument, match='invalid condition: "bogus"'):
        check_wait_condition("bogus")
    check_tty_size(0, 65535)
    for h, w in ((-1, 10), (10, 1 << 16), (99999999999, 1)):
        with pytest.raises(InvalidArgument):
            check_tty_size(h, w)


def test_signal_numbers_are_bounded() -> None:
    assert parse_signal("9") == 9 and parse_signal("SIGTERM") == 15
    for bad in ("0", "65", "99999999999", "SIGBOGUS"):
        with pytest.raises(InvalidArgument, match="Invalid signal"):
            parse_signal(bad)


@pytest.mark.parametrize(("request_", "message"), [
    ({"WorkingDir": "rel"}, "needs to be an absolute path"),
    ({"ExposedPorts": {"99999/tcp": {}}}, "invalid port specification"),
    ({"ExposedPorts": {"80/bogus": {}}}, "invalid port specification"),
])
def test_config_values_moby_refuses(request_: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        cfg.validate_config(config_from_wire(request_))


def test_unknown_log_driver_is_refused() -> None:
    cfg.validate_host_config(cfg.normalize_host_config(typed_hc({"LogConfig": {"Type": "local"}})))
    with pytest.raises(InvalidArgument, match="no log driver named 'bogus'"):
        cfg.validate_host_config(cfg.normalize_host_config(typed_hc({"LogConfig": {"Type": "bogus"}})))


# --- references --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["../x", "../../etc", ".x/y", "-a.b/x", "a..b/x"])
def test_a_reference_whose_registry_is_no_host_name_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        parse_reference(text)


@pytest.mark.parametrize("text", ["localhost:5000/x", "127.0.0.1:5000/a/b:1", "[::1]:5000/x", "reg-1.example.io/x"])
def test_registry_host_names_still_parse(text: str) -> None:
    assert parse_reference(text).domain == text.split("/")[0]


# --- docker cp into a container ------------------------------------------------------------------------

def _tar(names: list[str], cut: int | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"data"))
    data = buf.getvalue()
    return data[:cut] if cut else data


@pytest.mark.parametrize("payload", [b"not a tar" * 100, _tar(["a", "b"], cut=700), _tar(["ok", "../escape"])])
def test_a_bad_archive_changes_nothing_in_the_container(tmp_path: Path, payload: bytes) -> None:
    from berth.engine.archive._tar import extract_tar

    root = tmp_path / "rootfs"
    (root / "dst").mkdir(parents=True)
    tar_file = tmp_path / "upload.tar"
    tar_file.write_bytes(payload)
    container: Any = type("C", (), {"id": "c" * 64, "name": "c"})()
    with pytest.raises(InvalidArgument):
        extract_tar(root, "/dst", container, tar_file, no_overwrite_dir_non_dir=False, copy_uid_gid=False)
    assert list((root / "dst").iterdir()) == []
    assert not (tmp_path / "escape").exists()
