"""CPU features, the kernels chosen from them, and the precisions they run: exact fp32 on MKL or
oneDNN, bf16-mixed and pure bf16 against fp32, and the load-time bf16 probe."""

from __future__ import annotations

import itertools
import random
import warnings
from pathlib import Path

import numpy as np
import pytest

from rankgate import Reranker
from rankgate.backends import torch_backend
from rankgate.backends.base import EncodedPair
from rankgate.backends.cpu import CpuInfo, choose_kernels, cpu_info
from rankgate.backends.torch_backend import MIXED, TorchBackend, resolve_dtype
from rankgate.bench.core import default_cpu_peers
from rankgate.errors import ConfigError

# /proc/cpuinfo as three CPUs the project runs on describe themselves (flags abridged).
SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 \
avx_vnni avx512_fp16 amx_bf16 amx_tile amx_int8
"""
ZEN5 = """vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9B45
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx_vnni
"""
ZEN3 = """vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx avx2 fma
"""


def test_cpu_features_are_read_from_cpuinfo() -> None:
    spr = cpu_info(SAPPHIRE_RAPIDS)
    assert spr.model.startswith("Intel(R) Xeon(R) Platinum 8481C")
    assert spr.vendor == "GenuineIntel" and spr.amx
    assert spr.features == [
        "AVX2",
        "AVX-512",
        "AVX512-BF16",
        "AVX512-FP16",
        "AVX512-VNNI",
        "AVX-VNNI",
        "AMX-BF16",
        "AMX-INT8",
    ]
    assert cpu_info(ZEN3).features == ["AVX2"]
    assert cpu_info("").model  # nothing readable: still a name (platform's), no features
    assert cpu_info("").features == []


@pytest.mark.parametrize(
    ("text", "fp32", "bf16", "int8", "onednn", "native"),
    [
        (
            SAPPHIRE_RAPIDS,
            "MKL AVX-512 FMA",
            "oneDNN AMX-BF16 tiles",
            "AMX-INT8 tiles",
            False,
            True,
        ),
        (ZEN5, "oneDNN AVX-512 FMA", "oneDNN AVX512-BF16", "AVX512-VNNI", True, True),
        (ZEN3, "MKL AVX2 FMA", "emulated", "AVX2 integer (no VNNI)", False, False),
    ],
    ids=["sapphire-rapids", "zen5", "zen3"],
)
def test_kernels_are_chosen_from_the_features(
    text: str, fp32: str, bf16: str, int8: str, onednn: bool, native: bool
) -> None:
    k = choose_kernels(cpu_info(text))
    assert (k.fp32, k.int8, k.fp32_onednn, k.bf16_native) == (fp32, int8, onednn, native)
    assert k.bf16.startswith(bf16)
    assert choose_kernels(cpu_info(text), "onednn").fp32_onednn
    assert not choose_kernels(cpu_info(text), "blas").fp32_onednn


def test_bf16_on_a_cpu_without_bf16_hardware_warns_and_says_why() -> None:
    for dtype in ("bfloat16", MIXED):
        with pytest.warns(RuntimeWarning, match="without bf16 instructions.*slower than float32"):
            assert resolve_dtype(dtype, "cpu", cpu_info(ZEN3)) == dtype
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert resolve_dtype(dtype, "cpu", cpu_info(SAPPHIRE_RAPIDS)) == dtype


def _fake_cpu(monkeypatch: pytest.MonkeyPatch, text: str) -> CpuInfo:
    cpu = cpu_info(text)
    monkeypatch.setattr(torch_backend, "cpu_info", lambda: cpu)
    return cpu


def _pairs(backend: TorchBackend, count: int = 40, seed: int = 0) -> list[EncodedPair]:
    """``count`` pairs of 6-120 random tokens of the model's vocabulary."""
    rng = random.Random(seed)
    vocab = backend._model.config.vocab_size
    pairs = []
    for _ in range(count):
        n = rng.randrange(6, 120)
        pairs.append(EncodedPair((0, *(rng.randrange(3, vocab) for _ in range(n - 2)), 2)))
    return pairs


