"""FlagEmbedding's layerwise rerankers: scores equal FlagEmbedding's own, at several cutoff layers.

Tiny random checkpoints laid out as the real ones (rankgate.testing_llm.build_layerwise_model):

- bge-reranker-v2.5-gemma2-lightweight: CostWiseGemmaForCausalLM, 5 layers, heads at layers 1, 3
  and 5 (start_layer 1, layer_sep 2), a sliding window of 24 tokens (pairs here are longer),
  attention and final soft-caps small enough to change a tiny model's values;
- bge-reranker-v2-minicpm-layerwise: LayerWiseMiniCPMForCausalLM, 4 layers, heads at 2-4,
  scale_emb 12, scale_depth 1.4, dim_model_base 8.

The reference is FlagEmbedding 1.4's LightWeightFlagLLMReranker / LayerWiseFlagLLMReranker in
.venv-flag (scripts/flag_layerwise_reference.py, which also says what it adapts to transformers
4.57). Parity within 1e-4 (fp32) on pairs that fit and on pairs whose passage is cut.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import pytest

from rankgate import ConfigError, Reranker
from rankgate.backends.recipes import load_recipe
from rankgate.testing_llm import build_layerwise_model
from tests.reference import run_reference
from tests.samples import DOCUMENTS, QUERY
from tests.test_cli import run_cli
from tests.test_decoders import PAIRS

LIGHTWEIGHT_LAYERS = [None, 3, 1]  # None: FlagEmbedding's default, the last layer (5)
MINICPM_LAYERS = [None, 2, 3]  # the last layer is 4
PROMPT = "Does passage B answer query A?"
MAX_LENGTH = 120  # the passage budget; the prompt comes on top. LONG is cut, the rest fit.


@pytest.fixture(scope="module")
def lightweight_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bge-reranker-v2.5-gemma2-lightweight")
    return build_layerwise_model(
        out, "gemma2-lightweight", layers=5, start_layer=1, layer_sep=2, sliding_window=24
    )


@pytest.fixture(scope="module")
def minicpm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bge-reranker-v2-minicpm-layerwise")
    return build_layerwise_model(out, "minicpm-layerwise", layers=4, start_layer=2)


def with_cutoff(tmp_path: Path, base: str, layer: int | None) -> str:
    """A recipe file: the built-in ``base`` scored at ``layer``."""
    if layer is None:
        return base
    path = tmp_path / f"{base}-{layer}.json"
    path.write_text(json.dumps({"base": base, "cutoff_layer": layer}))
    return str(path)


def compressing(tmp_path: Path, ratio: int, layers: list[int], cutoff: int | None = None) -> str:
    """A recipe file: bge-gemma2-lightweight compressing tokens by ``ratio`` before ``layers``."""
    path = tmp_path / f"compress-{ratio}-{'-'.join(map(str, layers))}-{cutoff}.json"
    fields = {"base": "bge-gemma2-lightweight", "compress_ratio": ratio, "compress_layers": layers}
    path.write_text(json.dumps({**fields, "cutoff_layer": cutoff}))
    return str(path)


def reference(model: Path, kind: str, layers: list[int | None], **extra: object) -> dict:
    cases = [
        {"pairs": PAIRS, "prompt": prompt, "cutoff_layers": None if layer is None else [layer]}
        for layer in layers
        for prompt in (None, PROMPT)
    ]
    request = {"model": str(model), "kind": kind, "max_length": MAX_LENGTH, "cases": cases}
    return run_reference("flag_layerwise_reference.py", {**request, **extra})


def assert_parity(
    model: Path, base: str, kind: str, layers: list[int | None], tmp_path: Path
) -> list[float]:
    """Our scores at each layer, prompt and normalize equal FlagEmbedding's; the largest
    difference seen."""
    reply = reference(model, kind, layers)
    assert reply["loading"] == {"missing_keys": [], "unexpected_keys": []}  # laid out as real
    results = iter(reply["results"])
    seen: list[float] = []
    for layer in layers:
        ours = Reranker(
            str(model),
            recipe=with_cutoff(tmp_path, base, layer),
            max_length=MAX_LENGTH,
            long_documents="truncate",
        )
        for prompt in (None, PROMPT):
            expected = next(results)
            got = ours.compute_score(PAIRS, instruction=prompt)
            assert got == pytest.approx(expected["scores"], abs=1e-4), (layer, prompt)
            seen += [abs(a - b) for a, b in zip(got, expected["scores"], strict=True)]
            got = ours.compute_score(PAIRS, instruction=prompt, normalize=True)
            assert got == pytest.approx(expected["normalized"], abs=1e-5), (layer, prompt)
    by_layer = [reply["results"][2 * i]["scores"] for i in range(len(layers))]
    for a, b in itertools.pairwise(by_layer):
        assert a != pytest.approx(b, abs=1e-3)  # the layers do score differently
    return seen


@pytest.mark.reference
def test_gemma2_lightweight_equals_flag_embedding(lightweight_dir: Path, tmp_path: Path) -> None:
    diffs = assert_parity(
        lightweight_dir, "bge-gemma2-lightweight", "lightweight", LIGHTWEIGHT_LAYERS, tmp_path
    )
    assert max(diffs) < 1e-4


@pytest.mark.reference
def test_gemma2_lightweight_attention_is_not_soft_capped_as_in_flag_embedding(
    lightweight_dir: Path,
) -> None:
    """FlagEmbedding's model gets SDPA attention, which does not soft-cap; eager would, and on
    this model that changes the scores, so the parity test above tells the two apart."""
    sdpa = reference(lightweight_dir, "lightweight", [None])["results"][0]["scores"]
    eager = reference(lightweight_dir, "lightweight", [None], attention="eager")
    assert sdpa != pytest.approx(eager["results"][0]["scores"], abs=1e-3)


# ratio, compress layers, cutoff layer: once and twice (the pooled passage pooled again), the
# full-attention layers 1 and 3 reading the whole compressed pair, a compress layer past the cutoff
COMPRESSIONS = [(2, [1, 3], None), (4, [1], 3), (8, [2], None), (2, [3, 4], 3)]


@pytest.mark.reference
def test_gemma2_lightweight_token_compression_equals_flag_embedding(
    lightweight_dir: Path, tmp_path: Path
) -> None:
    cases = [
        {
            "pairs": PAIRS,
            "prompt": prompt,
            "cutoff_layers": None if cutoff is None else [cutoff],
            "compress_ratio": ratio,
            "compress_layers": layers,
        }
        for ratio, layers, cutoff in COMPRESSIONS
        for prompt in (None, PROMPT)
    ]
    request = {
        "model": str(lightweight_dir),
        "kind": "lightweight",
        "max_length": MAX_LENGTH,
        "cases": cases,
    }
    results = iter(run_reference("flag_layerwise_reference.py", request)["results"])
    plain = Reranker(str(lightweight_dir), max_length=MAX_LENGTH, long_documents="truncate")
    for ratio, layers, cutoff in COMPRESSIONS:
        ours = Reranker(
            str(lightweight_dir),
            recipe=compressing(tmp_path, ratio, layers, cutoff),
            max_length=MAX_LENGTH,
            long_documents="truncate",
            batch_tokens=1000,  # several passes, as FlagEmbedding's batches differ anyway
        )
        for prompt in (None, PROMPT):
            expected = next(results)
            got = ours.compute_score(PAIRS, instruction=prompt)
            assert got == pytest.approx(expected["scores"], abs=1e-4), (ratio, layers, prompt)
            got = ours.compute_score(PAIRS, instruction=prompt, normalize=True)
            assert got == pytest.approx(expected["normalized"], abs=1e-5), (ratio, layers)
        if cutoff is None:  # compression changes the scores of this model
            assert ours.compute_score(PAIRS) != pytest.approx(plain.compute_score(PAIRS), abs=1e-3)


@pytest.mark.reference
def test_minicpm_layerwise_equals_flag_embedding(minicpm_dir: Path, tmp_path: Path) -> None:
    diffs = assert_parity(
        minicpm_dir, "bge-minicpm-layerwise", "layerwise", MINICPM_LAYERS, tmp_path
    )
    assert max(diffs) < 1e-4


# -- recognition and options -----------------------------------------------------------------


def test_the_checkpoints_are_recognised(lightweight_dir: Path, minicpm_dir: Path) -> None:
    lightweight = Reranker(str(lightweight_dir))
    assert lightweight.info().recipe == "bge-gemma2-lightweight"
    assert lightweight.backend.cutoff_layer == 5  # type: ignore[attr-defined]
    assert lightweight.backend.default_max_length == 512
    minicpm = Reranker(str(minicpm_dir))
    assert minicpm.info().recipe == "bge-minicpm-layerwise"
    assert minicpm.backend.cutoff_layer == 4  # type: ignore[attr-defined]
    raw = minicpm.compute_score(PAIRS[:3])
    assert minicpm.compute_score(PAIRS[:3], normalize=True) == pytest.approx(
        [1 / (1 + math.exp(-x)) for x in raw], abs=1e-6
    )


def test_only_the_layers_up_to_the_cutoff_are_loaded(minicpm_dir: Path, tmp_path: Path) -> None:
    rr = Reranker(str(minicpm_dir), recipe=with_cutoff(tmp_path, "bge-minicpm-layerwise", 2))
    body = rr.backend._body  # type: ignore[attr-defined]
    assert len(body.layers) == 2


def test_a_cutoff_layer_without_a_head_is_refused(lightweight_dir: Path, tmp_path: Path) -> None:
    recipe = with_cutoff(tmp_path, "bge-gemma2-lightweight", 2)  # heads at 1, 3, 5
    with pytest.raises(ConfigError, match=r"cutoff_layer 2 has no score head.*1, 3, 5"):
        Reranker(str(lightweight_dir), recipe=recipe)


def test_token_compression_is_checked(
    minicpm_dir: Path, lightweight_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "compressed.json"
    path.write_text(json.dumps({"base": "bge-gemma2-lightweight", "compress_ratio": 3}))
    with pytest.raises(ConfigError, match="compress_ratio 3"):
        load_recipe(str(path))
    path.write_text(json.dumps({"base": "bge-minicpm-layerwise", "compress_ratio": 2}))
    with pytest.raises(ConfigError, match="LightWeightFlagLLMReranker"):
        Reranker(str(minicpm_dir), recipe=str(path))
    path.write_text(json.dumps({"base": "bge-gemma", "compress_ratio": 2}))
    with pytest.raises(ConfigError, match="for per-layer heads"):
        load_recipe(str(path))
    recipe = compressing(tmp_path, 2, [1, 3])
    with pytest.raises(ConfigError, match="packed passes cannot apply"):
        Reranker(str(lightweight_dir), recipe=recipe, packed=True)
    rr = Reranker(str(lightweight_dir), recipe=recipe)
    assert not rr.backend.packed and not rr.backend.shares_prefix
    assert "compressed by 2 before layers 1, 3" in rr.backend.kernels  # type: ignore[attr-defined]
    # FlagEmbedding's default compress layer, 8, is past this model's 5 layers: nothing to do
    path.write_text(json.dumps({"base": "bge-gemma2-lightweight", "compress_ratio": 2}))
    assert Reranker(str(lightweight_dir), recipe=str(path)).backend.packed


def test_recipes_and_checkpoints_must_agree(
    lightweight_dir: Path, gemma_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="per-layer score heads, not label logits"):
        Reranker(str(lightweight_dir), recipe="bge-gemma")
    with pytest.raises(ConfigError, match="has none of"):
        Reranker(str(gemma_dir), recipe="bge-minicpm-layerwise")
    path = tmp_path / "labels-with-cutoff.json"
    path.write_text(json.dumps({"base": "bge-gemma", "cutoff_layer": 3}))
    with pytest.raises(ConfigError, match="cutoff_layer is for per-layer heads"):
        Reranker(str(gemma_dir), recipe=str(path))
    path.write_text(json.dumps({"base": "no-such-recipe"}))
    with pytest.raises(ConfigError, match="base 'no-such-recipe'"):
        Reranker(str(gemma_dir), recipe=str(path))


def test_other_minicpm_head_types_are_refused(minicpm_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(minicpm_dir, tmp_path / "raw-heads"))
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "head_type": "raw"}))
    with pytest.raises(ConfigError, match="head_type 'raw'"):
        Reranker(str(copy))


@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
@pytest.mark.parametrize("family", ["lightweight_dir", "minicpm_dir"])
def test_shared_prefix_reuse_equals_scoring_each_pair_whole(
    family: str, packed: bool, request: pytest.FixtureRequest
) -> None:
    """Also across the lightweight model's 24-token sliding window: pairs here are longer."""
    model_dir = request.getfixturevalue(family)
    pairs = [(q, d) for q in (QUERY, "What is the admin password?") for d in DOCUMENTS[:5]]
    whole = Reranker(str(model_dir), max_length=200, prefix_cache=False, packed=False)
    alone = [whole.compute_score([p])[0] for p in pairs]
    for batch_tokens in (2000, 16384):
        shared = Reranker(str(model_dir), max_length=200, batch_tokens=batch_tokens, packed=packed)
        assert shared.backend.packed is packed
        assert shared.compute_score(pairs) == pytest.approx(alone, abs=1e-5), batch_tokens
        assert shared.backend.shared_prefix_tokens_saved > 0


