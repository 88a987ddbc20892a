"""Wait for a file descriptor (pidfd, pipe, inotify) to become readable."""

from __future__ import annotations

import asyncio
import select


async def readable(fd: int, timeout: float | None = None) -> bool:
    """Resolve when `fd` is readable (True) or after `timeout` seconds (False)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not future.done():
            future.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await asyncio.wait_for(future, timeout)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
    return True


def readable_blocking(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])
