"""Decoder (LLM) rerankers: each recipe's scores equal its reference implementation's.

Tiny random causal LMs built on disk (rankgate.testing_llm): Qwen3ForCausalLM for the qwen3
recipe, GemmaForCausalLM for bge-gemma, Qwen2ForCausalLM for mxbai-v2. References:

- qwen3: a plain-transformers scorer written from the QwenLM/Qwen3-Embedding README (below), and
  sentence-transformers' CrossEncoder (its LogitScore path, the model's chat template);
- bge-gemma: FlagEmbedding's FlagLLMReranker itself, in .venv-flag (transformers 4);
- mxbai-v2: the mxbai-rerank package's MxbaiRerankV2 itself, in .venv-flag.

Parity within 1e-4 (fp32), on pairs that fit and on pairs whose document must be cut.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rankgate import InputTooLongError, InstructionNotSupportedError, Reranker
from rankgate.testing_llm import build_decoder_model
from tests.reference import run_reference
from tests.samples import DOCUMENTS, QUERY

QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_DEFAULT = "Given a web search query, retrieve relevant passages that answer the query"

LONG = " ".join(DOCUMENTS) * 3  # far over the max_length of the tests
PAIRS = [
    *[(QUERY, d) for d in DOCUMENTS],
    ("What is the admin password?", "Hold reset for ten seconds.\nThen log in."),
    ("router reset?", "  leading and trailing spaces  "),
    ("路由器怎么重置？", "长按复位键十秒钟。"),
    (QUERY, LONG),
]


def qwen3_reference(
    model_dir: Path, pairs: list[tuple[str, str]], instruction: str, max_length: int
) -> list[float]:
    """The QwenLM/Qwen3-Embedding README's transformers recipe, as written there."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    yes = tokenizer.convert_tokens_to_ids("yes")
    no = tokenizer.convert_tokens_to_ids("no")
    prefix = tokenizer.encode(QWEN3_PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(QWEN3_SUFFIX, add_special_tokens=False)
    texts = [f"<Instruct>: {instruction}\n<Query>: {q}\n<Document>: {d}" for q, d in pairs]
    inputs = tokenizer(
        texts,
        padding=False,
        truncation="longest_first",
        return_attention_mask=False,
        max_length=max_length - len(prefix) - len(suffix),
    )
    ids = [prefix + body + suffix for body in inputs["input_ids"]]
    batch = tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits[:, -1, :]
    return (logits[:, yes] - logits[:, no]).tolist()


def reference_env(script: str, request: dict[str, object]) -> list[dict[str, list[float]]]:
    return list(run_reference(script, dict(request))["results"])


# -- qwen3 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("instruction", [None, "Find the passage that tells how to do it"])
def test_qwen3_equals_the_readme_reference(qwen3_dir: Path, instruction: str | None) -> None:
    max_length = 400  # the long document must be cut; the others fit
    ours = Reranker(str(qwen3_dir), max_length=max_length, long_documents="truncate")
    assert ours.info().recipe == "qwen3"
    expected = qwen3_reference(qwen3_dir, PAIRS, instruction or QWEN3_DEFAULT, max_length)
    got = ours.compute_score(PAIRS, instruction=instruction)
    assert got == pytest.approx(expected, abs=1e-4)
    assert len(set(round(x, 3) for x in got)) > 3  # the random model does tell pairs apart


def test_qwen3_equals_sentence_transformers_cross_encoder(qwen3_dir: Path) -> None:
    from sentence_transformers import CrossEncoder

    fitting = PAIRS[:-1]
    model = CrossEncoder(str(qwen3_dir), device="cpu")
    expected = model.predict(fitting, activation_fn=lambda x: x, convert_to_numpy=True).tolist()
    ours = Reranker(str(qwen3_dir))
    assert ours.compute_score(fitting) == pytest.approx(expected, abs=1e-4)


def test_qwen3_normalized_is_the_sigmoid_of_the_log_odds(qwen3_dir: Path) -> None:
    import math

    ours = Reranker(str(qwen3_dir))
    raw = ours.compute_score(PAIRS[:3])
    assert ours.compute_score(PAIRS[:3], normalize=True) == pytest.approx(
        [1 / (1 + math.exp(-x)) for x in raw], abs=1e-6
    )


# -- bge-gemma -------------------------------------------------------------------------------

GEMMA_PROMPTS = [None, "Does passage B answer query A? Say 'Yes' or 'No'."]
MXBAI_INSTRUCTIONS = [None, "Find how-to passages"]


@pytest.mark.reference
def test_bge_gemma_equals_flag_llm_reranker(gemma_dir: Path) -> None:
    max_length = 200  # FlagLLMReranker's passage budget; the prompt comes on top
    cases = [{"pairs": PAIRS, "prompt": prompt} for prompt in GEMMA_PROMPTS]
    request = {"model": str(gemma_dir), "max_length": max_length, "cases": cases}
    results = reference_env("flag_llm_reference.py", request)
    ours = Reranker(str(gemma_dir), max_length=max_length, long_documents="truncate")
    assert ours.info().recipe == "bge-gemma"
    for prompt, expected in zip(GEMMA_PROMPTS, results, strict=True):
        got = ours.compute_score(PAIRS, instruction=prompt)
        assert got == pytest.approx(expected["scores"], abs=1e-4), prompt
        got = ours.compute_score(PAIRS, instruction=prompt, normalize=True)
        assert got == pytest.approx(expected["normalized"], abs=1e-5), prompt
    assert results[0]["scores"] != pytest.approx(results[1]["scores"], abs=1e-4)


# -- mxbai-v2 ---------------------------------------------------------------------------------


@pytest.mark.reference
def test_mxbai_equals_the_mxbai_rerank_package(mxbai_dir: Path) -> None:
    max_length = 200  # query and document; the prompt comes on top
    cases = [{"pairs": PAIRS, "instruction": i} for i in MXBAI_INSTRUCTIONS]
    request = {"model": str(mxbai_dir), "max_length": max_length, "cases": cases}
    results = reference_env("mxbai_reference.py", request)
    ours = Reranker(str(mxbai_dir), max_length=max_length, long_documents="truncate")
    assert ours.info().recipe == "mxbai-v2"
    for instruction, expected in zip(MXBAI_INSTRUCTIONS, results, strict=True):
        got = ours.compute_score(PAIRS, instruction=instruction)
        assert got == pytest.approx(expected["scores"], abs=1e-4), instruction
        # The package's own calibration: sigmoid(x - estimated_max / 2), 12.0 for other names.
        got = ours.compute_score(PAIRS, instruction=instruction, normalize=True)
        assert got == pytest.approx(expected["normalized"], abs=1e-5), instruction


# -- behaviour shared with encoders ---------------------------------------------------------


def test_long_documents_are_chunked_and_the_best_window_wins(qwen3_dir: Path) -> None:
    rr = Reranker(str(qwen3_dir), max_length=400)
    (result,) = rr.rerank(QUERY, [LONG], normalize=False)
    assert result.chunks > 1 and not result.truncated
    plans = rr.prepare(QUERY, [LONG]).plans[0]
    assert all(len(pair) <= 400 for pair in plans.pairs)
    windows = rr.score_encoded(list(plans.pairs))
    assert result.score == pytest.approx(float(max(windows)), abs=1e-6)


def test_an_instruction_changes_the_scores_of_a_decoder(qwen3_dir: Path) -> None:
    rr = Reranker(str(qwen3_dir))
    default = rr.compute_score(PAIRS[:4])
    other = rr.compute_score(PAIRS[:4], instruction="Judge the passage's tone only")
    assert default != pytest.approx(other, abs=1e-4)


def test_a_max_length_the_template_fills_is_refused(qwen3_dir: Path) -> None:
    from rankgate import ConfigError

    with pytest.raises(ConfigError, match="template"):
        Reranker(str(qwen3_dir), max_length=100)  # the qwen3 template alone takes 111 tokens
    rr = Reranker(str(qwen3_dir), max_length=200)
    with pytest.raises(InputTooLongError, match="no room for the document"):
        rr.rerank(" ".join(["router"] * 120), ["d"])  # a query of 3/4 max_length


def test_an_encoder_refuses_an_instruction(reranker: Reranker) -> None:
    with pytest.raises(InstructionNotSupportedError, match="no instruction slot"):
        reranker.rerank("q", ["d"], instruction="anything")


def test_an_unrecognised_causal_lm_asks_for_a_recipe(tmp_path: Path) -> None:
    from rankgate import ConfigError

    model = build_decoder_model(tmp_path / "some-qwen2", "qwen2")  # no "mxbai" in the name
    with pytest.raises(ConfigError, match="--recipe"):
        Reranker(str(model))
    assert Reranker(str(model), recipe="mxbai-v2").info().recipe == "mxbai-v2"


def test_a_recipe_file_defines_a_custom_reranker(tmp_path: Path, qwen3_dir: Path) -> None:
    recipe = {
        "prefix": ["<|im_start|>user\n"],
        "query": "Question: {query}\n",
        "middle": [],
        "document": "Passage: {document}",
        "suffix": ["<|im_end|>\n<|im_start|>assistant\n"],
        "true_token": "yes",
        "false_token": "no",
    }
    path = tmp_path / "my-recipe.json"
    path.write_text(json.dumps(recipe))
    custom = Reranker(str(qwen3_dir), recipe=str(path))
    assert custom.info().recipe == "my-recipe"
    builtin = Reranker(str(qwen3_dir))
    assert custom.compute_score(PAIRS[:3]) != pytest.approx(builtin.compute_score(PAIRS[:3]))


def test_onnx_export_says_decoders_run_on_torch(qwen3_dir: Path, tmp_path: Path) -> None:
    from rankgate import ConfigError
    from rankgate.backends.onnx_export import export_onnx

    with pytest.raises(ConfigError, match="torch backend"):
        export_onnx(qwen3_dir, tmp_path / "out")


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
@pytest.mark.parametrize("family", ["qwen3_dir", "gemma_dir", "mxbai_dir"])
def test_shared_prefix_reuse_equals_scoring_each_pair_whole(
    family: str, packed: bool, request: pytest.FixtureRequest
) -> None:
    import random

    model_dir = request.getfixturevalue(family)
    queries = [QUERY, "What is the admin password?", "路由器怎么重置？"]
    pairs = [(q, d) for q in queries for d in DOCUMENTS[:6]]
    random.Random(0).shuffle(pairs)  # any order: each pass holds several queries' documents
    # the reference: the stock transformers forward, one pair at a time
    whole = Reranker(str(model_dir), max_length=400, prefix_cache=False, packed=False)
    alone = [whole.compute_score([p])[0] for p in pairs]
    for batch_tokens in (1, 2000, 16384):  # passes of one pair, of several, of all
        shared = Reranker(str(model_dir), max_length=400, batch_tokens=batch_tokens, packed=packed)
        assert shared.backend.packed is packed
        assert shared.compute_score(pairs) == pytest.approx(alone, abs=1e-5), batch_tokens
        saved = shared.backend.shared_prefix_tokens_saved
        # One pair a pass shares nothing within a pass; packed passes keep the prefix for the next.
        assert (saved > 0) == (batch_tokens > 1 or packed), batch_tokens
    unshared = Reranker(str(model_dir), max_length=400, prefix_cache=False, packed=packed)
    assert unshared.compute_score(pairs) == pytest.approx(alone, abs=1e-5)
    assert unshared.backend.shared_prefix_tokens_saved == 0


def test_a_packed_pass_computes_real_tokens_and_each_prefix_once(qwen3_dir: Path) -> None:
    rr = Reranker(str(qwen3_dir), max_length=400, batch_tokens=16384)
    assert rr.backend.packed and rr.backend.shares_prefix  # the default on CPU
    prepared = rr.prepare(QUERY, DOCUMENTS[:5])
    seen: list[tuple[int, int, int]] = []
    rr.score_encoded(prepared.pairs, on_forward=lambda *s: seen.append(s))
    shared = prepared.pairs[0].shared
    real = sum(len(p) for p in prepared.pairs)
    assert seen == [(5, real, real - 4 * shared)]  # one pass, the prefix once, no padding


def test_a_prefix_is_computed_once_per_request_across_its_passes(qwen3_dir: Path) -> None:
    whole = Reranker(str(qwen3_dir), max_length=400, prefix_cache=False, packed=False)
    rr = Reranker(str(qwen3_dir), max_length=400, batch_tokens=1)  # one pair a pass
    prepared = rr.prepare(QUERY, DOCUMENTS[:6])
    passes: list[tuple[int, int, int]] = []
    got = rr.score_encoded(prepared.pairs, on_forward=lambda *s: passes.append(s))
    assert len(passes) == 6
    shared = prepared.pairs[0].shared
    # the first pass computes the prefix; the other five read its keys and values
    assert rr.backend.shared_prefix_tokens_saved == 5 * shared
    lengths = [len(p) for p in prepared.pairs]
    assert sorted(real for _, real, _ in passes) == sorted(lengths)
    # the metrics count what each pass computed: the prefix in the first pass only
    assert [computed for _, _, computed in passes] == [
        real if i == 0 else real - shared for i, (_, real, _) in enumerate(passes)
    ]
    want = whole.score_encoded(whole.prepare(QUERY, DOCUMENTS[:6]).pairs)
    assert got.tolist() == pytest.approx(want.tolist(), abs=1e-5)


def test_kept_prefixes_are_bounded_in_number_and_memory(qwen3_dir: Path) -> None:
    from rankgate.backends.packed_decoder import PackedDecoder

    rr = Reranker(str(qwen3_dir), max_length=400, batch_tokens=1)
    backend: Any = rr.backend
    queries = ["first question", "second question", "third question"]
    pairs = [rr.prepare(q, DOCUMENTS[:1]).pairs[0] for q in queries]
    body = backend._body
    two = PackedDecoder(body, backend._torch, keep_prefixes=2)
    for pair in pairs:
        two.last_hidden([pair], reuse_prefix=True)
    assert two.kept_prefixes == 2  # the oldest went first
    _, saved = two.last_hidden([pairs[0]], reuse_prefix=True)
    assert saved == 0  # it was recomputed (and is kept again)
    _, saved = two.last_hidden([pairs[2]], reuse_prefix=True)
    assert saved == pairs[2].shared
    short = PackedDecoder(body, backend._torch, keep_bytes=1)
    short.last_hidden([pairs[0]], reuse_prefix=True)
    assert short.kept_prefixes == 0  # larger than it may keep
    off = PackedDecoder(body, backend._torch)
    off.last_hidden([pairs[0]], reuse_prefix=False)
    assert off.kept_prefixes == 0


def test_a_packed_pass_that_differs_from_the_stock_forward_is_not_used(
    qwen3_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from rankgate.backends.packed_decoder import PackedDecoder

    original = PackedDecoder.last_hidden

    def off(self: PackedDecoder, pairs: object, reuse: bool) -> object:
        hidden, saved = original(self, pairs, reuse)  # type: ignore[arg-type]
        return hidden + 0.5, saved

    reference = Reranker(str(qwen3_dir), max_length=400, packed=False).compute_score(PAIRS[:4])
    monkeypatch.setattr(PackedDecoder, "last_hidden", off)
    rr = Reranker(str(qwen3_dir), max_length=400)
    assert rr.backend.packed is False
    assert "packed pass differs from the stock forward" in caplog.text
    assert rr.compute_score(PAIRS[:4]) == pytest.approx(reference, abs=1e-5)


def test_soft_capped_attention_is_not_packed() -> None:
    from types import SimpleNamespace

    from rankgate.backends.packed_decoder import unsupported_reason

    assert unsupported_reason(SimpleNamespace(attn_logit_softcapping=50.0)) is not None
    assert unsupported_reason(SimpleNamespace(is_causal=False)) is not None
    assert unsupported_reason(SimpleNamespace(attn_logit_softcapping=None)) is None


def test_a_packed_piece_attends_within_its_sliding_window() -> None:
    import torch

    from rankgate.backends.packed_decoder import Layout

    layout = Layout(pieces=[])
    # 2 prefix keys, then 3 rest tokens at positions 2-4; a window of 2: itself and the one before
    got = layout.mask(torch, 2, 3, "cpu", window=2).int().tolist()
    assert got == [[0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 1]]
    assert layout.mask(torch, 2, 3, "cpu").int().tolist() == [
        [1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
    ]