@pytest.mark.slow
@pytest.mark.parametrize("family", ["lightweight_dir", "minicpm_dir"])
def test_rerank_runs_a_layerwise_reranker_directory(
    family: str, request: pytest.FixtureRequest
) -> None:
    model_dir = request.getfixturevalue(family)
    docs = ["Hold the reset button for ten seconds.", "WAN port settings", "路由器管理员密码"]
    out = run_cli(
        "rerank", "--model", str(model_dir), "-q", "reset router", "--json",
        stdin="\n".join(docs) + "\n",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    expected = Reranker(str(model_dir), device="cpu").rerank("reset router", docs)
    assert [r["index"] for r in rows] == [e.index for e in expected]
    assert [r["score"] for r in rows] == pytest.approx([e.score for e in expected], abs=1e-6)


def test_a_failed_packed_probe_leaves_gemma2_its_eager_attention(
    lightweight_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gemma-2 refuses sdpa in transformers 5: the fallback is the model's own attention."""
    from rankgate.backends.packed_decoder import PackedDecoder

    reference = Reranker(str(lightweight_dir), packed=False).compute_score(PAIRS[:3])
    original = PackedDecoder.last_hidden

    def off(self: PackedDecoder, pairs: object, reuse: bool) -> object:
        hidden, saved = original(self, pairs, reuse)  # type: ignore[arg-type]
        return hidden + 0.5, saved

    monkeypatch.setattr(PackedDecoder, "last_hidden", off)
    rr = Reranker(str(lightweight_dir))
    assert rr.backend.packed is False
    assert rr.compute_score(PAIRS[:3]) == pytest.approx(reference, abs=1e-5)


@pytest.mark.reference
def test_bos_is_prepended_even_where_it_is_the_padding_token(
    minicpm_dir: Path, tmp_path: Path
) -> None:
    """FlagEmbedding's layerwise rerankers always prepend BOS (its base FlagLLMReranker skips
    a BOS that is also the padding token)."""
    copy = Path(shutil.copytree(minicpm_dir, tmp_path / "bos-pads"))
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(
        json.dumps({**config, "pad_token_id": config["bos_token_id"]})
    )
    tokenizer = json.loads((copy / "tokenizer_config.json").read_text())
    (copy / "tokenizer_config.json").write_text(json.dumps({**tokenizer, "pad_token": "<s>"}))
    expected = reference(copy, "layerwise", [None])["results"][0]["scores"]
    ours = Reranker(str(copy), max_length=MAX_LENGTH, long_documents="truncate")
    assert ours.compute_score(PAIRS) == pytest.approx(expected, abs=1e-4)


def test_a_sharded_checkpoint_loads_the_same(minicpm_dir: Path, tmp_path: Path) -> None:
    """The real checkpoints come in shards with an index; heads and layers are read from it."""
    from safetensors.torch import load_file, save_file

    copy = Path(shutil.copytree(minicpm_dir, tmp_path / "sharded"))
    weights = load_file(str(copy / "model.safetensors"))
    (copy / "model.safetensors").unlink()
    names = sorted(weights)
    shards = {
        "model-00001-of-00002.safetensors": names[::2],
        "model-00002-of-00002.safetensors": names[1::2],
    }
    for file, part in shards.items():
        save_file({n: weights[n] for n in part}, str(copy / file), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {n: f for f, part in shards.items() for n in part}}
    (copy / "model.safetensors.index.json").write_text(json.dumps(index))
    recipe = with_cutoff(tmp_path, "bge-minicpm-layerwise", 3)
    expected = Reranker(str(minicpm_dir), recipe=recipe).compute_score(PAIRS[:4])
    assert Reranker(str(copy), recipe=recipe).compute_score(PAIRS[:4]) == pytest.approx(
        expected, abs=1e-6
    )
