"""Decoder ("LLM") reranker recipes: how a causal LM reads a (query, document) pair, and which
logits make its score. Pure data and token arithmetic; no torch.

A recipe lays a pair out as ``prefix · query piece · middle · document piece · suffix``. Each
piece is tokenized on its own, and the pieces are cut where the reference implementation's own
tokenization has a boundary, so the token ids equal the reference's:

- **qwen3** (Qwen/Qwen3-Reranker, QwenLM/Qwen3-Embedding README): the reference tokenizes the
  system prefix, the body ``<Instruct>: {i}\\n<Query>: {q}\\n<Document>: {d}`` and the suffix
  separately. The body is cut after ``<Instruct>:``, after the newline that ends the query and
  after ``<Document>:``: places where Qwen's pre-tokenizer always splits (a ``?`` before the
  newline merges with it, so the newline stays with the query). Score ``logit(yes) - logit(no)``.
- **bge-gemma** (BAAI/bge-reranker-v2-gemma, FlagEmbedding ``FlagLLMReranker``): ``[bos] +
  tok("A: " + q) + tok("\\n") + tok("B: " + p) + tok("\\n") + tok(prompt)``, pieces tokenized
  separately as FlagEmbedding does; the prompt is the instruction. Score ``logit(Yes)``.
- **mxbai-v2** (mixedbread-ai/mxbai-rerank-v2, package ``mxbai-rerank``): ChatML prefix,
  ``tok("query: " + q)`` (``"instruction: {i}\\nquery: {q}"`` with an instruction),
  ``tok("\\n")``, ``tok("document: " + d)``, ``tok("\\n") + tok(task prompt)``, ChatML suffix.
  Score ``logit(1) - logit(0)``; normalized as ``sigmoid(x - estimated_max / 2)``.
- **bge-gemma2-lightweight** (BAAI/bge-reranker-v2.5-gemma2-lightweight, FlagEmbedding
  ``LightWeightFlagLLMReranker``) and **bge-minicpm-layerwise** (BAAI/bge-reranker-v2-minicpm-
  layerwise, ``LayerWiseFlagLLMReranker``): bge-gemma's layout (the lightweight one with its
  own prompt, ``"Predict whether passage B contains an answer to query A."``); the score is
  the checkpoint's head of one layer (``cutoff_layer``), not a label logit
  (:mod:`rankgate.backends.layerwise`).

Truncation follows each reference: the query keeps at most 3/4 of ``max_length``, only the
document is cut, and ``max_length`` means what it means there (qwen3: the whole sequence;
bge-gemma: the passage, the template comes on top; mxbai-v2: query and document, the template on
top). A custom recipe is a JSON file with the fields of :class:`Recipe`, or with ``"base"``
naming a built-in recipe and the fields that differ from it, e.g.
``{"base": "bge-minicpm-layerwise", "cutoff_layer": 28}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from rankgate.errors import ConfigError

__all__ = ["BUILTIN", "Budget", "Head", "Recipe", "detect_recipe", "load_recipe"]

Budget = Literal["total", "passage", "pair"]
"""What ``max_length`` bounds: the whole sequence; the passage (bge-gemma: the template comes on
top); the query and document (mxbai-v2: the template comes on top)."""

Head = Literal["labels", "layers"]
"""Where the score comes from: the LM head's rows of the label tokens, or the checkpoint's
per-layer score heads (FlagEmbedding's layerwise rerankers)."""


@dataclass(frozen=True, slots=True)
class Recipe:
    """A decoder reranker's prompt and score.

    Attributes:
        name: the recipe's name.
        prefix: texts before the query piece, each tokenized on its own (special tokens are
            written out, e.g. ``<|im_start|>``).
        query: the query piece; ``{query}`` and, where the recipe has one, ``{instruction}``.
        query_without_instruction: the query piece when no instruction is given (None: the
            default instruction is always used).
        middle: texts between the query and the document pieces.
        document: the document piece, with ``{document}``.
        suffix: texts after the document piece; one may be ``{instruction}`` (bge-gemma's
            prompt).
        true_token: the label token whose logit is the score (``labels`` head).
        false_token: subtracted from it when given (the log-odds of a yes/no answer).
        default_instruction: used when a request gives none.
        bos: start with the tokenizer's BOS token.
        budget: what ``max_length`` bounds (see :data:`Budget`).
        default_max_length: the reference's default ``max_length``.
        normalize_offset: subtracted before the sigmoid when scores are normalized.
        document_marker: prepended to windows that start inside a long document.
        head: ``labels`` (the label tokens' logits) or ``layers`` (the checkpoint's score head
            of ``cutoff_layer``; see :data:`Head`).
        cutoff_layer: ``layers`` only: the layer whose head scores (None: the last layer,
            FlagEmbedding's default; the model cards use 28).
        compress_ratio: FlagEmbedding's token compression (gemma2-lightweight): the passage's
            tokens are averaged in groups of 2, 4 or 8 before each of ``compress_layers``; 1
            (the library's default) is off (:mod:`rankgate.backends.compression`).
        compress_layers: the layers before which tokens are compressed (FlagEmbedding's
            default: 8; the model card's: 24 and 40).
    """

    name: str
    prefix: tuple[str, ...]
    query: str
    middle: tuple[str, ...]
    document: str
    suffix: tuple[str, ...]
    true_token: str = ""
    false_token: str | None = None
    query_without_instruction: str | None = None
    default_instruction: str | None = None
    bos: bool = False
    budget: Budget = "total"
    default_max_length: int = 8192
    normalize_offset: float = 0.0
    document_marker: str = ""
    head: Head = "labels"
    cutoff_layer: int | None = None
    compress_ratio: int = 1
    compress_layers: tuple[int, ...] = (8,)

    def __post_init__(self) -> None:
        where = f"recipe {self.name!r}"
        if self.head not in ("labels", "layers"):
            raise ConfigError(f"{where}: head must be 'labels' or 'layers', not {self.head!r}")
        if self.head == "labels" and not self.true_token:
            raise ConfigError(f"{where}: true_token (the label whose logit is the score) is needed")
        if self.head == "labels" and self.cutoff_layer is not None:
            raise ConfigError(f"{where}: cutoff_layer is for per-layer heads (head 'layers')")
        if self.cutoff_layer is not None and self.cutoff_layer < 0:
            raise ConfigError(f"{where}: cutoff_layer must be a layer number, >= 0")
        if self.compress_ratio not in (1, 2, 4, 8):
            raise ConfigError(
                f"{where}: compress_ratio {self.compress_ratio}: FlagEmbedding's token "
                "compression takes 2, 4 or 8 (1: no compression)"
            )
        if self.compress_ratio > 1 and self.head == "labels":
            raise ConfigError(f"{where}: token compression is for per-layer heads (head 'layers')")
        if any(not isinstance(x, int) or x < 0 for x in self.compress_layers):
            raise ConfigError(f"{where}: compress_layers must be layer numbers, >= 0")

    def query_text(self, query: str, instruction: str | None) -> str:
        chosen = instruction if instruction is not None else self.default_instruction
        if chosen is None and self.query_without_instruction is not None:
            return self.query_without_instruction.format(query=query)
        return self.query.format(query=query, instruction=chosen or "")

    def suffix_texts(self, instruction: str | None) -> tuple[str, ...]:
        chosen = instruction if instruction is not None else self.default_instruction
        return tuple(part.replace("{instruction}", chosen or "") for part in self.suffix)

    def document_text(self, document: str) -> str:
        return self.document.format(document=document)

    @property
    def instruction_in_suffix(self) -> bool:
        return any("{instruction}" in part for part in self.suffix)


_QWEN3_SYSTEM = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
_GEMMA_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the "
    "query by providing a prediction of either 'Yes' or 'No'."
)
_LIGHTWEIGHT_PROMPT = "Predict whether passage B contains an answer to query A."
_MXBAI_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. "
    "For each query-document pair, carefully analyze the semantic relationship between them, "
    "then provide your binary relevance judgment (0 for not relevant, 1 for relevant).\n"
    "Relevance:"
)

