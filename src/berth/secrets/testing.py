"""Test kit: a settable clock, a key held in memory, and both services over a MemoryStore."""

from __future__ import annotations

from dataclasses import dataclass

from berth.secrets._crypto import KEY_BYTES, Sealer
from berth.secrets._secretsmanager import SecretsManager
from berth.secrets._ssm import ParameterStore
from berth.state import MemoryStore, ObjectStore


class ManualClock:
    """Epoch seconds that move only when told: `clock.advance(86400)`."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class StaticKey:
    """A fixed key (a `KeySource`), for tests that need no file."""

    def __init__(self, key: bytes = b"k" * KEY_BYTES) -> None:
        assert len(key) == KEY_BYTES
        self._key = key

    def key(self) -> bytes:
        return self._key


@dataclass
class Kit:
    store: ObjectStore
    clock: ManualClock
    ssm: ParameterStore
    secretsmanager: SecretsManager


def memory_kit(store: ObjectStore | None = None, clock: ManualClock | None = None) -> Kit:
    """Both services over an in-memory store, a StaticKey and a ManualClock."""
    store = store if store is not None else MemoryStore()
    clock = clock or ManualClock()
    sealer = Sealer(StaticKey())
    return Kit(store, clock, ParameterStore(store, sealer, clock=clock),
               SecretsManager(store, sealer, clock=clock, suffix=lambda: "AbCdEf"))
