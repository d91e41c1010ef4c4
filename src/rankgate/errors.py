"""The one exception tree of rankgate.

Every error rankgate raises on purpose derives from :class:`RankgateError`. The tree knows nothing
of HTTP; the server maps it to status codes in one table (``rankgate.server.errors``)::

    RankgateError
    ├── ConfigError                  a setting is invalid or inconsistent
    │   ├── MissingDependencyError   an optional extra is not installed (message says which)
    │   └── CalibrationError         a calibration file is unreadable or fitted for another model
    ├── ModelLoadError               the model could not be loaded
    │   └── ModelNotFoundError       weights not cached and the hub unreachable / unknown id
    ├── InputError                   the caller's input is invalid (nothing was scored)
    │   ├── EmptyQueryError          query is empty or whitespace
    │   ├── NoDocumentsError         no documents / pairs were given
    │   ├── InvalidDocumentError     a document is None, not text, or lacks its text field
    │   ├── TooManyDocumentsError    more documents than the configured limit
    │   ├── InputTooLongError        input exceeds a token limit and truncation is off
    │   ├── InstructionNotSupportedError  an instruction for a model without an instruction slot
    │   └── TrainingDataError        a training or dev file is malformed (file and line named)
    │       └── LabelsError          judged pairs for calibration are malformed or too few
    ├── BackendError                 the model failed while scoring
    │   ├── NonFiniteScoreError      the model produced NaN or infinity
    │   └── DeviceOutOfMemoryError   the accelerator ran out of memory even for one pair
    ├── OverloadedError              the queue is full; retry later
    ├── UnavailableError             the engine is shutting down or unhealthy
    └── RequestTimeoutError          the request took longer than its limit
"""

from __future__ import annotations

__all__ = [
    "AddressInUseError",
    "BackendError",
    "CalibrationError",
    "ConfigError",
    "DeviceOutOfMemoryError",
    "EmptyQueryError",
    "InputError",
    "InputTooLongError",
    "InstructionNotSupportedError",
    "InvalidDocumentError",
    "LabelsError",
    "MissingDependencyError",
    "ModelLoadError",
    "ModelNotFoundError",
    "NoDocumentsError",
    "NonFiniteScoreError",
    "OverloadedError",
    "RankgateError",
    "RequestTimeoutError",
    "TooManyDocumentsError",
    "TrainingDataError",
    "UnavailableError",
]


class RankgateError(Exception):
    """Base class of every error rankgate raises on purpose."""


class ConfigError(RankgateError):
    """A setting is invalid or the settings contradict each other."""


class MissingDependencyError(ConfigError):
    """An optional dependency is missing; the message names the extra that installs it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'rankgate[{extra}]'"
        )


class CalibrationError(ConfigError):
    """A calibration file cannot be used: unreadable, malformed, or fitted for another model
    or ``max_length``; the message says which and how to fix it."""


class AddressInUseError(RankgateError):
    """The server cannot listen on its host and port (in use, not permitted, no such address)."""


class ModelLoadError(RankgateError):
    """The model or its tokenizer could not be loaded."""


class ModelNotFoundError(ModelLoadError):
    """The weights are neither a local directory nor in the cache, and the hub was not reachable."""

    def __init__(self, model: str, reason: str, cache_dir: str | None = None) -> None:
        self.model = model
        self.reason = reason
        where = cache_dir or "the Hugging Face cache (HF_HOME)"
        super().__init__(
            f"Model '{model}' is not available: {reason}. It is not a local directory and its "
            f"weights are not in {where}. To fix: run `rankgate download {model}` on a machine "
            "with network access and copy the cache over (or point HF_HOME at it), or pass a "
            "local directory that holds the model (config.json, weights and tokenizer files)."
        )


class InputError(RankgateError):
    """The caller's input is invalid; nothing was scored."""


class EmptyQueryError(InputError):
    """The query is empty or only whitespace."""


class NoDocumentsError(InputError):
    """No documents (or pairs) were given."""


class InvalidDocumentError(InputError):
    """A document is None, not a string, or an object without a usable text field."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason
        super().__init__(f"document {index}: {reason}")


class TooManyDocumentsError(InputError):
    """More documents than the configured limit."""

    def __init__(self, count: int, limit: int) -> None:
        self.count = count
        self.limit = limit
        super().__init__(f"{count} documents exceed the limit of {limit} per request")


class InputTooLongError(InputError):
    """An input exceeds a token limit and the caller turned truncation off."""


class InstructionNotSupportedError(InputError):
    """An instruction was given for a model that has no instruction slot (an encoder)."""


class TrainingDataError(InputError):
    """A training or dev file is malformed; the message names the file and line."""


class LabelsError(TrainingDataError):
    """Judged pairs for calibration are malformed, of one class only, or too few.

    Attributes:
        path: the labels file, when the pairs came from one.
        line: the 1-based line of a malformed row, else None.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path and line else f"{path}: " if path else ""
        super().__init__(where + message)


class BackendError(RankgateError):
    """The model failed while scoring."""


class NonFiniteScoreError(BackendError):
    """The model produced NaN or infinite scores (broken weights or numeric overflow)."""


class DeviceOutOfMemoryError(BackendError):
    """The accelerator ran out of memory, even after splitting the batch down to one pair."""


class OverloadedError(RankgateError):
    """The work queue is full; the caller should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class UnavailableError(RankgateError):
    """The engine is shutting down or failed its health probe."""


class RequestTimeoutError(RankgateError):
    """The request did not finish within its time limit."""
