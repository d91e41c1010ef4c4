"""Build random cross-encoders on disk, for tests and benchmarks (no hub, no downloads).

The model has bge-reranker-v2-m3's family (XLM-RoBERTa for sequence classification, one logit)
and a Unigram tokenizer trained with ``tokenizers`` on a small multilingual text, saved so that
``AutoTokenizer`` / ``AutoModelForSequenceClassification.from_pretrained(dir)`` load it as they
would the real model. Random weights prove loading, batching and numerics, not ranking quality.
Imports torch and transformers lazily; needs the ``torch`` extra.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rankgate.backends.base import EncodedPair, PairTemplate

__all__ = [
    "SAMPLE_TEXT",
    "KeywordBackend",
    "build_model",
    "build_tokenizer",
    "keyword_task",
    "keyword_vocabulary",
    "name_tokenizer_class",
]

SAMPLE_TEXT = [
    "How do I reset the admin password of a Huawei router? Hold the reset button for ten seconds.",
    "The quick brown fox jumps over the lazy dog while the battery drains in winter.",
    "Tesla Model Y winter range drops at minus twenty degrees; battery heating uses energy.",
    "如何重置华为路由器管理员密码？长按复位键十秒钟，然后登录网页管理界面。",
    "特斯拉Model Y冬季续航缩水严重吗？北方用户实录零下二十度续航仅剩三百二十公里。",
    "ルーターの管理者パスワードをリセットする方法。リセットボタンを十秒間押します。",
    "라우터 관리자 비밀번호를 재설정하는 방법은 무엇입니까? 리셋 버튼을 누르세요.",
    "Comment réinitialiser le mot de passe administrateur du routeur ? Appuyez sur le bouton.",
    "¿Cómo restablecer la contraseña del router? Mantenga pulsado el botón de reinicio.",
    "Wie setze ich das Administratorpasswort des Routers zurück? Drücken Sie die Taste.",
    "Как сбросить пароль администратора роутера? Нажмите кнопку сброса на десять секунд.",
    "iPhone 15 charges slowly: battery aging, incompatible charger, software bug, heat.",
    "Sony WH-1000XM5 noise cancellation improves by about 30% over the XM4 in low frequencies.",
    "0123456789 %$#@!?.,;:()[]{}<>/-_+=*&^~'\"",
]


def build_tokenizer(
    out: Path, model_max_length: int = 512, texts: Sequence[str] = SAMPLE_TEXT
) -> None:
    """Write a small Unigram tokenizer laid out as XLM-R's to ``out``, the same on every run.

    The vocabulary is counted from ``texts`` (default :data:`SAMPLE_TEXT`; every character,
    and every word of up to eight characters, scored by log frequency) rather than trained:
    ``tokenizers``' trainer picks different pieces from run to run, and so would the scores of
    every test model. The pieces are handed to transformers' ``XLMRobertaTokenizer(vocab=...)``,
    which builds XLM-R's own pipeline around them, so the saved ``tokenizer.json`` is exactly
    what transformers 4 and 5 both load.
    """
    from transformers import XLMRobertaTokenizer

    counts: Counter[str] = Counter()
    for word in " ".join(texts).split():
        counts["▁"] += 1
        counts.update(word)
        if len(word) <= 8:
            counts["▁" + word] += 1
    total = sum(counts.values())
    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces = specials + [(p, math.log(n / total)) for p, n in sorted(counts.items())]
    tokenizer = XLMRobertaTokenizer(vocab=[*pieces, ("<mask>", 0.0)])
    tokenizer.model_max_length = model_max_length
    tokenizer.save_pretrained(str(out))
    name_tokenizer_class(out, "XLMRobertaTokenizerFast")


def name_tokenizer_class(out: Path, name: str) -> None:
    """Write ``tokenizer_class`` into ``out``'s tokenizer_config.json.

    transformers 5 declares a class (``XLMRobertaTokenizer``, ``TokenizersBackend``) that 4.x,
    FlagEmbedding's environment, cannot load or builds the wrong pairs with; a fast class named
    explicitly makes both build the same tokenizer from tokenizer.json.
    """
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = name
    config_path.write_text(json.dumps(config, indent=2))


def build_model(
    out: Path,
    *,
    layers: int = 2,
    hidden: int = 32,
    heads: int = 2,
    intermediate: int = 37,
    vocab_size: int | None = None,
    max_positions: int = 514,
    seed: int = 0,
    initializer_range: float = 0.02,
    tokenizer_texts: Sequence[str] = SAMPLE_TEXT,
    dropout: float = 0.1,
) -> Path:
    """Save a random XLM-RoBERTa cross-encoder (one logit) and its tokenizer to ``out``.

    Defaults give a tiny test model; ``layers=24, hidden=1024, heads=16, intermediate=4096,
    vocab_size=250002, max_positions=8194`` gives bge-reranker-v2-m3's architecture. A larger
    ``initializer_range`` spreads the random scores (useful for ordering tests).
    """
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    build_tokenizer(out, model_max_length=max_positions - 2, texts=tokenizer_texts)
    from transformers import AutoTokenizer

    vocab = vocab_size or len(AutoTokenizer.from_pretrained(str(out)))
    config = XLMRobertaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=1,  # type: ignore[call-arg]  # a PretrainedConfig kwarg
        initializer_range=initializer_range,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(seed)
    model = XLMRobertaForSequenceClassification(config).eval()
    model.save_pretrained(str(out))
    return out


class KeywordBackend:
    """A fast, deterministic stand-in for a model, for engine and server tests.

    Words are tokens; a pair's logit grows with the share of document words found in the query.
    ``delay`` seconds per pair simulates inference time; ``nan_on`` makes any pair whose document
    contains that word return NaN; ``max_pairs`` makes larger batches raise out-of-memory.
    """

    name = "keyword"
    model_id = "keyword"
    device = "cpu"
    dtype = "float32"
    pad_token_id = 1
    model_max_length = 8192
    parameters = 0
    packed = False
    shares_prefix = False
    shared_prefix_tokens_saved = 0
    template = PairTemplate(prefix=(0,), middle=(2, 2), suffix=(2,))

    def __init__(
        self, delay: float = 0.0, nan_on: str | None = None, max_pairs: int | None = None
    ) -> None:
        self.delay = delay
        self.nan_id = self._id(nan_on) if nan_on else None
        self.max_pairs = max_pairs
        self.batches: list[int] = []
        self.pairs_computed = 0

    @staticmethod
    def _id(word: str) -> int:
        return 10 + zlib.crc32(word.lower().encode()) % 50000

    def tokenize(self, texts: Sequence[str], max_tokens: int | None = None) -> list[list[int]]:
        return [[self._id(w) for w in text.split()][:max_tokens] for text in texts]

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(f"<{i}>" for i in ids)

    def forward(self, pairs: Sequence[EncodedPair]) -> np.ndarray:
        from rankgate.errors import DeviceOutOfMemoryError

        if self.max_pairs is not None and len(pairs) > self.max_pairs:
            raise DeviceOutOfMemoryError(f"fake out of memory for {len(pairs)} pairs")
        self.batches.append(len(pairs))
        self.pairs_computed += len(pairs)
        if self.delay:
            time.sleep(self.delay * len(pairs))
        out = np.empty(len(pairs), dtype=np.float32)
        for row, pair in enumerate(pairs):
            ids = pair.input_ids[1:-1]
            cut = next(i for i in range(len(ids) - 1) if ids[i : i + 2] == (2, 2))
            query, doc = set(ids[:cut]), ids[cut + 2 :]
            if self.nan_id is not None and self.nan_id in doc:
                out[row] = np.nan
                continue
            hits = sum(1 for t in doc if t in query)
            out[row] = 4.0 * hits / (len(doc) + 1) - 2.0
        return out


KEYWORD_FILLER = [
    "the",
    "device",
    "manual",
    "battery",
    "screen",
    "cable",
    "router",
    "update",
    "setting",
    "account",
    "light",
    "sound",
    "window",
    "door",
    "phone",
    "camera",
    "power",
    "button",
    "menu",
    "color",
    "paper",
    "water",
    "music",
    "video",
    "file",
]


KEYWORDS = [
    "walrus",
    "saffron",
    "zeppelin",
    "quartz",
    "falcon",
    "lantern",
    "orchid",
    "glacier",
    "harpoon",
    "tulip",
    "cobalt",
    "pelican",
    "marble",
    "canyon",
    "violin",
    "anchor",
    "cactus",
    "meteor",
    "ferret",
    "turbine",
    "lemon",
    "dragon",
    "pepper",
    "tiger",
]


def keyword_task(
    queries: int, negatives: int = 7, *, keywords: int = 24, filler: int = 6, seed: int = 0
) -> list[dict[str, object]]:
    """Rows of a task a tiny model can learn: relevant = the document has the query's keyword.

    Each query names one rare keyword among filler words; its positive mentions that keyword,
    its negatives share the query's filler words (lexical distractors) but name another
    keyword. Rows are FlagEmbedding JSONL records (``query``, ``pos``, ``neg``).
    """
    import random

    rng = random.Random(seed)
    words = list(KEYWORDS[:keywords])
    rows: list[dict[str, object]] = []
    for _ in range(queries):
        key = rng.choice(words)
        topic = rng.sample(KEYWORD_FILLER, 3)
        query = f"how do i fix {key} on the {topic[0]} {topic[1]}"

        def doc(word: str, topic: list[str] = topic) -> str:
            body = [*topic, *rng.sample(KEYWORD_FILLER, filler), word]
            rng.shuffle(body)
            return " ".join(body)

        others = [w for w in words if w != key]
        rows.append(
            {
                "query": query,
                "pos": [doc(key)],
                "neg": [doc(rng.choice(others)) for _ in range(negatives)],
            }
        )
    return rows


def keyword_vocabulary(keywords: int = 24) -> list[str]:
    """Texts whose words become whole tokens of :func:`build_tokenizer` for :func:`keyword_task`."""
    return [
        " ".join(KEYWORD_FILLER),
        " ".join(KEYWORDS[:keywords]),
        "how do i fix on the",
    ]
