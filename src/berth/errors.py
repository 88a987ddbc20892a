"""The few error kinds domain code raises.

Domain code raises one of these with a message that already reads well to a user; each API
package maps the kind to its wire shape in one place (Docker: HTTP status + {"message"}).
"""


class BerthError(Exception):
    """Base of every error berth reports to a client."""


class NotFound(BerthError):
    """The named object does not exist (Docker 404)."""


class AlreadyExists(BerthError):
    """An object with that name or key exists already (Docker 409)."""


class Conflict(BerthError):
    """The object is in a state that forbids the operation (Docker 409)."""


class InvalidArgument(BerthError):
    """The request itself is malformed or out of range (Docker 400)."""


class FailedPrecondition(BerthError):
    """The operation is a no-op in the current state (Docker 304 for start/stop)."""


class Unavailable(BerthError):
    """A host facility or peer the operation needs is missing or failed (Docker 500)."""


class Unsupported(BerthError):
    """A Docker feature berth does not implement (Docker 501, errdefs.NotImplemented)."""
