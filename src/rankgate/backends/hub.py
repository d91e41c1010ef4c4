"""Finding model files: a local directory, the Hugging Face cache, or a download."""

from __future__ import annotations

import logging
from pathlib import Path

from rankgate.errors import ModelLoadError, ModelNotFoundError

__all__ = ["download_model", "resolve_model_dir"]

log = logging.getLogger(__name__)

# What a cross-encoder needs; skips duplicate weight formats the repos also carry.
MODEL_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt"]
ONNX_PATTERNS = ["*.json", "*.model", "*.txt", "*.onnx", "*.onnx_data", "onnx/*"]


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or Path(model).exists()


def resolve_model_dir(
    model: str,
    *,
    revision: str | None = None,
    cache_dir: Path | None = None,
    offline: bool = False,
    patterns: list[str] | None = None,
) -> Path:
    """Return a directory holding ``model``: itself if local, else the cached/downloaded snapshot.

    The cache is tried first, so a cached model loads without any network access.

    Raises:
        ModelLoadError: a path that does not hold a model.
        ModelNotFoundError: a hub id that is neither cached nor downloadable.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"'{model}' is a directory but holds no config.json")
        return path
    if _looks_like_path(model):
        raise ModelLoadError(f"'{model}' looks like a path, but no such directory exists")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    allow = patterns or MODEL_PATTERNS
    cache = str(cache_dir) if cache_dir else None
    try:
        return Path(
            snapshot_download(
                model,
                revision=revision,
                cache_dir=cache,
                local_files_only=True,
                allow_patterns=allow,
            )
        )
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        pass
    if offline:
        raise ModelNotFoundError(model, "offline mode is on and it is not cached", cache)
    return download_model(model, revision=revision, cache_dir=cache_dir, patterns=patterns)


def download_model(
    model: str,
    *,
    revision: str | None = None,
    cache_dir: Path | None = None,
    patterns: list[str] | None = None,
) -> Path:
    """Download ``model`` from the hub into the cache and return its snapshot directory.

    Raises:
        ModelNotFoundError: the hub is unreachable, offline mode is on, or the id is unknown.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache = str(cache_dir) if cache_dir else None
    log.info("downloading %s from the hub", model)
    try:
        folder = Path(
            snapshot_download(
                model, revision=revision, cache_dir=cache, allow_patterns=patterns or MODEL_PATTERNS
            )
        )
        if patterns is None and not any(folder.glob("*.safetensors")):
            # An older repository (some embedding models) ships only PyTorch pickles.
            log.info("%s has no safetensors weights; downloading pytorch_model.bin", model)
            snapshot_download(
                model, revision=revision, cache_dir=cache, allow_patterns=["pytorch_model.bin"]
            )
        return folder
    except GatedRepoError:
        raise ModelNotFoundError(
            model, "the repository is gated; log in with a token", cache
        ) from None
    except RepositoryNotFoundError:
        raise ModelNotFoundError(model, "no such repository on the hub", cache) from None
    except RevisionNotFoundError:
        raise ModelNotFoundError(model, f"no revision '{revision}' on the hub", cache) from None
    except LocalEntryNotFoundError:
        # Raised by huggingface_hub when HF_HUB_OFFLINE is set or the hub cannot be reached.
        raise ModelNotFoundError(
            model, "the hub cannot be reached (offline, or HF_HUB_OFFLINE=1)", cache
        ) from None
    except Exception as exc:  # connection, DNS, TLS and HTTP errors of whichever HTTP client
        raise ModelNotFoundError(
            model, f"the hub cannot be reached ({type(exc).__name__})", cache
        ) from None
