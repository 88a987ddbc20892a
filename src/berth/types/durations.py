"""Docker's wording for durations (go-units HumanDuration), shared by the daemon's `Status`
texts and the CLI's `CREATED` column. Pure."""

from __future__ import annotations


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: `Less than a second`, `5 seconds`, `About an hour`, `3 days`..."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = secs // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    # Go rounds to the nearest hour here (time.Duration.Round), half away from zero.
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"