BUILTIN: dict[str, Recipe] = {
    "qwen3": Recipe(
        name="qwen3",
        prefix=(_QWEN3_SYSTEM, "<Instruct>:"),
        query=" {instruction}\n<Query>: {query}\n",
        middle=("<Document>:",),
        document=" {document}",
        suffix=("<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",),
        true_token="yes",
        false_token="no",
        default_instruction=(
            "Given a web search query, retrieve relevant passages that answer the query"
        ),
        budget="total",
        default_max_length=8192,
    ),
    "bge-gemma": Recipe(
        name="bge-gemma",
        prefix=(),
        query="A: {query}",
        middle=("\n",),
        document="B: {document}",
        suffix=("\n", "{instruction}"),
        true_token="Yes",
        default_instruction=_GEMMA_PROMPT,
        bos=True,
        budget="passage",
        default_max_length=512,
        document_marker="B: ",
    ),
    "mxbai-v2": Recipe(
        name="mxbai-v2",
        prefix=(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\n",
        ),
        query="instruction: {instruction}\nquery: {query}",
        query_without_instruction="query: {query}",
        middle=("\n",),
        document="document: {document}",
        suffix=("\n", _MXBAI_TASK, "<|im_end|>\n<|im_start|>assistant\n"),
        true_token="1",
        false_token="0",
        budget="pair",
        default_max_length=8192,
        normalize_offset=6.0,  # estimated_max 12.0 (large, and the package's default) / 2
        document_marker="document: ",
    ),
    "bge-gemma2-lightweight": Recipe(
        name="bge-gemma2-lightweight",
        prefix=(),
        query="A: {query}",
        middle=("\n",),
        document="B: {document}",
        suffix=("\n", "{instruction}"),
        default_instruction=_LIGHTWEIGHT_PROMPT,
        bos=True,
        budget="passage",
        default_max_length=512,
        document_marker="B: ",
        head="layers",
    ),
    "bge-minicpm-layerwise": Recipe(
        name="bge-minicpm-layerwise",
        prefix=(),
        query="A: {query}",
        middle=("\n",),
        document="B: {document}",
        suffix=("\n", "{instruction}"),
        default_instruction=_GEMMA_PROMPT,
        bos=True,
        budget="passage",
        default_max_length=512,
        document_marker="B: ",
        head="layers",
    ),
}

