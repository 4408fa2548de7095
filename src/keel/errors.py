"""The one exception tree of Keel.

Library code raises only these; errors from SQLAlchemy, botocore, fsspec or httpx are translated
at the boundary where they occur, with the original chained as ``__cause__``::

    KeelError
    ├── ConfigError                 bad setting or URI; names the setting
    ├── InvalidInput (ValueError)   bad argument or value; ``field`` names it
    │   ├── QuerySyntaxError        search language; carries the position in the query
    │   ├── ParamConflict           a param re-logged with a different value
    │   └── LimitExceeded           over a configured size/count/length limit (HTTP 413)
    ├── NotFound (LookupError)      a run, project, artifact or object does not exist
    ├── AlreadyExists               a unique name is taken
    ├── Conflict                    the state forbids it (e.g. logging to a finished run)
    ├── IntegrityError              stored bytes do not match their recorded hash
    ├── Unauthenticated             no, bad or expired credentials (HTTP 401)
    ├── PermissionDenied            the caller's role, or the model's trust, forbids it (HTTP 403)
    ├── RateLimited                 too many attempts; ``retry_after`` says when to try (HTTP 429)
    ├── UnsafePath (InvalidInput)   a name escapes its root (``..``, absolute, NUL)
    ├── StoreError                  a backend failed (database, filesystem, S3)
    │   └── StoreUnavailable        transient: locked, connection refused; safe to retry
    └── MissingDependency (ImportError)  an optional extra is not installed; says what to install
"""

from __future__ import annotations


class KeelError(Exception):
    """Base of every error Keel raises on purpose."""


class ConfigError(KeelError):
    """A setting or URI is invalid."""


class InvalidInput(KeelError, ValueError):
    """An argument or value is invalid; ``field`` names it when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class QuerySyntaxError(InvalidInput):
    """A search query does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, *, query: str, position: int, field: str = "filter") -> None:
        pointer = f"\n  {query}\n  {' ' * position}^"
        super().__init__(f"{message} at position {position}{pointer}", field=field)
        self.query = query
        self.position = position
        self.reason = message


class ParamConflict(InvalidInput):
    """A param was already logged on this run with another value (params are write-once)."""


class LimitExceeded(InvalidInput):
    """A value is over a configured limit (body size, name length, batch size, rows)."""


class UnsafePath(InvalidInput):
    """A relative name escapes its root or contains forbidden characters."""


class NotFound(KeelError, LookupError):
    """The requested object does not exist."""


class AlreadyExists(KeelError):
    """An object with this unique name already exists."""


class Conflict(KeelError):
    """The object's state does not allow this operation."""


class IntegrityError(KeelError):
    """Stored bytes do not match the hash recorded when they were written."""


class Unauthenticated(KeelError):
    """No credentials, or credentials that are wrong, expired or revoked."""


class PermissionDenied(KeelError):
    """The caller is known but not allowed: a role too low, or a model not marked trusted."""


class RateLimited(KeelError):
    """Too many attempts in a window; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreError(KeelError):
    """A storage backend failed."""


class StoreUnavailable(StoreError):
    """A transient backend failure (locked database, refused connection); retrying may work."""


class MissingDependency(KeelError, ImportError):
    """An optional dependency is missing; the message says which extra to install."""

    def __init__(self, package: str, *, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'keel-mlops[{extra}]'"
        )
        self.package = package
        self.extra = extra
