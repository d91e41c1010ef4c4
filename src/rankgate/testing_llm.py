"""Build random causal-LM rerankers on disk, for tests and benchmarks (no hub, no downloads).

Three families, each with a tokenizer that holds the special and label tokens of its recipe:

- ``qwen3``: ``Qwen3ForCausalLM`` with a byte-level BPE tokenizer split by Qwen2's pre-tokenizer
  regex (so the boundary hazards of the real one, such as ``"?\\n"`` merging into one piece, are
  there too), ChatML special tokens, ``yes``/``no`` as single tokens, and a chat template that
  renders sentence-transformers' ``query``/``document`` messages as Qwen3-Reranker's prompt;
- ``gemma``: ``GemmaForCausalLM`` (bge-reranker-v2-gemma's architecture), ``<bos>``, ``Yes``;
- ``qwen2``: ``Qwen2ForCausalLM`` (mxbai-rerank-v2's), ChatML, ``0``/``1``.

:func:`build_layerwise_model` writes FlagEmbedding's two layerwise rerankers the way their
checkpoints lay them out (``config.json`` fields, weight names, one score head per layer):
``CostWiseGemmaForCausalLM`` (bge-reranker-v2.5-gemma2-lightweight) and
``LayerWiseMiniCPMForCausalLM`` (bge-reranker-v2-minicpm-layerwise), so that FlagEmbedding's own
classes load the same directory.

The BPE merges are counted from :data:`rankgate.testing.SAMPLE_TEXT` deterministically, so every
build is the same. Random weights prove loading, batching and parity, not ranking quality.
Imports torch and transformers lazily; needs the ``torch`` extra.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from rankgate.testing import SAMPLE_TEXT, name_tokenizer_class

__all__ = [
    "QWEN3_CHAT_TEMPLATE",
    "Family",
    "LayerwiseFamily",
    "build_bpe_tokenizer",
    "build_decoder_model",
    "build_layerwise_model",
]

Family = Literal["qwen3", "gemma", "qwen2", "minicpm"]
LayerwiseFamily = Literal["gemma2-lightweight", "minicpm-layerwise"]

# Qwen2's pre-tokenizer pattern (the one of its tokenizer.json).
QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

QWEN3_CHAT_TEMPLATE = (
    "{%- set ns = namespace(instruction='Given a web search query, retrieve relevant passages "
    "that answer the query', query='', document='') -%}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}{%- set ns.instruction = m['content'] -%}"
    "{%- elif m['role'] == 'query' -%}{%- set ns.query = m['content'] -%}"
    "{%- elif m['role'] == 'document' -%}{%- set ns.document = m['content'] -%}{%- endif -%}"
    "{%- endfor -%}"
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n<Instruct>: {{ ns.instruction }}\n<Query>: {{ ns.query }}\n"
    "<Document>: {{ ns.document }}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>"
    # Written as an expression: Jinja drops a template's own trailing newline.
    "{{ '\\n\\n' }}"
)

_SPECIALS: dict[Family, list[str]] = {
    "qwen3": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    "gemma": ["<pad>", "<eos>", "<bos>"],
    "qwen2": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    "minicpm": ["<unk>", "<s>", "</s>"],
}
# Words each family's recipe needs as single tokens (labels), and its template's words.
_WORDS: dict[Family, list[str]] = {
    "qwen3": ["yes", "no", "<think>", "</think>", "Instruct", "Query", "Document", "Judge", "?\n"],
    "gemma": ["Yes", "No", "A:", "B:", "query", "passage", "?\n"],
    "qwen2": ["query", "document", "instruction", "Relevance", "?\n", ":\n"],
    "minicpm": ["A:", "B:", "query", "passage", "?\n"],
}


def _train_merges(words: Counter[str], count: int) -> list[tuple[str, str]]:
    """Byte-pair merges by frequency, ties broken by the pair itself: the same on every run."""
    split = {w: list(w) for w in words}
    merges: list[tuple[str, str]] = []
    for _ in range(count):
        pairs: Counter[tuple[str, str]] = Counter()
        for w, n in words.items():
            symbols = split[w]
            for a, b in itertools.pairwise(symbols):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w, symbols in split.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            split[w] = out
    return merges


def build_bpe_tokenizer(family: Family, merges: int = 400) -> Any:
    """A byte-level BPE ``tokenizers.Tokenizer`` for ``family`` (see the module docstring)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    counts: Counter[str] = Counter()
    for text in SAMPLE_TEXT:
        for piece, _ in pre.pre_tokenize_str(text):
            counts[piece] += 1
    for word in _WORDS[family]:
        for variant in (word, " " + word):
            for piece, _ in pre.pre_tokenize_str(variant):
                counts[piece] += 1000  # merged first, so each is one token
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    learned = _train_merges(counts, merges)
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for a, b in learned:
        vocab.setdefault(a + b, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=learned, fuse_unk=False))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(_SPECIALS[family])
    return tok


