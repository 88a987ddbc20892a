"""Turn crun/runc error output into Docker's wording.

The docker CLI classifies failures by substring (`executable file not found`, `no such file or
directory` -> exit 127; `permission denied` -> 126), so the text is part of the contract.
runc already speaks Docker's dialect (logrus lines: `time=... level=error msg="..."`); crun's
phrasing is rewritten into runc's.
"""

from __future__ import annotations

import re

_LOGRUS_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')
_CRUN_NOT_FOUND = re.compile(r"executable file `(.*)` not found(?: in \$PATH)?(?::.*)?$")
_CRUN_EXEC_DENIED = re.compile(r"^open executable: Permission denied$")


def runtime_message(stderr: str, args0: str = "") -> str:
    """The runtime's own error text: logrus `msg` values, crun phrasing made Docker-like."""
    lines = [ln.strip() for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("[conmon:")]
    messages = [_unlogrus(ln) for ln in lines]
    text = "; ".join(m for m in messages if m) or "unknown error"
    return _docker_phrasing(text, args0)


def _unlogrus(line: str) -> str:
    match = _LOGRUS_MSG.search(line)
    if match is None:
        return line
    return re.sub(r"\\(.)", r"\1", match.group(1))


def _docker_phrasing(text: str, args0: str) -> str:
    match = _CRUN_NOT_FOUND.search(text)
    if match:
        name = match.group(1)
        if "/" in name:
            return f'exec: "{name}": stat {name}: no such file or directory'
        return f'exec: "{name}": executable file not found in $PATH'
    if _CRUN_EXEC_DENIED.search(text):
        return f'exec: "{args0}": permission denied'
    return text


def create_error_text(runtime: str, stderr: str, args0: str) -> str:
    """Docker's wording for a failed container create/start."""
    msg = runtime_message(stderr, args0)
    if not msg.startswith(f"{runtime} create failed"):
        if msg.startswith("exec: "):
            msg = f"unable to start container process: {msg}"
        msg = f"{runtime} create failed: {msg}"
    return (
        "failed to create task for container: failed to create shim task: "
        f"OCI runtime create failed: {msg}: unknown"
    )


def exec_error_text(stderr: str, args0: str) -> str:
    """Docker's wording for a failed exec."""
    msg = runtime_message(stderr, args0)
    if not msg.startswith("exec failed"):
        msg = f"exec failed: unable to start container process: {msg}"
    return f"OCI runtime exec failed: {msg}: unknown"


def is_user_error(text: str) -> bool:
    """True when the failure is the request's fault (a bad command), not the host's."""
    return exec_failure_code(text) is not None


def exec_failure_code(text: str) -> int | None:
    """127 for a missing executable, 126 for one that cannot run; None otherwise."""
    lowered = text.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered or "not a directory" in lowered:
        return 126
    return None
