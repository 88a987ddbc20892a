"""Table alignment and the ps/images rows."""

from berth.cli.render import IMAGES_HEADERS, PS_HEADERS, container_row, ellipsis, image_rows, short_id
from berth.cli.table import render_table

NOW = 1_795_965_300.0
ID = "f" * 12 + "0" * 52


def test_empty_ps_header_matches_docker() -> None:
    assert render_table(PS_HEADERS, []) == (
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    )


def test_empty_images_header_matches_docker() -> None:
    assert render_table(IMAGES_HEADERS, []) == "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"


def test_columns_grow_with_content_and_last_is_unpadded() -> None:
    table = render_table(("A", "B"), [["longer-than-ten", "x"], ["y", "z"]])
    width = len("longer-than-ten") + 3
    assert table.splitlines() == ["A".ljust(width) + "B", "longer-than-ten   x", "y".ljust(width) + "z"]


def test_short_id_and_ellipsis() -> None:
    assert short_id("sha256:" + "a" * 64) == "a" * 12
    assert short_id("b" * 64) == "b" * 12
    assert ellipsis("httpd -f -p 80 -h /www", 20) == "httpd -f -p 80 -h /…"
    assert ellipsis("short", 20) == "short"


def test_container_row() -> None:
    item = {
        "Id": ID, "Names": ["/web"], "Image": "containerofcats", "ImageID": "sha256:" + "1" * 64,
        "Command": "httpd -f -p 80 -h /var/www", "Created": NOW - 120, "State": "running",
        "Status": "Up 2 minutes",
        "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                  {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
    }
    assert container_row(item, NOW) == [
        ID[:12], "containerofcats", '"httpd -f -p 80 -h /…"', "2 minutes ago", "Up 2 minutes",
        "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp", "web",
    ]
    full = container_row(item, NOW, trunc=False)
    assert full[0] == ID and full[2] == '"httpd -f -p 80 -h /var/www"'


def test_container_row_with_only_an_id_does_not_crash() -> None:
    row = container_row({"Id": ID}, NOW)
    assert row[0] == ID[:12] and row[1] == "<no image>" and row[6] == ""


def test_container_row_image_by_id_and_digest() -> None:
    by_id = {"Id": ID, "Image": "sha256:" + "1" * 64, "ImageID": "sha256:" + "1" * 64}
    assert container_row(by_id, NOW)[1] == "1" * 12
    by_digest = {"Id": ID, "Image": "busybox@sha256:" + "2" * 64, "ImageID": "sha256:" + "1" * 64}
    assert container_row(by_digest, NOW)[1] == "busybox"


def test_container_names_hide_link_aliases_when_truncated() -> None:
    item = {"Id": ID, "Names": ["/other/alias", "/web"]}
    assert container_row(item, NOW)[6] == "web"
    assert container_row(item, NOW, trunc=False)[6] == "other/alias,web"


def test_image_rows() -> None:
    item = {"Id": "sha256:" + "a" * 64, "RepoTags": ["containerofcats:latest", "localhost:5000/bob/cats:v1"],
            "Created": NOW - 3 * 86400, "Size": 4_261_000}
    assert image_rows(item, NOW) == [
        ["containerofcats", "latest", "a" * 12, "3 days ago", "4.26MB"],
        ["localhost:5000/bob/cats", "v1", "a" * 12, "3 days ago", "4.26MB"],
    ]


def test_image_rows_untagged() -> None:
    dangling = {"Id": "sha256:" + "a" * 64, "RepoTags": [], "Created": NOW, "Size": 0}
    assert image_rows(dangling, NOW)[0][:2] == ["<none>", "<none>"]
    digest_only = {"Id": "sha256:" + "a" * 64, "RepoTags": None,
                   "RepoDigests": ["localhost:5000/x@sha256:" + "b" * 64], "Created": NOW, "Size": 0}
    assert image_rows(digest_only, NOW)[0][:2] == ["localhost:5000/x", "<none>"]
