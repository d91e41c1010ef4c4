"""Our scores against the reference implementations, on the same weights, in float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rankgate import Reranker
from tests.samples import DOCUMENTS, QUERY

PAIRS_THAT_FIT = [(QUERY, d) for d in DOCUMENTS] + [
    ("特斯拉Model Y冬季续航缩水严重吗？", "北方用户实录零下二十度续航仅剩三百二十公里。"),
    ("Sony WH-1000XM5 vs XM4", "Die Geräuschunterdrückung ist um 30 % besser."),
    ("¿Cómo restablecer la contraseña?", "Mantenga pulsado el botón de reinicio."),
]


def test_matches_sentence_transformers_cross_encoder(reranker: Reranker, tiny_model: Path) -> None:
    import torch
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(str(tiny_model), device="cpu", max_length=reranker.max_length)
    expected_raw = ce.predict(PAIRS_THAT_FIT, activation_fn=torch.nn.Identity(), batch_size=4)
    expected_sigmoid = ce.predict(PAIRS_THAT_FIT, batch_size=4)

    raw = reranker.compute_score(PAIRS_THAT_FIT)
    normalized = reranker.compute_score(PAIRS_THAT_FIT, normalize=True)

    assert raw == pytest.approx(expected_raw.tolist(), abs=1e-5)
    assert normalized == pytest.approx(expected_sigmoid.tolist(), abs=1e-5)
    # the scores must differ between pairs, or this test could not tell orders apart
    assert np.ptp(raw) > 0.05


def test_rerank_matches_cross_encoder_rank(reranker: Reranker, tiny_model: Path) -> None:
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(str(tiny_model), device="cpu", max_length=reranker.max_length)
    expected = ce.rank(QUERY, DOCUMENTS)
    ours = reranker.rerank(QUERY, DOCUMENTS)
    assert [r.index for r in ours] == [e["corpus_id"] for e in expected]
    assert [r.score for r in ours] == pytest.approx([e["score"] for e in expected], abs=1e-5)


def flag_reference_scores(
    model_dir: Path, pairs: list[tuple[str, str]], max_length: int
) -> list[float]:
    """FlagReranker's truncation policy written with plain transformers, one pair at a time.

    The query keeps at most ``max_length * 3 // 4`` tokens; the passage is cut by
    ``prepare_for_model(truncation='only_second')``, i.e. to what is left after the query and
    the special tokens.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    specials = tok.num_special_tokens_to_add(pair=True)
    scores = []
    for query, passage in pairs:
        q = tok(query, add_special_tokens=False, truncation=True, max_length=max_length * 3 // 4)
        p = tok(passage, add_special_tokens=False, truncation=True, max_length=max_length)
        q_ids, p_ids = q["input_ids"], p["input_ids"]
        p_ids = p_ids[: max(0, max_length - len(q_ids) - specials)]
        ids = [
            tok.cls_token_id,
            *q_ids,
            tok.sep_token_id,
            tok.sep_token_id,
            *p_ids,
            tok.sep_token_id,
        ]
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids])).logits
        scores.append(float(logits[0, 0]))
    return scores


def test_truncation_matches_flag_reranker_policy(tiny_model: Path) -> None:
    max_length = 48
    rr = Reranker(str(tiny_model), max_length=max_length, long_documents="truncate")
    long_query = " ".join(["router admin password reset"] * 20)
    pairs = [
        (QUERY, DOCUMENTS[6] * 4),  # passage cut
        (long_query, DOCUMENTS[0]),  # query cut to 3/4, passage cut to the rest
        (long_query, "short"),
        ("hi", "fits"),
    ]
    expected = flag_reference_scores(tiny_model, pairs, max_length)
    assert rr.compute_score(pairs) == pytest.approx(expected, abs=1e-5)
    results = rr.rerank(QUERY, [DOCUMENTS[6] * 4, "fits"])
    flags = {r.index: (r.truncated, r.chunks) for r in results}
    assert flags == {0: (True, 1), 1: (False, 1)}


def test_batch_size_and_order_do_not_change_scores(tiny_model: Path, reranker: Reranker) -> None:
    pairs = PAIRS_THAT_FIT * 3
    reference = reranker.compute_score(pairs, batch_size=1)
    tight = Reranker(str(tiny_model), batch_tokens=40, max_batch_size=3)
    assert tight.compute_score(pairs) == pytest.approx(reference, abs=1e-5)
    assert reranker.compute_score(pairs, batch_size=64) == pytest.approx(reference, abs=1e-5)
    order = np.random.default_rng(0).permutation(len(pairs))
    shuffled = reranker.compute_score([pairs[i] for i in order])
    assert shuffled == pytest.approx([reference[i] for i in order], abs=1e-5)
