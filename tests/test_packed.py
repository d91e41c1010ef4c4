"""The packed (unpadded) forward: same logits as the stock transformers forward, fewer tokens."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from rankgate import Reranker
from rankgate.backends.base import EncodedPair
from rankgate.backends.packed import PackedEncoder, packed_encoder
from rankgate.backends.torch_backend import TorchBackend
from rankgate.engine.batching import batch_tokens, plan_batches
from rankgate.testing import KeywordBackend


def _pairs(lengths: list[int], vocab: int, seed: int = 0, types: bool = False) -> list[EncodedPair]:
    rng = random.Random(seed)
    pairs = []
    for n in lengths:
        ids = (0, *(rng.randrange(3, vocab) for _ in range(n - 2)), 2)
        segs = tuple(0 if i < n // 2 else 1 for i in range(n)) if types else None
        pairs.append(EncodedPair(ids, segs))
    return pairs


def _one_by_one(model: torch.nn.Module, pairs: list[EncodedPair]) -> np.ndarray:
    """The stock forward, each pair alone: no padding, no batching, nothing of ours."""
    out = []
    with torch.inference_mode():
        for p in pairs:
            kwargs = {"input_ids": torch.tensor([p.input_ids])}
            if p.token_type_ids is not None:
                kwargs["token_type_ids"] = torch.tensor([p.token_type_ids])
            out.append(float(model(**kwargs).logits[0, 0]))
    return np.array(out, dtype=np.float32)


def test_tiny_model_runs_packed_on_cpu(reranker: Reranker) -> None:
    assert reranker.backend.packed is True


@pytest.mark.parametrize("lengths", [[9], [40, 7, 23, 23, 5, 61], [12] * 20])
def test_packed_equals_the_stock_forward_pair_by_pair(tiny_model: Path, lengths: list[int]) -> None:
    packed = TorchBackend(tiny_model, model_id="tiny", device="cpu", packed=True)
    padded = TorchBackend(tiny_model, model_id="tiny", device="cpu", packed=False)
    assert packed.packed and not padded.packed
    pairs = _pairs(lengths, vocab=packed._model.config.vocab_size)
    want = _one_by_one(packed._model, pairs)
    np.testing.assert_allclose(packed.forward(pairs), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(padded.forward(pairs), want, rtol=1e-5, atol=1e-5)


def test_a_padding_token_inside_a_pair_is_treated_as_transformers_does(tiny_model: Path) -> None:
    # RoBERTa positions skip padding ids wherever they stand ("<pad>" typed into a document).
    backend = TorchBackend(tiny_model, model_id="tiny", device="cpu")
    pad = backend.pad_token_id
    pairs = [EncodedPair((0, 7, 8, pad, 9, 10, 2)), EncodedPair((0, 11, 2))]
    np.testing.assert_allclose(
        backend.forward(pairs), _one_by_one(backend._model, pairs), rtol=1e-5, atol=1e-5
    )


def _bert() -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        type_vocab_size=2,
        num_labels=1,
        initializer_range=0.5,
    )
    return BertForSequenceClassification(config).eval()


def test_bert_with_segment_ids_and_pooler() -> None:
    model = _bert()
    encoder = packed_encoder(model, torch)
    assert isinstance(encoder, PackedEncoder)
    pairs = _pairs([30, 6, 17], vocab=99, types=True)
    with torch.inference_mode():
        got = encoder.forward(pairs).numpy()
    np.testing.assert_allclose(got, _one_by_one(model, pairs), rtol=1e-5, atol=1e-5)


def test_other_architectures_keep_the_stock_forward() -> None:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(vocab_size=99, dim=32, n_layers=1, n_heads=2, hidden_dim=37)
    assert packed_encoder(DistilBertForSequenceClassification(config), torch) is None


def test_a_packed_forward_that_disagrees_is_not_used(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The load-time check, not the packed encoder, is under test: break the encoder.
    monkeypatch.setattr(PackedEncoder, "forward", lambda self, pairs: torch.zeros(len(pairs)))
    with caplog.at_level(logging.WARNING, "rankgate"):
        backend = TorchBackend(tiny_model, model_id="tiny", device="cpu", packed=True)
    assert backend.packed is False
    assert "differs from the stock forward" in caplog.text
    pairs = _pairs([10, 20], vocab=backend._model.config.vocab_size)
    np.testing.assert_allclose(
        backend.forward(pairs), _one_by_one(backend._model, pairs), atol=1e-5
    )


def test_packed_setting_from_the_environment(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANKGATE_PACKED", "false")
    assert Reranker(str(tiny_model), device="cpu").backend.packed is False


def test_packed_planner_fills_passes_by_real_tokens() -> None:
    lengths = [500, 60, 480, 90, 300, 75, 410, 120]
    batches = plan_batches(lengths, max_tokens=1000, max_size=128, overhead_tokens=64, packed=True)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 1000 for b in batches)
    assert len(batches) == 3  # 2035 tokens: three passes are the fewest that fit
    padded = plan_batches(lengths, max_tokens=1000, max_size=128, overhead_tokens=64)
    assert len(padded) > len(batches)  # padding to the longest forces more, smaller passes
    assert batch_tokens([500, 60], packed=True) == 560
    assert batch_tokens([500, 60], packed=False) == 1000


def test_a_shared_prefix_is_planned_and_counted_once() -> None:
    lengths = [300, 280, 260, 240]  # every pair starts with the same 200-token prefix
    shared = [200] * 4
    assert batch_tokens(lengths, packed=True, shared=shared) == 200 + 100 + 80 + 60 + 40
    assert batch_tokens([300], packed=True, shared=[200]) == 300
    assert batch_tokens(lengths, packed=False, shared=shared) == 4 * 300  # padded: no saving
    # 1080 pair tokens do not fit 500, but 480 computed ones do: one pass
    alone = plan_batches(lengths, max_tokens=500, max_size=128, packed=True)
    together = plan_batches(lengths, max_tokens=500, max_size=128, packed=True, shared=shared)
    assert len(alone) > 1 and together == [[0, 1, 2, 3]]


def test_a_packed_backend_reports_no_padding() -> None:
    backend = KeywordBackend()
    backend.packed = True
    rr = Reranker(backend=backend, batch_tokens=64, max_batch_size=4)
    seen: list[tuple[int, int, int]] = []
    prepared = rr.prepare("a", ["a " * 3, "a " * 20, "a " * 5, "a"])
    rr.score_encoded(prepared.pairs, on_forward=lambda *s: seen.append(s))
    assert all(real == computed for _, real, computed in seen)
    assert sum(s[1] for s in seen) == sum(len(p) for p in prepared.pairs)