def build_decoder_model(
    out: Path,
    family: Family = "qwen3",
    *,
    layers: int = 2,
    hidden: int = 32,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 48,
    max_positions: int = 4096,
    seed: int = 0,
    initializer_range: float = 0.2,
    vocab_size: int | None = None,
    head_dim: int | None = None,
) -> Path:
    """Save a random causal LM of ``family`` and its tokenizer to ``out``.

    ``vocab_size`` (default: the tokenizer's) and ``head_dim`` (default: hidden / heads) give
    a real model's shapes, e.g. Qwen3-Reranker-0.6B: ``layers=28, hidden=1024, heads=16,
    kv_heads=8, head_dim=128, intermediate=3072, vocab_size=151669`` (rows past the tokenizer's
    are never looked up, but their LM-head products cost what the real model's do).

    Loadable by ``AutoModelForCausalLM`` / ``AutoTokenizer`` of transformers 4 and 5 alike (the
    tokenizer is saved as a plain fast tokenizer, with its class named explicitly).
    """
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    raw = build_bpe_tokenizer(family)
    specials = _SPECIALS[family]
    if family == "gemma":
        names = dict(pad_token="<pad>", eos_token="<eos>", bos_token="<bos>")
    else:
        names = dict(pad_token="<|endoftext|>", eos_token="<|im_end|>")
    _save_tokenizer(
        raw, out, max_positions, names, QWEN3_CHAT_TEMPLATE if family == "qwen3" else None
    )

    vocab = vocab_size or raw.get_vocab_size()
    ids = {t: raw.token_to_id(t) for t in specials}
    common = _shape(
        vocab, hidden, intermediate, layers, heads, kv_heads, max_positions, initializer_range
    )
    common["tie_word_embeddings"] = True
    config: Any
    if family == "qwen3":
        from transformers import Qwen3Config, Qwen3ForCausalLM

        config = Qwen3Config(
            **common,
            head_dim=head_dim or hidden // heads,
            pad_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
        )
        model_cls: type = Qwen3ForCausalLM
    elif family == "qwen2":
        from transformers import Qwen2Config, Qwen2ForCausalLM

        config = Qwen2Config(
            **common, pad_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"]
        )
        model_cls = Qwen2ForCausalLM
    else:
        from transformers import GemmaConfig, GemmaForCausalLM

        config = GemmaConfig(
            **common,
            head_dim=head_dim or hidden // heads,
            pad_token_id=ids["<pad>"],
            eos_token_id=ids["<eos>"],
            bos_token_id=ids["<bos>"],
        )
        model_cls = GemmaForCausalLM
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    model.save_pretrained(str(out))
    return out


def _shape(
    vocab: int,
    hidden: int,
    intermediate: int,
    layers: int,
    heads: int,
    kv_heads: int,
    max_positions: int,
    initializer_range: float,
) -> dict[str, Any]:
    """The config fields every tiny causal LM here sets, by transformers' names."""
    return dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        initializer_range=initializer_range,
    )


