"""Human-readable durations and sizes, worded exactly as Docker's go-units prints them."""

from __future__ import annotations

from berth.types.durations import human_duration

__all__ = ["ago", "bytes_size", "human_duration", "human_size"]

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def ago(created_unix: float, now_unix: float) -> str:
    """The `CREATED` column: `5 minutes ago`."""
    return f"{human_duration(max(0.0, now_unix - created_unix))} ago"


def _scale(size: float, base: float, units: tuple[str, ...]) -> tuple[float, str]:
    index = 0
    while size >= base and index < len(units) - 1:
        size /= base
        index += 1
    return size, units[index]


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision (decimal units): 2048000 -> `2.05MB`, as `docker images`."""
    value, unit = _scale(float(size), 1000.0, _DECIMAL_UNITS)
    # Python's %g follows C, which Go's %g matches for these magnitudes (< 1000).
    return f"{value:.{precision}g}{unit}"


def bytes_size(size: float) -> str:
    """go-units BytesSize (binary units): 16777216 -> `16MiB`, as `docker info` Total Memory."""
    value, unit = _scale(float(size), 1024.0, _BINARY_UNITS)
    return f"{value:.4g}{unit}"
