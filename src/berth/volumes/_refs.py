"""Which containers hold each mounted volume: moby's per-volume active count, pure.

Holders are kept as a set of container ids rather than a number, so a release that runs twice
for one container (teardown runs at exit and again at removal) counts once, and a daemon
restart can rebuild the counts from the running containers.
"""

from __future__ import annotations


class MountRefs:
    def __init__(self) -> None:
        self._holders: dict[str, set[str]] = {}

    def hold(self, volume: str, holder: str) -> bool:
        """Count `holder` as a user of `volume`; False when it already was one."""
        holders = self._holders.setdefault(volume, set())
        if holder in holders:
            return False
        holders.add(holder)
        return True

    def release_one(self, volume: str, holder: str) -> bool:
        """Drop one hold; True when `volume` is left without holders (unmount it)."""
        holders = self._holders.get(volume)
        if holders is None or holder not in holders:
            return False
        holders.discard(holder)
        if holders:
            return False
        del self._holders[volume]
        return True

    def release(self, holder: str) -> list[str]:
        """Drop every hold of `holder`; the volumes left without holders, sorted."""
        return sorted(v for v in [v for v, hs in self._holders.items() if holder in hs]
                      if self.release_one(v, holder))

    def holders(self, volume: str) -> frozenset[str]:
        return frozenset(self._holders.get(volume, ()))

    def held(self) -> frozenset[str]:
        """Volumes with at least one holder."""
        return frozenset(self._holders)