@pytest.mark.parametrize(("text", "onednn"), [(ZEN5, True), (ZEN3, False)], ids=["zen5", "zen3"])
def test_the_backend_follows_the_dispatch_and_stays_exact_in_fp32(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch, text: str, onednn: bool
) -> None:
    _fake_cpu(monkeypatch, text)
    packed = TorchBackend(tiny_model, model_id="tiny", device="cpu", bf16_probe=False)
    assert packed.packed and packed._packed.linears.onednn is onednn
    assert ("oneDNN" in packed.kernels) is onednn
    stock = TorchBackend(tiny_model, model_id="tiny", device="cpu", packed=False)
    pairs = _pairs(packed)
    np.testing.assert_allclose(packed.forward(pairs), stock.forward(pairs), rtol=1e-5, atol=1e-5)


def test_onednn_and_mkl_give_the_same_fp32_scores(tiny_model: Path) -> None:
    onednn = TorchBackend(tiny_model, model_id="t", device="cpu", cpu_matmul="onednn")
    blas = TorchBackend(tiny_model, model_id="t", device="cpu", cpu_matmul="blas")
    assert onednn._packed.linears.onednn and not blas._packed.linears.onednn
    pairs = _pairs(onednn)
    np.testing.assert_allclose(onednn.forward(pairs), blas.forward(pairs), rtol=1e-5, atol=1e-5)


MIXED_BOUND = 0.1
"""bf16-mixed moves the tiny model's scores by at most this share of their fp32 spread (its wide
random initialisation makes it far less well conditioned than a trained model)."""


