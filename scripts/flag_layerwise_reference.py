"""Reference scores from FlagEmbedding 1.4.2's layerwise rerankers, on a model directory:
``LightWeightFlagLLMReranker`` (bge-reranker-v2.5-gemma2-lightweight's own class) and
``LayerWiseFlagLLMReranker`` (bge-reranker-v2-minicpm-layerwise's).

Run under the reference env (scripts/setup-flag-env.sh):

    .venv-flag/bin/python scripts/flag_layerwise_reference.py < request.json
        request: {"model": DIR, "kind": "lightweight" | "layerwise", "max_length": N,
                  "batch_size": N, "attention": "sdpa" | "eager",
                  "cases": [{"pairs": [[q, p], ...], "prompt": str | null,
                             "cutoff_layers": [N] | null, "compress_ratio": N | null,
                             "compress_layers": [N, ...]}, ...]}
        reply:   {"results": [{"scores": [...], "normalized": [...]}, ...],
                  "loading": {"missing_keys": [...], "unexpected_keys": [...]}}

FlagEmbedding's own classes do the work: tokenization, truncation, batching, the model's
forward (FlagEmbedding's CostWiseGemmaForCausalLM / LayerWiseMiniCPMForCausalLM, not the
checkpoint's copies) and the heads. ``loading`` is what loading the directory into that model
class left missing or unused (both empty for a checkpoint laid out as the real one).

This environment has transformers 4.57; two calling conventions of the transformers that
FlagEmbedding targets are restored, and nothing else is touched:

- lightweight (``lightweight.py`` asks for transformers 4.46): 4.46's ``Gemma2DecoderLayer``
  computed its rotary embedding from ``position_ids`` and laid the sliding window over the mask
  itself (even layers); 4.57's takes both from the caller, which FlagEmbedding's
  ``CostWiseGemmaModel`` does not pass. The layer below does both as 4.46 did. Attention is
  the implementation 4.46 chose for this class: ``CostWiseGemma2PreTrainedModel`` derives from
  ``PreTrainedModel`` with ``_supports_sdpa = True`` (not from ``Gemma2PreTrainedModel``,
  whose override forces eager), so ``from_pretrained`` gave it SDPA, which applies no
  attention-logit soft-capping (4.46's ``Gemma2SdpaAttention``; 4.57's SDPA kernel likewise
  ignores ``softcap``). ``"attention": "eager"`` soft-caps instead, to show what that changes.
- layerwise: ``LayerWiseMiniCPMModel`` asks a ``DynamicCache`` for ``get_usable_length``, gone
  in 4.57; scoring needs no cache (an empty one's usable length is 0), so ``use_cache`` is off.

Only JSON goes to stdout; logs and progress bars go to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")


def _gemma2_layers_as_in_4_46() -> None:
    import torch
    from FlagEmbedding.inference.reranker.decoder_only.models import gemma_model
    from transformers.models.gemma2.modeling_gemma2 import (
        Gemma2DecoderLayer,
        Gemma2RotaryEmbedding,
    )

    if getattr(gemma_model, "_layers_as_in_4_46", False):
        return

    class Layer(Gemma2DecoderLayer):  # type: ignore[misc]
        def __init__(self, config, layer_idx):  # type: ignore[no-untyped-def]
            super().__init__(config, layer_idx)
            self.rotary = Gemma2RotaryEmbedding(config=config)
            self.is_sliding = not bool(layer_idx % 2)
            self.window = config.sliding_window

        def forward(self, hidden_states, attention_mask=None, position_ids=None, **kwargs):  # type: ignore[no-untyped-def]
            if self.is_sliding and attention_mask is not None:
                low = torch.finfo(hidden_states.dtype).min
                far = torch.tril(
                    torch.ones_like(attention_mask, dtype=torch.bool), diagonal=-self.window
                )
                attention_mask = torch.where(far, low, attention_mask)
            return super().forward(
                hidden_states,
                position_embeddings=self.rotary(hidden_states, position_ids),
                attention_mask=attention_mask,
                position_ids=position_ids,
                **kwargs,
            )

    gemma_model.Gemma2DecoderLayer = Layer
    gemma_model._layers_as_in_4_46 = True


def _loading_info(kind: str, model: str) -> dict[str, list[str]]:
    from FlagEmbedding.inference.reranker.decoder_only.models.gemma_model import (
        CostWiseGemmaForCausalLM,
    )
    from FlagEmbedding.inference.reranker.decoder_only.models.modeling_minicpm_reranker import (
        LayerWiseMiniCPMForCausalLM,
    )

    cls = CostWiseGemmaForCausalLM if kind == "lightweight" else LayerWiseMiniCPMForCausalLM
    _, info = cls.from_pretrained(model, output_loading_info=True)
    return {k: sorted(info[k]) for k in ("missing_keys", "unexpected_keys")}


def main() -> int:
    req = json.load(sys.stdin)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    kind = req["kind"]
    options = dict(
        use_fp16=False,
        devices="cpu",  # one device: no multiprocessing pool
        max_length=int(req.get("max_length", 512)),
        batch_size=int(req.get("batch_size", 16)),
    )
    if kind == "lightweight":
        _gemma2_layers_as_in_4_46()
        from FlagEmbedding import LightWeightFlagLLMReranker

        reranker = LightWeightFlagLLMReranker(req["model"], **options)
        reranker.model.config._attn_implementation = req.get("attention", "sdpa")
    else:
        from FlagEmbedding import LayerWiseFlagLLMReranker

        reranker = LayerWiseFlagLLMReranker(req["model"], **options)
        reranker.model.config.use_cache = False
    results = []
    for case in req["cases"]:
        pairs = [[str(q), str(p)] for q, p in case["pairs"]]
        kwargs = {"prompt": case["prompt"]} if case.get("prompt") else {}
        if case.get("cutoff_layers") is not None:
            kwargs["cutoff_layers"] = [int(x) for x in case["cutoff_layers"]]
        if case.get("compress_ratio") is not None:  # lightweight only
            kwargs["compress_ratio"] = int(case["compress_ratio"])
            kwargs["compress_layers"] = [int(x) for x in case["compress_layers"]]
        raw = reranker.compute_score(pairs, normalize=False, **kwargs)
        normalized = reranker.compute_score(pairs, normalize=True, **kwargs)
        results.append(
            {"scores": [float(x) for x in raw], "normalized": [float(x) for x in normalized]}
        )
    reply = {"results": results, "loading": _loading_info(kind, req["model"])}
    sys.stdout.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