def _save_tokenizer(
    raw: Any, out: Path, max_positions: int, names: dict[str, str], chat_template: str | None
) -> None:
    """Save as a plain fast tokenizer with its class named, so transformers 4 loads it too."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, model_max_length=max_positions, **names
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(str(out))
    name_tokenizer_class(out, "PreTrainedTokenizerFast")


def build_layerwise_model(
    out: Path,
    family: LayerwiseFamily,
    *,
    layers: int = 4,
    start_layer: int = 2,
    layer_sep: int = 1,
    hidden: int = 32,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 48,
    max_positions: int = 4096,
    sliding_window: int = 4096,
    seed: int = 0,
    initializer_range: float = 0.2,
) -> Path:
    """Save a random layerwise reranker of ``family`` and its tokenizer to ``out``.

    The checkpoint's fields and weight names are the real one's: ``gemma2-lightweight`` is a
    Gemma-2 body (``model_type`` ``cost_wise_gemma``, ``layer_wise``) with heads
    ``lm_head.{i}.linear_head`` for the layers ``range(start_layer, layers + 1, layer_sep)``;
    ``minicpm-layerwise`` is MiniCPM (a Llama body with ``scale_emb``, ``scale_depth`` and
    ``dim_model_base``) with ``simple`` heads for every layer from ``start_layer`` on. The
    soft-caps of the Gemma-2 one are small (real: 50 and 30) so that they visibly act on a
    tiny model's values; norm weights are perturbed so that their convention shows.
    """
    import torch
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_family: Family = "gemma" if family == "gemma2-lightweight" else "minicpm"
    raw = build_bpe_tokenizer(tokenizer_family)
    if family == "gemma2-lightweight":
        names = dict(pad_token="<pad>", eos_token="<eos>", bos_token="<bos>")
        pad, eos, bos = (raw.token_to_id(t) for t in ("<pad>", "<eos>", "<bos>"))
    else:
        names = dict(pad_token="<unk>", eos_token="</s>", bos_token="<s>", unk_token="<unk>")
        pad, eos, bos = (raw.token_to_id(t) for t in ("<unk>", "</s>", "<s>"))
    _save_tokenizer(raw, out, max_positions, names, None)
    common = _shape(
        raw.get_vocab_size(),
        hidden,
        intermediate,
        layers,
        heads,
        kv_heads,
        max_positions,
        initializer_range,
    )
    common.update(pad_token_id=pad, eos_token_id=eos, bos_token_id=bos)
    body: Any
    torch.manual_seed(seed)
    if family == "gemma2-lightweight":
        from transformers import Gemma2Config, Gemma2ForCausalLM

        head_dim = hidden // heads
        fields: dict[str, Any] = dict(
            common,
            head_dim=head_dim,
            query_pre_attn_scalar=2 * head_dim,
            attn_logit_softcapping=1.0,
            final_logit_softcapping=5.0,
            sliding_window=sliding_window,
            hidden_activation="gelu_pytorch_tanh",
            rms_norm_eps=1e-6,
            rope_theta=10000.0,
        )
        body = Gemma2ForCausalLM(Gemma2Config(**fields)).eval()
        head_layers = list(range(start_layer, layers + 1, layer_sep))
        config = {
            "architectures": ["CostWiseGemmaForCausalLM"],
            "auto_map": {
                "AutoConfig": "gemma_config.CostWiseGemmaConfig",
                "AutoModel": "gemma_model.CostWiseGemmaModel",
                "AutoModelForCausalLM": "gemma_model.CostWiseGemmaForCausalLM",
            },
            "model_type": "cost_wise_gemma",
            **fields,
            "hidden_act": "gelu_pytorch_tanh",
            "cache_implementation": "hybrid",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "start_layer": start_layer,
            "layer_sep": layer_sep,
            "layer_wise": True,
            "torch_dtype": "float32",
            "use_cache": True,
        }
    else:
        from transformers import LlamaConfig, LlamaForCausalLM

        fields = dict(common, hidden_act="silu", rms_norm_eps=1e-5, rope_theta=10000.0)
        body = LlamaForCausalLM(LlamaConfig(**fields)).eval()
        head_layers = list(range(start_layer, layers + 1))
        config = {
            "architectures": ["LayerWiseMiniCPMForCausalLM"],
            "auto_map": {
                "AutoConfig": "configuration_minicpm_reranker.LayerWiseMiniCPMConfig",
                "AutoModel": "modeling_minicpm_reranker.LayerWiseMiniCPMModel",
                "AutoModelForCausalLM": "modeling_minicpm_reranker.LayerWiseMiniCPMForCausalLM",
            },
            "model_type": "minicpm",
            **fields,
            "rope_scaling": None,
            "attention_bias": False,
            "attention_dropout": 0.0,
            "pretraining_tp": 1,
            "scale_emb": 12,
            "dim_model_base": 8,
            "scale_depth": 1.4,
            "start_layer": start_layer,
            "head_multi": True,
            "head_type": "simple",
            "tie_word_embeddings": True,
            "torch_dtype": "float32",
            "use_cache": True,
        }
    weights = {k: v.detach().clone().contiguous() for k, v in body.state_dict().items()}
    weights.pop("lm_head.weight", None)
    for name, tensor in weights.items():
        if name.endswith("norm.weight"):  # Gemma-2 initialises (1 + w) norms to w = 0
            tensor.add_(torch.randn_like(tensor) * 0.1)
    for i in range(len(head_layers)):
        weights[f"lm_head.{i}.linear_head.weight"] = torch.randn(1, hidden) * initializer_range
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out
