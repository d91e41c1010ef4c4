"""Build random causal-LM rerankers on disk, for tests and benchmarks (no hub, no downloads).

Three families, each with a tokenizer that holds the special and label tokens of its recipe:

- ``qwen3``: ``Qwen3ForCausalLM`` with a byte-level BPE tokenizer split by Qwen2's pre-tokenizer
  regex (so the boundary hazards of the real one, such as ``"?\\n"`` merging into one piece, are
  there too), ChatML special tokens, ``yes``/``no`` as single tokens, and a chat template that
  renders sentence-transformers' ``query``/``document`` messages as Qwen3-Reranker's prompt;
- ``gemma``: ``GemmaForCausalLM`` (bge-reranker-v2-gemma's architecture), ``<bos>``, ``Yes``;
- ``qwen2``: ``Qwen2ForCausalLM`` (mxbai-rerank-v2's), ChatML, ``0``/``1``.

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

from rankgate.testing import SAMPLE_TEXT

__all__ = ["QWEN3_CHAT_TEMPLATE", "Family", "build_bpe_tokenizer", "build_decoder_model"]

Family = Literal["qwen3", "gemma", "qwen2"]

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
}
# Words each family's recipe needs as single tokens (labels), and its template's words.
_WORDS: dict[Family, list[str]] = {
    "qwen3": ["yes", "no", "<think>", "</think>", "Instruct", "Query", "Document", "Judge", "?\n"],
    "gemma": ["Yes", "No", "A:", "B:", "query", "passage", "?\n"],
    "qwen2": ["query", "document", "instruction", "Relevance", "?\n", ":\n"],
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
    from transformers import PreTrainedTokenizerFast

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    raw = build_bpe_tokenizer(family)
    specials = _SPECIALS[family]
    if family == "gemma":
        names = dict(pad_token="<pad>", eos_token="<eos>", bos_token="<bos>")
    else:
        names = dict(pad_token="<|endoftext|>", eos_token="<|im_end|>")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, model_max_length=max_positions, **names
    )
    if family == "qwen3":
        tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    tokenizer.save_pretrained(str(out))
    config_path = out / "tokenizer_config.json"
    saved = json.loads(config_path.read_text())
    saved["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(saved, indent=2))

    vocab = vocab_size or raw.get_vocab_size()
    ids = {t: raw.token_to_id(t) for t in specials}
    common: dict[str, Any] = dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        initializer_range=initializer_range,
        tie_word_embeddings=True,
    )
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
