"""LayerGuard: which layer entries are refused as breakouts, and how the refusal is worded."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest

from berth.errors import InvalidArgument
from berth.images import ImageStore
from berth.images._layer_check import LayerBreakout, LayerGuard, entry_parts, whiteout_target
from berth.state import Database


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


F, D, S, H = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE


def run(*members: tarfile.TarInfo) -> LayerGuard:
    guard = LayerGuard()
    for m in members:
        guard.check(m)
    return guard


def refused(*members: tarfile.TarInfo) -> LayerBreakout:
    with pytest.raises(LayerBreakout) as err:
        run(*members)
    return err.value


@pytest.mark.parametrize(("name", "parts"), [
    ("etc/passwd", ["etc", "passwd"]), ("./etc/", ["etc"]), ("./", []), (".", []),
    ("a/../b", ["b"]), ("a//b/./c", ["a", "b", "c"]), ("a/b/../../c", ["c"]),
])
def test_names_resolve_inside_the_root(name: str, parts: list[str]) -> None:
    assert entry_parts(name) == parts


@pytest.mark.parametrize("name", ["..", "../x", "a/../../x", "./../x", "a/b/../../../x", "/etc/passwd", "/"])
def test_names_leaving_the_root_are_refused(name: str) -> None:
    with pytest.raises(LayerBreakout) as err:
        entry_parts(name)
    assert err.value.entry == name
    assert "is outside of the layer root" in str(err.value)
    assert isinstance(err.value, InvalidArgument)  # 400 at the API, errorDetail in a stream


def test_whiteout_targets() -> None:
    assert whiteout_target("d/.wh.x", ["d", ".wh.x"]) == ["d", "x"]
    assert whiteout_target("d/.wh..wh..opq", ["d", ".wh..wh..opq"]) is None
    assert whiteout_target(".wh..wh.plnk", [".wh..wh.plnk"]) is None
    assert whiteout_target("d/x", ["d", "x"]) is None
    for bad in (".wh.", ".wh..", ".wh..."):
        with pytest.raises(LayerBreakout):
            whiteout_target(bad, [bad])


def test_an_ordinary_layer_passes() -> None:
    run(member("bin", D), member("bin/busybox"), member("bin/sh", H, "bin/busybox"),
        member("bin/ls", S, "busybox"), member("etc/mtab", S, "/proc/self/mounts"),
        member("lib", S, "../../../usr/lib"), member("usr/lib/x"), member("hl-to-link", H, "lib"),
        member("etc/.wh.old"), member("etc/.wh..wh..opq"))


def test_write_through_a_symlink_is_refused() -> None:
    err = refused(member("etc", S, "/etc"), member("etc/passwd"))
    assert err.entry == "etc/passwd"
    assert str(err) == 'failed to register layer: "etc/passwd" would be written through the symlink "etc"'


def test_deep_write_through_a_symlink_is_refused() -> None:
    err = refused(member("a/b", S, "../../../../tmp"), member("a/b/c/d"))
    assert err.entry == "a/b/c/d" and '"a/b"' in str(err)


def test_a_symlink_replaced_by_a_directory_is_a_directory() -> None:
    run(member("x", S, "/tmp"), member("x", D), member("x/ok"))
    run(member("x", S, "/tmp"), member("x"), member("y"))  # replaced by a file


def test_a_whiteout_over_a_symlink_is_not_a_directory() -> None:
    err = refused(member("x", S, "/tmp"), member(".wh.x"), member("x/y"))
    # the whiteout is a character device on unpack: not a directory either
    assert err.entry == "x/y" and 'parent "x" is not a directory' in str(err)


def test_a_file_as_parent_is_refused() -> None:
    err = refused(member("f"), member("f/g"))
    assert 'parent "f" is not a directory' in str(err)


@pytest.mark.parametrize("target", ["../etc/shadow", "../../../../etc/shadow", "/etc/shadow", "a/../../x"])
def test_hardlinks_out_of_the_root_are_refused(target: str) -> None:
    err = refused(member("h", H, target))
    assert err.entry == "h"
    assert str(err).startswith(f'failed to register layer: invalid hardlink "h" -> "{target}"')


def test_hardlink_through_a_symlink_is_refused() -> None:
    err = refused(member("l", S, "/etc"), member("h", H, "l/shadow"))
    assert "through a symlink" in str(err)


def test_hardlink_to_a_directory_or_a_missing_target_is_refused() -> None:
    assert "is a directory" in str(refused(member("d", D), member("h", H, "d")))
    assert "is a directory" in str(refused(member("d/f"), member("h", H, "d")))  # an implicit dir
    assert "is a directory" in str(refused(member("h", H, ".")))
    assert "not in this layer" in str(refused(member("h", H, "etc/passwd")))


def test_hardlink_to_a_file_whose_directory_was_replaced_is_refused() -> None:
    err = refused(member("d", D), member("d/f"), member("d"), member("h", H, "d/f"))
    assert "not in this layer" in str(err)


def test_the_refusal_names_the_layer() -> None:
    err = refused(member("../x")).in_layer("sha256:" + "ab" * 32)
    assert str(err) == f'failed to register layer sha256:{"ab" * 32}: "../x" is outside of the layer root'
    assert err.entry == "../x"


def test_names_are_quoted_like_go() -> None:
    err = refused(member('../a"b\\c'))
    assert '"../a\\"b\\\\c"' in str(err)


# -- through the store: a refused layer commits nothing -------------------------------------------


def tar_bytes(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def blob_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / "blobs").rglob("*") if p.is_file())


def test_import_of_an_escaping_layer_leaves_nothing(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "root", Database(tmp_path / "state.db"))
    before = blob_files(tmp_path / "root")
    data = tar_bytes((member("ok"), b"fine"), (member("lnk", S, "/etc"), b""), (member("lnk/cron.d/x"), b"evil"))
    with pytest.raises(LayerBreakout) as err:
        store.import_tar(io.BytesIO(data), "evil:latest")
    assert '"lnk/cron.d/x"' in str(err.value) and "failed to register layer sha256:" in str(err.value)
    assert blob_files(tmp_path / "root") == before
    assert store.list() == []
    assert [p.name for p in (tmp_path / "root" / "layers").iterdir()] == []


def test_replacing_many_directories_stays_linear() -> None:
    """A crafted layer replacing each of many directories must not cost a scan per directory."""
    n = 20_000
    start = time.monotonic()
    run(*[member(f"d{i}/f") for i in range(n)], *[member(f"d{i}") for i in range(n)],
        *[member(f"h{i}", H, f"d{i}") for i in range(0, n, 1000)])
    assert time.monotonic() - start < 5
    assert "not in this layer" in str(refused(member("d/f"), member("d"), member("h", H, "d/f")))