@pytest.fixture(scope="module")
def scores(tiny_model: Path) -> dict[str, np.ndarray]:
    """Raw scores of the same pairs in every precision, packed and stock."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bf16 on a CPU without bf16 hardware
        for dtype, packed in itertools.product(("float32", MIXED, "bfloat16"), (True, False)):
            backend = TorchBackend(
                tiny_model, model_id="t", device="cpu", dtype=dtype, packed=packed, bf16_probe=False
            )
            assert backend.packed is packed, f"{dtype}: the packed check failed"
            out[f"{dtype}{'' if packed else '-stock'}"] = backend.forward(_pairs(backend))
    return out


def test_mixed_bf16_stays_within_its_bound_and_keeps_the_fp32_ranking(
    scores: dict[str, np.ndarray],
) -> None:
    exact, mixed = scores["float32-stock"], scores[MIXED]
    bound = MIXED_BOUND * float(exact.max() - exact.min())
    assert np.abs(mixed - exact).max() <= bound
    assert np.abs(mixed - exact).max() > 0  # it did run in bf16
    for i, j in itertools.combinations(range(len(exact)), 2):
        if abs(exact[i] - exact[j]) > 2 * bound:
            assert (mixed[i] > mixed[j]) == (exact[i] > exact[j])


@pytest.mark.parametrize("dtype", ["bfloat16", MIXED])
def test_packed_bf16_equals_stock_bf16_within_bf16s_own_rounding(
    scores: dict[str, np.ndarray], dtype: str
) -> None:
    # The packed forward may differ from the stock one in summation order only: no more than
    # the stock bf16 forward itself differs from fp32.
    packed, stock, exact = scores[dtype], scores[f"{dtype}-stock"], scores["float32-stock"]
    assert np.abs(packed - stock).max() <= np.abs(stock - exact).max()


def test_the_bf16_probe_measures_speed_and_score_movement(tiny_model: Path) -> None:
    backend = TorchBackend(tiny_model, model_id="t", device="cpu", bf16_probe=True)
    probe = backend.bf16_probe
    assert probe is not None and probe.dtype == MIXED and probe.pairs == 12
    assert probe.speedup > 0 and 0 < probe.max_delta < probe.spread
    assert -1 <= probe.spearman <= 1
    assert "bf16-mixed would be" in probe.describe()
    quiet = TorchBackend(tiny_model, model_id="t", device="cpu", bf16_probe=False)
    assert quiet.bf16_probe is None


@pytest.mark.parametrize(
    ("text", "probed"), [(SAPPHIRE_RAPIDS, True), (ZEN3, False)], ids=["amx", "zen3"]
)
def test_the_probe_runs_by_default_only_where_bf16_hardware_is(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch, text: str, probed: bool
) -> None:
    _fake_cpu(monkeypatch, text)
    backend = TorchBackend(tiny_model, model_id="t", device="cpu")
    assert (backend.bf16_probe is not None) is probed
    chosen = TorchBackend(tiny_model, model_id="t", device="cpu", dtype="float32")
    assert chosen.bf16_probe is None  # an explicit dtype is the user's choice


def test_info_names_the_cpu_its_features_and_kernels(tiny_model: Path) -> None:
    info = Reranker(str(tiny_model), device="cpu", bf16_probe=True).info()
    here = cpu_info()
    assert info.cpu == here.model and list(info.cpu_features) == here.features
    assert info.kernels and info.kernels.startswith("packed, float32 linear layers on ")
    assert info.bf16_probe is not None


def test_bf16_mixed_is_refused_where_it_is_not_built(tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match="torch backend"):
        Reranker(str(tiny_model), backend="onnx", dtype=MIXED)


def test_bf16_mixed_is_refused_for_decoder_rerankers(qwen3_dir: Path) -> None:
    with pytest.raises(ConfigError, match="built for cross-encoders"):
        Reranker(str(qwen3_dir), device="cpu", dtype=MIXED)


def test_bench_adds_the_bf16_peers_on_bf16_hardware() -> None:
    assert "rankgate-bf16-mixed" in default_cpu_peers(cpu_info(SAPPHIRE_RAPIDS))
    assert "rankgate-blas" not in default_cpu_peers(cpu_info(SAPPHIRE_RAPIDS))
    zen5 = default_cpu_peers(cpu_info(ZEN5))
    assert zen5[:2] == ("rankgate", "rankgate-blas") and "rankgate-bf16" in zen5
    assert not {"rankgate-bf16", "rankgate-blas"} & set(default_cpu_peers(cpu_info(ZEN3)))


def test_decoder_linear_layers_follow_the_dispatch_and_stay_exact(
    qwen3_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rankgate.backends import decoder

    monkeypatch.setattr(decoder, "cpu_info", lambda: cpu_info(ZEN5))
    onednn = Reranker(str(qwen3_dir), device="cpu")
    monkeypatch.setattr(decoder, "cpu_info", lambda: cpu_info(ZEN3))
    blas = Reranker(str(qwen3_dir), device="cpu")
    assert onednn.backend.onednn and "oneDNN" in (onednn.info().kernels or "")
    assert not blas.backend.onednn
    docs = ["Hold the reset button for ten seconds.", "Bananas are yellow.", "Reset it " * 30]
    pairs = [("how do I reset the router?", d) for d in docs]
    np.testing.assert_allclose(
        onednn.compute_score(pairs, normalize=False),
        blas.compute_score(pairs, normalize=False),
        rtol=1e-5,
        atol=1e-5,
    )


def test_bf16_linears_fall_back_where_onednn_has_no_bf16_kernels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A CPU that claims bf16 (as a faked or misreported cpuinfo may) but whose oneDNN has no
    # bf16 kernels (AVX2 only): the bf16 products run on torch's own kernels, not a crash.
    import torch

    from rankgate.backends import kernels

    monkeypatch.setattr(kernels, "onednn_bf16_available", lambda torch: False)
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 8)
    linears = kernels.Linears(torch, [layer], onednn=True, bf16=True)
    assert not linears.onednn
    x = torch.randn(5, 16)
    with torch.no_grad():
        want = torch.nn.functional.linear(
            x.bfloat16(), layer.weight.bfloat16(), layer.bias.bfloat16()
        )
        assert torch.equal(linears(layer, x), want)
