"""Tokenizing from ``tokenizer.json`` with the ``tokenizers`` library alone.

Both backends tokenize this way. It is what the reference implementation does: FlagEmbedding
runs on transformers 4, whose fast tokenizer loads ``tokenizer.json`` verbatim. transformers 5
instead rebuilds XLM-R's tokenizer pipeline from the vocabulary and can normalize differently,
so going through the file keeps our token ids, and therefore our scores, equal to the reference.
It also needs neither torch nor transformers, and skips their per-call overhead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rankgate.backends.base import PairTemplate
from rankgate.errors import ModelLoadError

__all__ = ["FileTokenizer", "read_config", "usable_positions"]


def usable_positions(config: dict[str, Any]) -> int:
    """Tokens a model's position embeddings allow, from its ``config.json``."""
    positions = int(config.get("max_position_embeddings", 512))
    # RoBERTa-family models start position ids after the padding index.
    if "roberta" in str(config.get("model_type", "")):
        positions -= int(config.get("pad_token_id", 1) or 0) + 1
    return positions


class FileTokenizer:
    """A model directory's ``tokenizer.json``, used without special tokens or truncation."""

    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer

        path = Path(model_dir) / "tokenizer.json"
        if not path.is_file():
            raise ModelLoadError(
                f"{model_dir} has no tokenizer.json (a fast tokenizer file); save the model's "
                "tokenizer with transformers' save_pretrained to create it"
            )
        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on a malformed file
            raise ModelLoadError(f"cannot read {path}: {exc}") from None
        self._tok.no_truncation()
        self._tok.no_padding()
        self.template = self._derive_template()

    def _derive_template(self) -> PairTemplate:
        first, second = "query", "document"
        pair = self._tok.encode(first, second, add_special_tokens=True)
        return PairTemplate.derive(
            pair.ids,
            self._tok.encode(first, add_special_tokens=False).ids,
            self._tok.encode(second, add_special_tokens=False).ids,
            pair.type_ids,
        )

    def tokenize(self, texts: Sequence[str], max_tokens: int | None = None) -> list[list[int]]:
        if not texts:
            return []
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [e.ids[:max_tokens] if max_tokens is not None else e.ids for e in encodings]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=True))

    def token_id(self, token: str) -> int | None:
        found = self._tok.token_to_id(token)
        return None if found is None else int(found)


def read_config(model_dir: Path) -> dict[str, Any]:
    """The model's ``config.json`` as a dict."""
    path = Path(model_dir) / "config.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from None
