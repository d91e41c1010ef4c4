"""PyTorch + transformers backend for decoder ("LLM") rerankers: a prompt, then label logits.

A causal LM (Qwen3-Reranker, bge-reranker-v2-gemma, mxbai-rerank-v2, or any other with a
:class:`~rankgate.backends.recipes.Recipe`) reads each pair laid out by its recipe; the score is
read at the last position from the label tokens' rows of the LM head only (a 2 × hidden product
instead of the whole vocabulary, as vLLM's ``w_yes - w_no`` adapter does), in float32. Gemma-2's
final logit soft-capping is applied to each label logit first, as the model's own head does.
FlagEmbedding's layerwise rerankers score with one layer's score head instead, the same way: a
row on the final hidden state of a model cut at that layer (:mod:`rankgate.backends.layerwise`).

On CPU a pass is packed (:mod:`rankgate.backends.packed_decoder`): real tokens only, each shared
prefix once (and once per request: later passes read its keys and values). Elsewhere pairs are
right-padded, and pairs that share a prefix reuse its key/value cache.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rankgate.backends.base import EncodedPair, PairTemplate
from rankgate.backends.compression import compressed_last_hidden
from rankgate.backends.cpu import choose_kernels, cpu_info
from rankgate.backends.kernels import route_to_onednn
from rankgate.backends.layerwise import LayerHeads, layer_heads, load_layer_model
from rankgate.backends.packed_decoder import (
    ATTENTION,
    PackedDecoder,
    register_attention,
    unsupported_reason,
)
from rankgate.backends.recipes import BUILTIN, Recipe, detect_recipe, load_recipe
from rankgate.backends.runtime import reuse_freed_memory
from rankgate.backends.tokenization import read_config
from rankgate.backends.torch_backend import PROBE_TEXTS, _torch, resolve_device, resolve_dtype
from rankgate.errors import ConfigError, DeviceOutOfMemoryError, ModelLoadError

__all__ = ["DecoderBackend", "is_causal_lm"]

log = logging.getLogger(__name__)


def is_causal_lm(model_dir: Path) -> bool:
    """Whether the checkpoint in ``model_dir`` is a causal language model."""
    architectures = read_config(model_dir).get("architectures") or [""]
    return str(architectures[0]).endswith("ForCausalLM")


class DecoderBackend:
    """Scores pairs with a causal LM and its recipe.

    Args:
        model_dir: the checkpoint (``config.json``, weights, ``tokenizer.json``).
        model_id: its name (hub id or path), also used to recognise the recipe.
        recipe: ``auto`` (recognised from architecture, tokenizer and name), a built-in name
            (``qwen3``, ``bge-gemma``, ``mxbai-v2``, ``bge-gemma2-lightweight``,
            ``bge-minicpm-layerwise``) or a JSON recipe file.
        prefix_cache: compute a prefix shared by several pairs of a pass once.
        packed: run passes on real tokens only (None: on CPU), once a probe at load time has
            matched the stock forward.
    """

    name = "torch"

    def __init__(
        self,
        model_dir: Path,
        *,
        model_id: str,
        recipe: str = "auto",
        device: str = "auto",
        dtype: str = "auto",
        threads: int | None = None,
        reuse_memory: bool = True,
        prefix_cache: bool = True,
        packed: bool | None = None,
        cpu_matmul: str = "auto",
    ) -> None:
        torch = _torch()
        from tokenizers import Tokenizer

        self.model_id = model_id
        self.device = resolve_device(device)
        if dtype == "bf16-mixed":
            raise ConfigError(
                "bf16-mixed is built for cross-encoders; decoder (LLM) rerankers run in "
                "float32, bfloat16 or (on CUDA) float16"
            )
        self.dtype = resolve_dtype(dtype, self.device)
        if threads:
            torch.set_num_threads(threads)
        if reuse_memory and self.device == "cpu":
            reuse_freed_memory()
        config = read_config(model_dir)
        path = Path(model_dir) / "tokenizer.json"
        if not path.is_file():
            raise ModelLoadError(f"{model_dir} has no tokenizer.json (a fast tokenizer file)")
        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_truncation()
        self._tok.no_padding()
        self.recipe = self._choose_recipe(recipe, config)
        self.cutoff_layer: int | None = None
        head = self._load_model(Path(model_dir), config, getattr(torch, self.dtype))
        self._model.eval().to(self.device)
        self._torch = torch
        self._body = self._model.get_decoder()
        self.onednn = False
        on_cpu_fp32 = self.device == "cpu" and self.dtype == "float32"
        if on_cpu_fp32 and choose_kernels(cpu_info(), cpu_matmul).fp32_onednn:
            linears = [m for m in self._body.modules() if isinstance(m, torch.nn.Linear)]
            self.onednn = route_to_onednn(torch, linears) > 0
        model_config = self._model.config
        self.model_max_length = int(getattr(model_config, "max_position_embeddings", 8192))
        self.parameters = sum(p.numel() for p in self._model.parameters())
        pad = model_config.pad_token_id
        if pad is None:
            pad = self._tok.token_to_id(str(config.get("pad_token", ""))) or 0
        self.pad_token_id = int(pad)
        # FlagEmbedding's layerwise rerankers prepend BOS even where it is the padding token.
        self._bos = self._bos_id(model_config, head is not None) if self.recipe.bos else ()
        if head is not None:
            self._rows = head.detach().to(torch.float32).clone()
        else:
            labels = [self._label_id(self.recipe.true_token)]
            if self.recipe.false_token is not None:
                labels.append(self._label_id(self.recipe.false_token))
            lm_head = self._model.get_output_embeddings().weight
            self._rows = lm_head[labels].detach().to(torch.float32).clone()
        cap = getattr(model_config, "final_logit_softcapping", None)
        self._softcap = float(cap) if cap else None
        self.default_max_length = self.recipe.default_max_length
        self.score_offset = self.recipe.normalize_offset
        self.budget = self.recipe.budget
        self.template = self.template_for(None)
        self._compression = self._compression_layers(packed)
        # Compressed passages no longer line up with a prefix computed once.
        self.prefix_cache = prefix_cache and self._compression is None
        self.shares_prefix = self.prefix_cache
        self.shared_prefix_tokens_saved = 0
        self._cache_argument = (
            "cache" if "cache" in inspect.signature(self._body.forward).parameters else None
        ) or "past_key_values"
        wanted = (self.device == "cpu" if packed is None else packed) and not self._compression
        self._packed = self._packed_decoder() if wanted else None
        self.packed = self._packed is not None

    @property
    def kernels(self) -> str:
        """What runs the matrix products, for ``rankgate info`` and ``/info``."""
        how = "packed, shared prefix once" if self.packed else "padded"
        if self._compression:
            layers = ", ".join(map(str, self._compression))
            how += f", tokens compressed by {self.recipe.compress_ratio} before layers {layers}"
        return f"{how}, {self.dtype} linear layers on {'oneDNN' if self.onednn else 'torch'}"

    def forget_prefixes(self) -> None:
        """Drop the prefixes packed passes keep for later passes (a benchmark's fresh start)."""
        if self._packed is not None:
            self._packed.forget()

    def _packed_decoder(self) -> PackedDecoder | None:
        """The packed pass if this model's attention allows it and it matches the stock forward
        on probe pairs (a shared prefix with two rests, and a pair alone; computed in the pass
        and kept from an earlier one); else None, with a log line saying why."""
        reason = unsupported_reason(self._model.config)
        if reason is not None:
            log.info("%s: no packed pass (%s); padded batches", self.model_id, reason)
            return None
        query, short, long = PROBE_TEXTS  # the encoders' probe texts, in the recipe's layout
        q = self.tokenize([self.format_query(query, None)])[0]
        docs = self.tokenize([self.format_document(d) for d in (long, short)])
        probe = [self.template.build(q, d) for d in docs]
        probe.append(self.template.build(q[: max(1, len(q) // 2)], docs[1]))
        stock = self._model.config._attn_implementation  # sdpa, or eager (e.g. Gemma-2)
        try:
            register_attention()
            self._model.set_attn_implementation(ATTENTION)
            want = self._whole(probe)
            packed = PackedDecoder(self._body, self._torch)
            # Shared prefixes computed in the pass, then read back as a later pass would.
            runs = (True, True, False)
            got = [self._score(packed.last_hidden(probe, reuse)[0]) for reuse in runs]
            packed.forget()
        except Exception as exc:  # any failure of the fast path leaves the stock one
            log.warning("%s: packed pass failed (%s); padded batches", self.model_id, exc)
            self._model.set_attn_implementation(stock)
            return None
        tolerance = 1e-4 if self.dtype == "float32" else 5e-2
        if not all(np.allclose(g, want, rtol=tolerance, atol=tolerance) for g in got):
            log.warning(
                "%s: packed pass differs from the stock forward (%s vs %s); padded batches",
                self.model_id,
                [g.tolist() for g in got],
                want.tolist(),
            )
            self._model.set_attn_implementation(stock)
            return None
        return packed

    def _load_model(self, model_dir: Path, config: dict[str, Any], dtype: Any) -> Any:
        """Load the model as the recipe reads it: the score head's weight ``(1, hidden)`` for
        per-layer heads (the model cut at the cutoff layer), None for label logits."""
        heads = self._heads = layer_heads(config)
        if self.recipe.head == "layers" and heads is None:
            raise ConfigError(
                f"the {self.recipe.name} recipe scores with per-layer score heads, which "
                f"'{self.model_id}' has none of; use a recipe that reads label logits"
            )
        if self.recipe.head == "labels" and heads is not None:
            raise ConfigError(
                f"'{self.model_id}' scores with per-layer score heads, not label logits, which "
                f"the {self.recipe.name} recipe reads; use bge-gemma2-lightweight, "
                "bge-minicpm-layerwise or another recipe with head 'layers'"
            )
        if heads is not None:
            self.cutoff_layer = heads.cutoff(self.recipe.cutoff_layer)
            self._model, head = load_layer_model(model_dir, config, heads, self.cutoff_layer, dtype)
            return head
        from transformers import AutoModelForCausalLM

        try:
            self._model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelLoadError(
                f"could not load '{self.model_id}' from {model_dir}: {exc}"
            ) from exc
        return None

    def _compression_layers(self, packed: bool | None) -> tuple[int, ...] | None:
        """The layers before which tokens are compressed (None: no compression).

        Raises:
            ConfigError: compression asked of a model without it, or with ``packed=True``.
        """
        ratio = self.recipe.compress_ratio
        if ratio == 1:
            return None
        heads: LayerHeads | None = self._heads
        if heads is None or heads.family != "gemma2-lightweight" or self.cutoff_layer is None:
            raise ConfigError(
                f"token compression (compress_ratio {ratio}) is bge-reranker-v2.5-gemma2-"
                f"lightweight's (FlagEmbedding's LightWeightFlagLLMReranker); '{self.model_id}' "
                "has none"
            )
        layers = tuple(x for x in self.recipe.compress_layers if 0 < x < self.cutoff_layer)
        if not layers:
            log.info(
                "%s: no compress layer of %s is below the cutoff layer %d: no compression",
                self.model_id,
                list(self.recipe.compress_layers),
                self.cutoff_layer,
            )
            return None
        if packed:
            raise ConfigError(
                "token compression runs padded passes of whole pairs; packed passes cannot "
                "apply (leave packed unset or false)"
            )
        return layers

    # -- recipe and templates ----------------------------------------------------------------

    def _choose_recipe(self, spec: str, config: dict[str, Any]) -> Recipe:
        if spec != "auto":
            return load_recipe(spec, self.model_id)
        architecture = str((config.get("architectures") or [""])[0])
        found = detect_recipe(architecture, self.model_id, set(self._tok.get_vocab()))
        if found is None:
            raise ConfigError(
                f"'{self.model_id}' is a {architecture} whose reranking recipe is not recognised; "
                f"name it with --recipe ({', '.join(BUILTIN)}) or give a JSON recipe file"
            )
        log.info("%s: the %s recipe", self.model_id, found)
        return load_recipe(found, self.model_id)

    def _bos_id(self, model_config: Any, even_if_pad: bool = False) -> tuple[int, ...]:
        bos = getattr(model_config, "bos_token_id", None)
        if bos is None or (bos == model_config.pad_token_id and not even_if_pad):
            return ()
        return (int(bos),)

    def _label_id(self, token: str) -> int:
        ids = self._tok.encode(token, add_special_tokens=False).ids
        if not ids:
            raise ModelLoadError(f"the label token {token!r} encodes to nothing")
        if len(ids) > 1:
            log.warning(
                "%s: label %r is %d tokens; its first is read", self.model_id, token, len(ids)
            )
        return int(ids[0])

    def _ids(self, texts: Sequence[str]) -> tuple[int, ...]:
        out: list[int] = []
        for text in texts:
            if text:
                out.extend(self._tok.encode(text, add_special_tokens=False).ids)
        return tuple(out)

    def template_for(self, instruction: str | None) -> PairTemplate:
        """The fixed parts around a pair (the instruction changes them where it is a prompt)."""
        key = instruction if self.recipe.instruction_in_suffix else None
        return self._template(key)

    @lru_cache(maxsize=64)  # noqa: B019 - one backend per process, a handful of instructions
    def _template(self, instruction: str | None) -> PairTemplate:
        r = self.recipe
        return PairTemplate(
            prefix=self._bos + self._ids(r.prefix),
            middle=self._ids(r.middle),
            suffix=self._ids(r.suffix_texts(instruction)),
            doc_marker=self._ids([r.document_marker]),
        )

    def format_query(self, query: str, instruction: str | None) -> str:
        if self.recipe.instruction_in_suffix:
            return self.recipe.query_text(query, None)
        return self.recipe.query_text(query, instruction)

    def format_document(self, document: str) -> str:
        return self.recipe.document_text(document)

    # -- Backend -----------------------------------------------------------------------------

    def set_threads(self, threads: int) -> None:
        """CPU threads of the calling thread's forward passes (a model queue's worker)."""
        self._torch.set_num_threads(threads)

    def tokenize(self, texts: Sequence[str], max_tokens: int | None = None) -> list[list[int]]:
        if not texts:
            return []
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [e.ids[:max_tokens] if max_tokens is not None else e.ids for e in encodings]

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=True))

    def forward(self, pairs: Sequence[EncodedPair]) -> np.ndarray:
        torch = self._torch
        try:
            return self._forward(pairs)
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            raise DeviceOutOfMemoryError(
                f"out of memory on {self.device} for {len(pairs)} pairs of up to "
                f"{max(len(p) for p in pairs)} tokens"
            ) from exc

    def _forward(self, pairs: Sequence[EncodedPair]) -> np.ndarray:
        """Packed: one row of real tokens. Padded: pairs that share their prefix with another
        pair of the pass reuse its key/value cache; the rest run whole."""
        if self._compression is not None:
            final = compressed_last_hidden(
                self._torch,
                self._body,
                pairs,
                self.recipe.compress_ratio,
                self._compression,
                self.pad_token_id,
            )
            return self._score(final)
        if self._packed is not None:
            final, saved = self._packed.last_hidden(pairs, self.prefix_cache)
            self.shared_prefix_tokens_saved += saved
            return self._score(final)
        if not self.prefix_cache:
            return self._whole(pairs)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, pair in enumerate(pairs):
            groups.setdefault(pair.input_ids[: pair.shared], []).append(i)
        out = np.empty(len(pairs), dtype=np.float32)
        alone = [idx[0] for prefix, idx in groups.items() if len(idx) == 1 or not prefix]
        if alone:
            out[alone] = self._whole([pairs[i] for i in alone])
        for prefix, idx in groups.items():
            if len(idx) > 1 and prefix:
                out[idx] = self._with_prefix(prefix, [pairs[i] for i in idx])
        return out

    def _with_prefix(self, prefix: tuple[int, ...], pairs: Sequence[EncodedPair]) -> np.ndarray:
        """The shared prefix once, then every pair's rest on a copy of its key/value cache, at
        positions that follow the prefix: the same attention as scoring each pair whole."""
        torch = self._torch
        p = len(prefix)
        rests = [pair.input_ids[p:] for pair in pairs]
        width = max(len(r) for r in rests)
        ids = np.full((len(pairs), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(pairs), p + width), dtype=np.int64)
        mask[:, :p] = 1
        for row, rest in enumerate(rests):
            ids[row, : len(rest)] = rest
            mask[row, p : p + len(rest)] = 1
        device = self.device
        with torch.inference_mode():
            head = self._body(
                input_ids=torch.tensor([prefix], device=device), use_cache=True
            ).past_key_values
            head.batch_repeat_interleave(len(pairs))
            positions = torch.arange(p, p + width, device=device).unsqueeze(0)
            hidden = self._body(
                input_ids=torch.from_numpy(ids).to(device),
                attention_mask=torch.from_numpy(mask).to(device),
                position_ids=positions.expand(len(pairs), -1),
                use_cache=True,
                **{self._cache_argument: head},
            ).last_hidden_state
            last = torch.tensor([len(r) - 1 for r in rests], device=device)
            final = hidden[torch.arange(len(pairs), device=device), last]
        self.shared_prefix_tokens_saved += p * (len(pairs) - 1)
        return self._score(final)

    def _score(self, final: Any) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            logits = final.float() @ self._rows.to(final.device).T
            if self._softcap is not None:
                logits = torch.tanh(logits / self._softcap) * self._softcap
            scores = logits[:, 0] - logits[:, 1] if logits.shape[1] == 2 else logits[:, 0]
        return scores.cpu().numpy().astype(np.float32)

    def _whole(self, pairs: Sequence[EncodedPair]) -> np.ndarray:
        """Right-padded batch; causal attention keeps each real token blind to the padding, so
        the hidden state at a pair's last token is the one it has alone."""
        torch = self._torch
        width = max(len(p) for p in pairs)
        ids = np.full((len(pairs), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(pairs), width), dtype=np.int64)
        for row, pair in enumerate(pairs):
            ids[row, : len(pair)] = pair.input_ids
            mask[row, : len(pair)] = 1
        last = torch.tensor([len(p) - 1 for p in pairs], device=self.device)
        with torch.inference_mode():
            hidden = self._body(
                input_ids=torch.from_numpy(ids).to(self.device),
                attention_mask=torch.from_numpy(mask).to(self.device),
                use_cache=False,
            ).last_hidden_state
            final = hidden[torch.arange(len(pairs), device=self.device), last]
        return self._score(final)
