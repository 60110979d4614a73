"""The one exception tree of modelreg.

Every error a registry raises, embedded or remote, is one of these. Each class carries the
HTTP status and the stable ``code`` used on the wire, so the server maps an exception to a
response in one place and the client maps a response back to the same class in one place.

    ModelregError
    ├── NotFound            404  not_found
    │   └── Gone                410  gone  (a version that was deleted)
    ├── Conflict            409  conflict
    │   ├── AlreadyExists       409  already_exists  (a name that is taken)
    │   └── PromotionRefused    409  promotion_refused  (a protected alias's gates failed)
    ├── InvalidInput        400  invalid_input
    │   ├── SearchSyntaxError   400  search_syntax
    │   ├── UnsafeModel         400  unsafe_model  (loading would run code; needs trust=True)
    │   ├── BlobMissing         400  blob_missing  (a manifest names a blob the store lacks)
    │   ├── TooLarge            413  too_large     (a request body over the server's limit)
    │   └── RangeNotSatisfiable 416  range_not_satisfiable  (a download range past the end)
    ├── PermissionDenied    403  permission_denied
    │   └── NotAuthenticated    401  unauthenticated  (no token, or one that is not valid)
    ├── IntegrityError      500  integrity_error   (stored content does not match its digest)
    └── Unavailable         503  unavailable       (the server's database or blobs are not ready)
"""

from __future__ import annotations


class ModelregError(Exception):
    """Base class of every error raised by modelreg."""

    status: int = 500
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(ModelregError):
    """A model, version, alias, dataset, run or blob does not exist."""

    status = 404
    code = "not_found"


class Gone(NotFound):
    """A version that was deleted: the message says when, by whom and why."""

    status = 410
    code = "gone"


class Conflict(ModelregError):
    """The request contradicts what the registry holds (a duplicate name, an immutable field)."""

    status = 409
    code = "conflict"


class AlreadyExists(Conflict):
    """A new record would take a name that is taken (an MLflow registered model or experiment)."""

    code = "already_exists"


class PromotionRefused(Conflict):
    """A protected alias refused a version: ``checks`` lists every check with its figures."""

    code = "promotion_refused"

    def __init__(self, message: str, *, checks: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.checks = checks or []


class InvalidInput(ModelregError):
    """A name, reference, path, value or option is malformed; nothing was stored."""

    status = 400
    code = "invalid_input"


class SearchSyntaxError(InvalidInput):
    """A search filter or order-by expression does not parse; ``column`` is 1-based."""

    code = "search_syntax"

    def __init__(self, message: str, *, text: str = "", column: int = 0) -> None:
        where = f" at column {column}" if column else ""
        super().__init__(f"{message}{where}")
        self.text = text
        self.column = column


class UnsafeModel(InvalidInput):
    """Loading a model would run code from its files (a pickle, joblib, torch.save archive);
    ``files`` maps each such file to the reason. ``modelreg.load(..., trust=True)`` loads it."""

    code = "unsafe_model"

    def __init__(self, message: str, *, files: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.files = files or {}


class BlobMissing(InvalidInput):
    """A new version's manifest names a blob the store does not hold: upload it first."""

    code = "blob_missing"


class TooLarge(InvalidInput):
    """A request body is larger than the server accepts."""

    status = 413
    code = "too_large"


class RangeNotSatisfiable(InvalidInput):
    """A download's range starts past the end of the blob; ``size`` is the blob's length."""

    status = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int = 0) -> None:
        super().__init__(message)
        self.size = size


class PermissionDenied(ModelregError):
    """The caller is not allowed to do this."""

    status = 403
    code = "permission_denied"


class NotAuthenticated(PermissionDenied):
    """The server needs a valid token (``MODELREG_TOKEN``) and got none, or a revoked one."""

    status = 401
    code = "unauthenticated"


class IntegrityError(ModelregError):
    """Stored bytes or records do not match their digests: corruption or tampering."""

    status = 500
    code = "integrity_error"


class Unavailable(ModelregError):
    """The server cannot use its database or blob store now: a load balancer should send
    the request to another replica."""

    status = 503
    code = "unavailable"


class RetiredDataWarning(UserWarning):
    """A version in use depends on data that was retired."""


class LibraryVersionWarning(UserWarning):
    """A loaded model was saved with another version of a library than the one installed."""


class SecretInCommandWarning(UserWarning):
    """The command line being recorded holds arguments that look like secrets (named, never
    shown): recorded masked, or as is with ``MODELREG_COMMAND_REDACTION=keep``."""


ERRORS_BY_CODE: dict[str, type[ModelregError]] = {
    cls.code: cls
    for cls in (
        ModelregError,
        NotFound,
        Gone,
        Conflict,
        AlreadyExists,
        PromotionRefused,
        InvalidInput,
        SearchSyntaxError,
        UnsafeModel,
        BlobMissing,
        TooLarge,
        RangeNotSatisfiable,
        PermissionDenied,
        NotAuthenticated,
        IntegrityError,
        Unavailable,
    )
}


def error_details(exc: ModelregError) -> dict[str, object]:
    """The fields beyond the message that a subclass carries, as sent over HTTP."""
    if isinstance(exc, PromotionRefused):
        return {"checks": exc.checks}
    if isinstance(exc, SearchSyntaxError):
        return {"text": exc.text, "column": exc.column}
    if isinstance(exc, UnsafeModel):
        return {"files": exc.files}
    if isinstance(exc, RangeNotSatisfiable):
        return {"size": exc.size}
    return {}


def error_from_wire(code: str, message: str, details: dict[str, object]) -> ModelregError:
    """The exception a server's problem response stands for: the same class, same fields."""
    cls = ERRORS_BY_CODE.get(code, ModelregError)
    exc: ModelregError
    if cls is PromotionRefused:
        exc = PromotionRefused(message, checks=details.get("checks"))  # type: ignore[arg-type]
    elif cls is SearchSyntaxError:
        exc = SearchSyntaxError.__new__(SearchSyntaxError)
        ModelregError.__init__(exc, message)
        exc.text = str(details.get("text", ""))
        exc.column = int(details.get("column", 0))  # type: ignore[call-overload]
    elif cls is UnsafeModel:
        exc = UnsafeModel(message, files=details.get("files"))  # type: ignore[arg-type]
    elif cls is RangeNotSatisfiable:
        exc = RangeNotSatisfiable(message, size=int(details.get("size", 0)))  # type: ignore[call-overload]
    else:
        exc = cls(message)
    return exc