# mxbai-rerank's own calibration: estimated_max per published model (the offset is half of it).
_MXBAI_ESTIMATED_MAX = {
    "mixedbread-ai/mxbai-rerank-base-v2": 9.0,
    "mixedbread-ai/mxbai-rerank-large-v2": 12.0,
}


def load_recipe(spec: str, model_id: str = "") -> Recipe:
    """A built-in recipe by name, or one from a JSON file with :class:`Recipe`'s fields.

    Raises:
        ConfigError: unknown name, unreadable file, or fields that are missing or unknown.
    """
    if spec in BUILTIN:
        recipe = BUILTIN[spec]
        if recipe.name == "mxbai-v2" and model_id in _MXBAI_ESTIMATED_MAX:
            recipe = replace(recipe, normalize_offset=_MXBAI_ESTIMATED_MAX[model_id] / 2)
        return recipe
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(
            f"unknown recipe {spec!r}: use one of {sorted(BUILTIN)} or the path of a JSON file "
            "with the recipe's fields"
        )
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the recipe {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path}: a JSON object of the recipe's fields is expected")
    known = {f.name for f in fields(Recipe)}
    unknown = sorted(set(data) - known - {"base"})
    if unknown:
        raise ConfigError(f"recipe {path}: unknown fields {unknown}; known: {sorted(known)}")
    data.setdefault("name", path.stem)
    base = data.pop("base", None)
    for part in ("prefix", "middle", "suffix"):
        value = data.get(part, () if base is None else None)
        if value is not None:
            data[part] = (value,) if isinstance(value, str) else tuple(value)
    if isinstance(data.get("compress_layers"), list):
        data["compress_layers"] = tuple(data["compress_layers"])
    try:
        if base is None:
            return Recipe(**data)
        if base not in BUILTIN:
            raise ConfigError(f"recipe {path}: base {base!r} is not one of {sorted(BUILTIN)}")
        return replace(load_recipe(base, model_id), **data)
    except TypeError as exc:
        raise ConfigError(f"recipe {path}: {exc}") from None


def detect_recipe(architecture: str, model_id: str, vocabulary: set[str]) -> str | None:
    """The built-in recipe a causal-LM checkpoint was trained with, or None when unsure.

    Recognised from the architecture, the model's name and the tokenizer's label tokens;
    FlagEmbedding's layerwise rerankers from their architectures alone (their own classes).
    """
    name = model_id.lower()
    if architecture == "CostWiseGemmaForCausalLM":
        return "bge-gemma2-lightweight"
    if architecture == "LayerWiseMiniCPMForCausalLM":
        return "bge-minicpm-layerwise"
    if "mxbai" in name and {"0", "1"} <= vocabulary:
        return "mxbai-v2"
    if architecture == "Qwen3ForCausalLM" and {"yes", "no"} <= vocabulary:
        return "qwen3"
    if architecture in {"GemmaForCausalLM", "Gemma2ForCausalLM"} and "Yes" in vocabulary:
        return "bge-gemma"
    return None
