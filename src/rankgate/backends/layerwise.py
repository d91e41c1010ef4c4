"""FlagEmbedding's layerwise decoder rerankers: a score head per layer instead of label logits.

- **bge-reranker-v2.5-gemma2-lightweight** (``CostWiseGemmaForCausalLM``, FlagEmbedding
  ``inference/reranker/decoder_only/models/gemma_model.py``): a Gemma-2 body, and heads
  ``lm_head.{i}.linear_head`` (hidden → 1) for the layers ``range(start_layer,
  num_hidden_layers + 1, layer_sep)``; a head's output is soft-capped by
  ``final_logit_softcapping``, as Gemma-2's LM head is.
- **bge-reranker-v2-minicpm-layerwise** (``LayerWiseMiniCPMForCausalLM``,
  ``models/modeling_minicpm_reranker.py``): MiniCPM, a Llama with three scalings, and a
  ``simple`` head for each layer from ``start_layer`` to ``num_hidden_layers``.

Both score a pair with the head of its cutoff layer ``L`` on ``norm(h_L)`` at the last token,
``h_L`` being the residual stream after ``L`` decoder layers: the references capture
``norm(h)`` before layer ``L`` runs and stop there. So the checkpoint's first ``L`` layers are
loaded into transformers' stock model (``Gemma2ForCausalLM``, ``LlamaForCausalLM``), whose
final norm yields that very state, and the head is one row, like a label token's: the decoder
backend's packed passes and shared prefixes run unchanged, and no layer past ``L`` is loaded
or run.

What the references do, and this module therefore does too (``tests/test_layerwise.py`` holds
the scores to FlagEmbedding's own):

- gemma2-lightweight reads head ``i`` for the ``i``-th requested cutoff layer, so a single
  cutoff layer is always scored by ``lm_head.0`` (the ``start_layer`` head), whatever the layer.
- gemma2-lightweight soft-caps no attention logits. FlagEmbedding requires transformers 4.46
  for it, where ``CostWiseGemma2PreTrainedModel`` (a ``PreTrainedModel``, not a
  ``Gemma2PreTrainedModel``, whose override forces eager) loads with SDPA attention, and
  Gemma-2's SDPA attention does not soft-cap.
- minicpm's scalings fold into the weights: embeddings × ``scale_emb``; ``o_proj`` and
  ``down_proj``, which end the two residual branches, × ``scale_depth / sqrt(num_hidden_layers)``.
  Its ``simple`` heads read the normed state unscaled (``dim_model_base`` scales only the
  ``raw`` and ``complex`` heads).

The gemma2-lightweight model's token compression is :mod:`rankgate.backends.compression`.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rankgate.errors import ConfigError, ModelLoadError

__all__ = ["LayerHeads", "layer_heads", "load_layer_model"]

Family = Literal["gemma2-lightweight", "minicpm-layerwise"]

# Fields of the references' config classes that transformers' stock configs do not have.
_NOT_STOCK = {
    "architectures",
    "auto_map",
    "model_type",
    "start_layer",
    "layer_sep",
    "layer_wise",
    "head_multi",
    "head_type",
    "scale_emb",
    "scale_depth",
    "dim_model_base",
    "_name_or_path",
    "transformers_version",
    "torch_dtype",
    "dtype",
}


@dataclass(frozen=True, slots=True)
class LayerHeads:
    """A checkpoint's per-layer score heads.

    Attributes:
        family: which reference model class the checkpoint is for.
        layers: the cutoff layers that have a head.
        num_layers: the checkpoint's decoder layers.
    """

    family: Family
    layers: tuple[int, ...]
    num_layers: int
    start_layer: int
    single_head: bool = False

    def cutoff(self, layer: int | None) -> int:
        """The cutoff layer to score at (None: the last, the references' default).

        Raises:
            ConfigError: a layer without a head.
        """
        chosen = self.num_layers if layer is None else layer
        if chosen not in self.layers:
            raise ConfigError(
                f"cutoff_layer {chosen} has no score head in this checkpoint; its heads are at "
                f"layers {_spans(self.layers)}"
            )
        return chosen

    def head_name(self, layer: int) -> str:
        """The weight of the head that scores ``layer`` in the reference."""
        if self.family == "gemma2-lightweight":
            return "lm_head.0.linear_head.weight"  # the i-th requested layer reads head i
        if self.single_head:
            return "lm_head.linear_head.weight"
        return f"lm_head.{layer - self.start_layer}.linear_head.weight"


def _spans(layers: tuple[int, ...]) -> str:
    if len(layers) > 2 and all(b - a == 1 for a, b in itertools.pairwise(layers)):
        return f"{layers[0]}-{layers[-1]}"
    return ", ".join(map(str, layers))


def layer_heads(config: dict[str, Any]) -> LayerHeads | None:
    """The per-layer heads a checkpoint's ``config.json`` declares; None for other models.

    Defaults are the reference config classes' (``CostWiseGemmaConfig``,
    ``LayerWiseMiniCPMConfig``).

    Raises:
        ConfigError: a layerwise checkpoint of a kind the references score otherwise.
    """
    architecture = str((config.get("architectures") or [""])[0])
    layers = int(config.get("num_hidden_layers", 32))
    if architecture == "CostWiseGemmaForCausalLM":
        if not config.get("layer_wise", False):
            raise ConfigError(
                "this CostWiseGemmaForCausalLM has layer_wise false (one vocabulary head, no "
                "per-layer heads); only layer_wise checkpoints are supported"
            )
        start, step = int(config.get("start_layer", 28)), int(config.get("layer_sep", 28))
        found = tuple(range(start, layers + 1, step))
        return LayerHeads("gemma2-lightweight", found, layers, start)
    if architecture == "LayerWiseMiniCPMForCausalLM":
        kind = config.get("head_type", "simple")
        if kind != "simple":
            raise ConfigError(
                f"this LayerWiseMiniCPMForCausalLM has head_type {kind!r}; only 'simple' (one "
                "score per layer, bge-reranker-v2-minicpm-layerwise's) is supported"
            )
        start = int(config.get("start_layer", 8))
        single = not config.get("head_multi", True)
        return LayerHeads(
            "minicpm-layerwise", tuple(range(start, layers + 1)), layers, start, single
        )
    return None


def load_layer_model(
    model_dir: Path, config: dict[str, Any], heads: LayerHeads, layer: int, dtype: Any
) -> tuple[Any, Any]:
    """The stock model holding the checkpoint's first ``layer`` layers, and the head's weight
    ``(1, hidden)``.

    Raises:
        ConfigError: a setting of the checkpoint this path does not reproduce.
        ModelLoadError: weights missing or unreadable.
    """
    import torch

    if heads.family == "gemma2-lightweight":
        from transformers import Gemma2Config, Gemma2ForCausalLM

        fields = {k: v for k, v in config.items() if k not in _NOT_STOCK}
        if "layer_types" in fields:
            fields["layer_types"] = list(fields["layer_types"])[:layer]
        stock: Any = Gemma2Config(
            **{**fields, "num_hidden_layers": layer, "tie_word_embeddings": True}
        )
        stock.attn_logit_softcapping = None  # as FlagEmbedding's SDPA attention (module doc)
        base: Any = Gemma2ForCausalLM
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        stock = LlamaConfig(**_llama_fields(config, layer))
        base = LlamaForCausalLM
    skipped = [r"^lm_head\."]
    if layer < heads.num_layers:
        later = "|".join(str(i) for i in range(layer, heads.num_layers))
        skipped.append(rf"^model\.layers\.({later})\.")
    # A subclass that leaves the heads and the later layers unloaded, without a load report.
    cls: Any = type(
        f"{base.__name__}Through{layer}",
        (base,),
        {"_keys_to_ignore_on_load_unexpected": skipped, "__module__": base.__module__},
    )
    try:
        model, info = cls.from_pretrained(
            str(model_dir), config=stock, dtype=dtype, output_loading_info=True
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"could not load {model_dir}: {exc}") from exc
    missing = sorted(k for k in info["missing_keys"] if k != "lm_head.weight")
    if missing:
        raise ModelLoadError(f"{model_dir} lacks weights of the first {layer} layers: {missing}")
    if heads.family == "minicpm-layerwise":
        _fold_minicpm_scalings(model, config, heads.num_layers, torch)
    head = read_tensor(Path(model_dir), heads.head_name(layer))
    return model, head.reshape(1, -1)


def _llama_fields(config: dict[str, Any], layer: int) -> dict[str, Any]:
    """MiniCPM's architecture as a ``LlamaConfig`` (defaults: ``LayerWiseMiniCPMConfig``'s)."""
    if config.get("rope_scaling"):
        raise ConfigError(
            f"this MiniCPM checkpoint scales its rotary embedding ({config['rope_scaling']}); "
            "only unscaled rotary positions are supported"
        )
    hidden = int(config.get("hidden_size", 4096))
    heads = int(config.get("num_attention_heads", 32))
    return dict(
        vocab_size=int(config.get("vocab_size", 32000)),
        hidden_size=hidden,
        intermediate_size=int(config.get("intermediate_size", 11008)),
        num_hidden_layers=layer,
        num_attention_heads=heads,
        num_key_value_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=hidden // heads,
        hidden_act=config.get("hidden_act", "silu"),
        max_position_embeddings=int(config.get("max_position_embeddings", 2048)),
        rms_norm_eps=float(config.get("rms_norm_eps", 1e-6)),
        rope_theta=float(config.get("rope_theta", 10000.0)),
        attention_bias=bool(config.get("attention_bias", False)),
        mlp_bias=False,
        pad_token_id=config.get("pad_token_id"),
        bos_token_id=config.get("bos_token_id", 1),
        eos_token_id=config.get("eos_token_id", 2),
        tie_word_embeddings=True,  # no vocabulary head is read; tied, none is allocated
    )


def _fold_minicpm_scalings(model: Any, config: dict[str, Any], num_layers: int, torch: Any) -> None:
    branch = float(config.get("scale_depth", 1)) / math.sqrt(num_layers)
    body = model.get_decoder()
    with torch.no_grad():
        body.embed_tokens.weight.mul_(float(config.get("scale_emb", 1)))
        for block in body.layers:
            for linear in (block.self_attn.o_proj, block.mlp.down_proj):
                linear.weight.mul_(branch)
                if linear.bias is not None:
                    linear.bias.mul_(branch)


def read_tensor(model_dir: Path, name: str) -> Any:
    """One tensor of a safetensors checkpoint (sharded or not), on the CPU.

    Raises:
        ModelLoadError: no safetensors weights, or none of that name.
    """
    from safetensors import safe_open

    index = model_dir / "model.safetensors.index.json"
    try:
        if index.is_file():
            file = json.loads(index.read_text(encoding="utf-8"))["weight_map"].get(name)
        else:
            file = "model.safetensors"
        if file is None or not (model_dir / file).is_file():
            raise ModelLoadError(f"{model_dir} has no safetensors weight {name!r}")
        with safe_open(str(model_dir / file), framework="pt") as weights:
            if name not in weights.keys():  # noqa: SIM118 - a file handle, not a dict
                raise ModelLoadError(f"{model_dir / file} has no weight {name!r}")
            return weights.get_tensor(name)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"could not read {name!r} from {model_dir}: {exc}") from exc
