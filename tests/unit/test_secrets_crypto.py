"""Values at rest: the key file (made once, atomically, 0600), AES-GCM sealing bound to its context,
and no clear value anywhere in a SQLite-backed store's files."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

import berth.secrets as secrets_pkg
from berth.secrets import DecryptionFailure, FileKey, PutParameter, Sealer, Secrets, Value
from berth.secrets.testing import StaticKey
from berth.state import Database, SqliteStore

A, R = "123456789012", "us-east-1"


def test_the_key_file_is_made_on_first_use_with_owner_only_modes(tmp_path: Path) -> None:
    keys = FileKey(tmp_path / "secrets")
    assert not (tmp_path / "secrets").exists()  # nothing until a value is sealed
    key = keys.key()
    path = tmp_path / "secrets" / "master.key"
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    assert os.listdir(tmp_path / "secrets") == ["master.key"]  # no temp file left behind
    assert FileKey(tmp_path / "secrets").key() == key  # a restart reads the same key


def test_racing_creators_end_up_with_one_key(tmp_path: Path) -> None:
    found: list[bytes] = []
    threads = [threading.Thread(target=lambda: found.append(FileKey(tmp_path / "s").key())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 1
    assert sorted(os.listdir(tmp_path / "s")) == ["master.key"]


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "master.key").write_bytes(b"short")
    with pytest.raises(DecryptionFailure, match="damaged"):
        FileKey(tmp_path / "s").key()


def test_sealing_round_trips_and_binds_the_context() -> None:
    sealer = Sealer(StaticKey())
    token = sealer.seal(b"hunter2", "ssm|a|r|/x|1")
    assert "hunter2" not in token and token.startswith("v1:")
    assert sealer.seal(b"hunter2", "ssm|a|r|/x|1") != token  # a fresh nonce each time
    assert sealer.open(token, "ssm|a|r|/x|1") == b"hunter2"
    with pytest.raises(DecryptionFailure):
        sealer.open(token, "ssm|a|r|/y|1")  # copied into another record
    with pytest.raises(DecryptionFailure):
        Sealer(StaticKey(b"o" * 32)).open(token, "ssm|a|r|/x|1")  # another key
    tampered = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    for bad in (tampered, "v1:!!!", "plain"):
        with pytest.raises(DecryptionFailure):
            sealer.open(bad, "ssm|a|r|/x|1")


def test_the_state_database_holds_no_value_in_clear(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    kit = Secrets.open(SqliteStore(db), tmp_path)
    for kind in ("String", "StringList", "SecureString"):
        kit.ssm.put(PutParameter(f"/p/{kind}", f"clear-{kind}-value", type=kind), account=A, region=R)
    kit.secretsmanager.create("s1", Value(string="clear-secret-string"), account=A, region=R)
    kit.secretsmanager.create("s2", Value(binary=b"clear-secret-binary"), account=A, region=R)
    kit.secretsmanager.put_value("s1", Value(string="clear-rotated-string"), account=A, region=R)
    db.close()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"clear-" not in data, path
    # and it all reads back after a "restart"
    again = Secrets.open(SqliteStore(Database(tmp_path / "state.db")), tmp_path)
    assert again.resolver.resolve("/p/SecureString", account=A, region=R) == "clear-SecureString-value"
    assert again.secretsmanager.get_value("s2", account=A, region=R).value.binary == b"clear-secret-binary"


def test_the_package_exports_what_it_documents() -> None:
    for name in secrets_pkg.__all__:
        assert hasattr(secrets_pkg, name), name
    assert {"SecretResolver", "Secrets", "ParameterStore", "SecretsManager"} <= set(secrets_pkg.__all__)
