"""rankgate: faithful, fast cross-encoder reranking (BAAI/bge-reranker-v2-m3) for RAG."""

from rankgate.config import RerankerSettings
from rankgate.engine import Reranker
from rankgate.engine.calibration import Calibration
from rankgate.errors import (
    BackendError,
    CalibrationError,
    ConfigError,
    DeviceOutOfMemoryError,
    EmptyQueryError,
    InputError,
    InputTooLongError,
    InstructionNotSupportedError,
    InvalidDocumentError,
    LabelsError,
    MissingDependencyError,
    ModelLoadError,
    ModelNotFoundError,
    NoDocumentsError,
    NonFiniteScoreError,
    OverloadedError,
    RankgateError,
    RequestTimeoutError,
    TooManyDocumentsError,
    UnavailableError,
)
from rankgate.insight.calibration_fit import calibrate
from rankgate.types import DEFAULT_MODEL, ModelInfo, RerankResult

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "BackendError",
    "Calibration",
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
    "ModelInfo",
    "ModelLoadError",
    "ModelNotFoundError",
    "NoDocumentsError",
    "NonFiniteScoreError",
    "OverloadedError",
    "RankgateError",
    "RequestTimeoutError",
    "RerankResult",
    "Reranker",
    "RerankerSettings",
    "TooManyDocumentsError",
    "UnavailableError",
    "__version__",
    "calibrate",
]
