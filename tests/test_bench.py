"""Smoke tests of the benchmarks (rankgate.bench): they run and report; no timing assertions."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from rankgate import Reranker
from rankgate.bench.core import (
    DEFAULT_GPU_PEERS,
    DEFAULT_PEERS,
    CoreOptions,
    default_cpu_peers,
    run_core,
)
from rankgate.bench.llm import LLM_PEERS, LlmOptions
from rankgate.bench.load import check_loopback, run_load
from rankgate.bench.measure import (
    deviation,
    encoder_params,
    machine,
    matmul_peak,
    packed_flops,
    padded_flops,
    padded_tokens,
    peak_label,
    peak_shapes,
    request_flops,
    spearman,
)
from rankgate.bench.models import ensure_model
from rankgate.bench.server import ServerOptions, run_server_bench
from rankgate.bench.workload import (
    DEFAULT_SPREAD,
    NARROW_SPREAD,
    RepeatedRequests,
    make_documents,
)
from rankgate.cli.bench import bench, bench_server
from rankgate.server import ServerSettings, create_app
from rankgate.testing import KeywordBackend
from tests.server.conftest import start_server


@pytest.fixture(scope="module")
def bench_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_model(tmp_path_factory.mktemp("bench") / "tiny-xlmr", tiny=True).path


@pytest.mark.slow
def test_bench_cli_prints_and_saves_every_column(bench_model: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(bench)
    out = tmp_path / "results.json"
    peers = "rankgate,rankgate-padded,rankgate-packed,rankgate-onnx,rankgate-int8,crossencoder,flag"
    args = ["--tiny", "--model-dir", str(bench_model), "--docs", "2,4", "--repeats", "1"]
    args += ["--peers", peers, "--out", str(out), "--flag-python", str(tmp_path / "missing")]
    result = CliRunner().invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    columns = ("×CE", "%peak", "work", "comp %pk", "Δ/spread")
    for text in ("1 query × 2 documents", "1 query × 4 documents", *columns):
        assert text in result.output
    assert "matmul GFLOP/s just before each peer: rankgate " in result.output
    assert "flag skipped: no" in result.output  # a missing reference env is said, not fatal

    report = json.loads(out.read_text())
    assert report["peak_gflops"] > 0 and report["skipped"].keys() == {"flag"}
    assert [w["docs"] for w in report["workloads"]] == [2, 4]
    rows = {r["name"]: r for r in report["workloads"][1]["results"]}
    assert list(rows) == [
        "rankgate",
        "rankgate-padded",
        "rankgate-packed",
        "rankgate-onnx",
        "rankgate-int8",
        "crossencoder",
    ]
    assert rows["rankgate"]["real_share"] == 1.0  # packed: no padded token is computed
    before = report["peak_gflops_before_peer"]
    assert list(before) == peers.split(",") and all(v > 0 for v in before.values())
    # packed rankgate skips most of the last layer; its padded twin computes that and the padding
    assert rows["rankgate-padded"]["computed_gflops"] * rows["rankgate-padded"]["median_s"] > (
        rows["rankgate"]["computed_gflops"] * rows["rankgate"]["median_s"]
    )
    assert "packed" in rows["rankgate"]["batching"]
    assert "padded" in rows["rankgate-padded"]["batching"]
    assert report["deviation"]["rankgate-padded"]["relative"] < 1e-4  # the same function
    assert report["deviation"]["rankgate-packed"]["relative"] < 1e-4
    assert rows["rankgate-packed"]["real_share"] == 1.0
    assert report["device"] == "cpu" and "fp32 peak" in report["peak_kind"]
    assert all("float32" in rows[name]["batching"] for name in ("rankgate", "crossencoder"))
    for row in rows.values():
        assert row["pairs"] == 4 and len(row["seconds"]) == 1 and row["pairs_per_s"] > 0
        assert row["model_gflops"] > 0 and 0 < row["real_share"] <= 1
        assert row["lengths"] == rows["rankgate"]["lengths"]  # the same pairs for every peer
    assert rows["crossencoder"]["x_crossencoder"] == pytest.approx(1.0)
    assert rows["rankgate"]["x_flag"] is None
    # fp32 ONNX reproduces torch; int8 is measured against it, whatever it gives.
    dev = report["deviation"]
    assert dev["rankgate-onnx"]["relative"] < 1e-3 and dev["rankgate-onnx"]["spearman"] > 0.99
    assert dev["rankgate-int8"]["max_abs"] >= 0 and -1 <= dev["rankgate-int8"]["spearman"] <= 1
    assert (bench_model.parent / "tiny-xlmr-onnx" / "model_int8.onnx").is_file()  # cached


@pytest.mark.slow
@pytest.mark.reference
def test_bench_runs_flag_reranker_in_its_own_environment(bench_model: Path, tmp_path: Path) -> None:
    flag_python = Path(__file__).resolve().parents[1] / ".venv-flag" / "bin" / "python"
    if not flag_python.exists():
        if os.environ.get("CI"):
            pytest.fail("the FlagEmbedding environment is missing; run scripts/setup-flag-env.sh")
        pytest.skip("no .venv-flag (scripts/setup-flag-env.sh builds it)")
    out = tmp_path / "results.json"
    options = CoreOptions(
        model_dir=bench_model,
        tiny=True,
        docs=(3,),
        repeats=1,
        peers=("rankgate", "flag"),
        flag_python=flag_python,
        out=out,
    )
    report = run_core(options, Console(file=io.StringIO(), width=200))
    assert not report["skipped"]
    rows = {r["name"]: r for r in report["workloads"][0]["results"]}
    flag = rows["flag"]
    assert flag["x_flag"] == pytest.approx(1.0) and flag["pairs_per_s"] > 0
    assert "OOM probe" in flag["batching"] and "(float32)" in flag["batching"]
    assert flag["lengths"] == rows["rankgate"]["lengths"]  # the same pairs, the same tokens
    # its first batch runs twice (the OOM probe), so it computes every pair of a small request twice
    assert flag["computed_tokens"] == 2 * max(flag["lengths"]) * 3
    twice = [max(flag["lengths"])] * 6
    flops = flag["computed_gflops"] * flag["median_s"] * 1e9
    assert flops == pytest.approx(request_flops(twice, report["model_config"]))
    assert "FlagEmbedding 1.4.2" in report["notes"]["flag"]


def test_bench_device_choice() -> None:
    # The CPU default is DEFAULT_PEERS plus the peers this CPU's kernels make worth timing.
    assert CoreOptions().peer_names == default_cpu_peers()
    assert set(DEFAULT_PEERS) <= set(default_cpu_peers())
    assert "rankgate-padded" not in DEFAULT_PEERS and "rankgate-packed" not in DEFAULT_PEERS
    gpu = CoreOptions(device="cuda:1")
    assert gpu.peer_names == DEFAULT_GPU_PEERS and "rankgate-packed" in gpu.peer_names
    assert CoreOptions(device="cuda", peers=("flag",)).peer_names == ("flag",)
    for bad in ("gpu", "cudaa", "tpu:0"):
        with pytest.raises(ValueError, match="device must be"):
            CoreOptions(device=bad)
    assert "fp16" in peak_label("cuda") and "fp32" in peak_label("cpu")
    assert "gpu" not in machine("cpu")


def test_matmul_peak_includes_the_models_own_products(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"hidden_size": 1024, "intermediate_size": 4096}
    assert peak_shapes("cpu") == ((2048, 2048, 2048),)
    assert peak_shapes("cpu", config) == ((2048,) * 3, (4096, 1024, 4096), (4096, 4096, 1024))
    assert peak_shapes("cuda:0", config)[1:] == ((16384, 1024, 4096), (16384, 4096, 1024))
    assert "4096×1024×4096" in peak_label("cpu", peak_shapes("cpu", config))
    import torch

    seen: list[tuple[int, int, int]] = []
    real = torch.matmul

    def recording(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        seen.append((a.shape[0], a.shape[1], b.shape[1]))
        return real(a, b)

    monkeypatch.setattr(torch, "matmul", recording)
    assert matmul_peak(0.01, [(8, 4, 2), (16, 8, 4)], windows=2) > 0
    # every shape is warmed up once, then timed in each of its windows (at least once a window)
    assert seen.count((8, 4, 2)) >= 3 and seen.count((16, 8, 4)) >= 3
    assert seen.index((16, 8, 4)) > seen.index((8, 4, 2))


def test_bench_on_a_missing_gpu_says_so_before_building_anything(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    app = typer.Typer()
    app.command()(bench)
    args = ["--tiny", "--model-dir", str(tmp_path), "--device"]
    result = CliRunner().invoke(app, [*args, "cuda"])
    assert result.exit_code == 2 and "sees no CUDA device" in result.output
    result = CliRunner().invoke(app, [*args, "gpu"])
    assert result.exit_code == 2 and "cpu, cuda or cuda:N" in result.output
    assert not any(tmp_path.iterdir())


def test_bench_rejects_an_unknown_peer(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(bench)
    result = CliRunner().invoke(app, ["--tiny", "--model-dir", str(tmp_path), "--peers", "nope"])
    assert result.exit_code == 2 and "choose from" in result.output
    assert not any(tmp_path.iterdir())  # nothing was built


def _captured(monkeypatch: pytest.MonkeyPatch, *runners: str) -> list[object]:
    """The options the command hands to its benchmark, which does not run."""
    import importlib

    # rankgate.cli.bench as an attribute is the bench command rankgate.cli re-exports
    cli_bench = importlib.import_module("rankgate.cli.bench")
    seen: list[object] = []
    for name in runners:
        monkeypatch.setattr(cli_bench, name, seen.append)
    return seen


def test_bench_cli_options_and_variables_reach_the_core_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = _captured(monkeypatch, "run_core", "run_llm")
    app = typer.Typer()
    app.command()(bench)
    env = {"RANKGATE_BENCH_DOCS": "3,5", "RANKGATE_BENCH_REPEATS": "4", "RANKGATE_BENCH_SHORT": "1"}
    args = ["--tiny", "--model-dir", str(tmp_path), "--peers", "rankgate, flag", "--repeats", "1"]
    result = CliRunner().invoke(app, [*args, "--threads", "3"], env=env)
    assert result.exit_code == 0, result.output
    (core,) = seen
    assert isinstance(core, CoreOptions)
    assert (core.docs, core.repeats, core.threads) == ((3, 5), 1, 3)  # the flag beats the variable
    assert core.tiny and core.short and core.model_dir == tmp_path and core.device == "cpu"
    assert core.peers == ("rankgate", "flag") and core.spread == DEFAULT_SPREAD
    assert core.flag_python.name == "python" and core.out is None  # not given: the options' own

    seen.clear()
    env = {"RANKGATE_BENCH_LLM": "true", "RANKGATE_BENCH_FLAG_PYTHON": str(tmp_path / "py")}
    result = CliRunner().invoke(app, ["--docs", "2", "--spread", "0.15"], env=env)
    assert result.exit_code == 0, result.output
    (llm,) = seen
    assert isinstance(llm, LlmOptions)
    assert (llm.docs, llm.tokens, llm.spread, llm.repeats) == ((2,), 280, 0.15, 2)
    assert llm.peers == LLM_PEERS and llm.flag_python == tmp_path / "py"


def test_bench_server_cli_options_and_variables_reach_the_server_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = _captured(monkeypatch, "run_server_bench")
    app = typer.Typer()
    app.command()(bench_server)
    env = {
        "RANKGATE_BENCH_SERVER_DOCS": "5",
        "RANKGATE_BENCH_DURATION_S": "2.5",
        "RANKGATE_BENCH_CLIENTS": "1,4",
        "RANKGATE_BENCH_DOCS": "99",  # bench's variable, not bench-server's
    }
    args = ["--tiny", "--servers", "rankgate", "--infinity-bin", str(tmp_path / "infinity")]
    args += ["--repeat-share", "0.5", "--cache-size", "1MiB", "--max-requests", "7"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    (options,) = seen
    assert isinstance(options, ServerOptions)
    assert (options.docs, options.duration_s, options.clients) == (5, 2.5, (1, 4))
    assert options.servers == ("rankgate",) and options.infinity_bin == tmp_path / "infinity"
    assert (options.repeat_share, options.cache_size, options.max_requests) == (0.5, "1MiB", 7)
    assert options.tiny and options.threads == 2 and options.spread == DEFAULT_SPREAD

    seen.clear()
    result = CliRunner().invoke(app, ["--docs", "6", "--duration", "1"], env=env)
    assert result.exit_code == 0, result.output
    (options,) = seen
    assert isinstance(options, ServerOptions)
    assert (options.docs, options.duration_s) == (6, 1.0)  # the flags beat the variables
    assert options.infinity_bin.name == "infinity_emb" and options.servers == (
        "rankgate",
        "infinity",
    )


def test_load_generator_against_a_live_server() -> None:
    reranker = Reranker(backend=KeywordBackend(delay=0.001))
    live = start_server(create_app(ServerSettings(), reranker))
    try:
        docs = ["reset the router password", "winter battery range", "hold the reset button"]
        for clients in (1, 4):
            result = run_load(
                f"{live.url}/rerank",
                lambda i: {"query": f"router reset {i}", "documents": docs},
                clients=clients,
                pairs_per_request=len(docs),
                duration_s=1.0,
                max_requests=200,
            )
            assert result.errors == 0 and 0 < result.requests <= 200
            summary = result.summary()
            assert summary["pairs_per_s"] == pytest.approx(3 * summary["requests_per_s"])
            assert 0 < summary["p50_s"] <= summary["p99_s"] < 1.0 + summary["elapsed_s"]
        bad = run_load(
            f"{live.url}/rerank",
            lambda i: {"query": "", "documents": docs},  # an empty query is refused
            clients=1,
            pairs_per_request=3,
            duration_s=5.0,
            max_requests=3,
        )
        assert (bad.requests, bad.errors) == (0, 3) and bad.error_samples[0].startswith("HTTP 4")
    finally:
        live.stop()


@pytest.mark.slow
def test_server_bench_drives_rankgate_serve(bench_model: Path, tmp_path: Path) -> None:
    options = ServerOptions(
        model_dir=bench_model,
        tiny=True,
        docs=3,
        clients=(1, 2),
        duration_s=0.5,
        max_requests=10,
        servers=("rankgate", "infinity"),
        infinity_bin=tmp_path / "no-infinity",  # a missing peer is skipped and said so
        library_repeats=1,
        out=tmp_path / "server.json",
    )
    console = Console(file=io.StringIO(), width=200)
    report = run_server_bench(options, console)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert "infinity skipped: no" in output and "% of library" in output
    assert report == json.loads((tmp_path / "server.json").read_text())
    assert report["library_pairs_per_s"] > 0
    ours = report["servers"]["rankgate"]
    assert ours["skipped"] is None and "serve" in ours["command"]
    assert [lv["clients"] for lv in ours["levels"]] == [1, 2]
    for level in ours["levels"]:
        assert level["errors"] == 0 and 1 <= level["requests"] <= 10 and level["p99_s"] > 0
    assert report["servers"]["infinity"]["levels"] == []


@pytest.mark.slow
def test_server_bench_runs_rankgate_with_the_cache_off_and_on(
    bench_model: Path, tmp_path: Path
) -> None:
    options = ServerOptions(
        model_dir=bench_model,
        tiny=True,
        docs=3,
        clients=(1, 4),
        duration_s=0.5,
        max_requests=24,
        servers=("rankgate",),
        library_repeats=1,
        repeat_share=0.5,
        cache_size="1MiB",
        out=tmp_path / "server.json",
    )
    console = Console(file=io.StringIO(), width=200)
    report = run_server_bench(options, console)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Score cache off and on: 50% of requests repeat an earlier one" in output
    assert "hit rate" in output and "of documents from the cache" in output
    off, on = report["servers"]["rankgate"], report["servers"]["rankgate+cache"]
    assert "--cache-size" in on["command"] and "--cache-size" not in off["command"]
    assert [lv["clients"] for lv in on["levels"]] == [lv["clients"] for lv in off["levels"]]
    for level in on["levels"]:
        assert level["errors"] == 0 and 0 < level["hit_rate"] < 1  # repeats hit, new ones miss
    assert all("hit_rate" not in level for level in off["levels"])


def test_repeated_requests_repeat_earlier_ones_at_their_share() -> None:
    pool = tuple(f"document {i}" for i in range(10))
    work = RepeatedRequests("q", pool, docs=3, share=0.4)
    bodies = [work.body(1, i) for i in range(2000)]
    again = RepeatedRequests("q", pool, docs=3, share=0.4)
    assert bodies == [again.body(1, i) for i in range(2000)]  # the same on every run
    seen: set[str] = set()
    repeats = 0
    for body in bodies:
        repeats += body["query"] in seen
        seen.add(str(body["query"]))
    assert 0.35 < repeats / len(bodies) < 0.45
    assert work.body(2, 0) != work.body(1, 0)  # each load level has its own requests
    assert RepeatedRequests("q", pool, docs=3, share=0.0).origin(1, 7) == 7
    with pytest.raises(ValueError, match="repeat share"):
        ServerOptions(repeat_share=1.0)
    with pytest.raises(ValueError, match="not a size"):
        ServerOptions(repeat_share=0.5, cache_size="lots")
    assert ServerOptions(repeat_share=0.5).runs == ("rankgate", "rankgate+cache", "infinity")
    assert ServerOptions().runs == ("rankgate", "infinity")


@pytest.mark.parametrize("url", ["http://10.0.0.5:8080/rerank", "http://example.com/rerank"])
def test_load_generator_only_targets_this_machine(url: str) -> None:
    with pytest.raises(ValueError, match="only sent to this machine"):
        check_loopback(url)
    for ok in ("http://127.0.0.1:1/x", "http://localhost:1/x", "http://[::1]:1/x"):
        check_loopback(ok)


def test_drift_between_peers_is_flagged() -> None:
    from rankgate.bench.core import _drift_line

    assert "moved" not in _drift_line({"rankgate": 100.0, "crossencoder": 109.0})
    assert "moved by more than 10%" in _drift_line({"rankgate": 100.0, "crossencoder": 111.0})


def test_yardsticks() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    d = deviation([0.0, 2.0, 4.2], [0.0, 2.0, 4.0])
    assert (d.max_abs, d.relative, d.spearman) == pytest.approx((0.2, 0.05, 1.0))
    assert padded_tokens([3, 5, 2], [[1, 0], [2]]) == 2 * 5 + 2
    cfg = {"hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 2}
    assert request_flops([10, 10], cfg) == 2 * request_flops([10], cfg) > 0
    # padded: every pair of a batch at the batch's longest length; a repeated batch counts twice
    assert padded_flops([3, 5, 2], [[1, 0], [2]], cfg) == request_flops([5, 5, 2], cfg)
    assert padded_flops([3, 5], [[0], [0, 1]], cfg) == request_flops([3, 5, 5], cfg)
    # packed: real tokens; in the last layer keys and values for all, the rest for the first token
    one = {**cfg, "num_hidden_layers": 1}
    h, kv = 4, 2 * (4 * 4 + 4)
    rest = encoder_params(one) - kv
    assert packed_flops([6], one) == 2 * kv * 6 + 2 * rest + 4 * 6 * h
    assert packed_flops([6, 3], cfg) == pytest.approx(
        request_flops([6, 3], one) + packed_flops([6], one) + packed_flops([3], one)
    )
    assert packed_flops([6, 3], cfg) < request_flops([6, 3], cfg)
    docs = make_documents(3, 30, lambda t: len(t.split()))
    assert docs == make_documents(3, 30, lambda t: len(t.split()))  # deterministic
    assert make_documents(2, 30, lambda t: len(t.split())) == docs[:2]  # sizes share a prefix
    with pytest.raises(ValueError):
        ServerOptions(servers=("rankgate", "tei"))


def test_spread_draws_document_lengths_around_the_target() -> None:
    words = lambda t: len(t.split())  # noqa: E731
    narrow = [words(d) for d in make_documents(40, 100, words, spread=NARROW_SPREAD)]
    mixed = [words(d) for d in make_documents(40, 100, words)]
    assert mixed == [words(d) for d in make_documents(40, 100, words, spread=DEFAULT_SPREAD)]
    assert min(narrow) >= 85 and max(narrow) <= 115
    assert 30 <= min(mixed) < 60 and 140 < max(mixed) <= 170  # short and long side by side
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="spread"):
            ServerOptions(spread=bad)


def test_llm_bench_runs_its_peers_side_by_side(tmp_path: Path) -> None:
    """rankgate bench --llm on the tiny Qwen3 model: every peer timed, ratios and work printed."""
    from typer.testing import CliRunner

    app = typer.Typer()
    app.command()(bench)
    out = tmp_path / "llm.json"
    peers = "rankgate,rankgate-padded,rankgate-whole,crossencoder"
    args = ["--llm", "--tiny", "--docs", "2,3", "--repeats", "1", "--peers", peers]
    args += ["--model-dir", str(tmp_path / "qwen3-tiny"), "--out", str(out)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for peer in peers.split(","):
        assert peer in result.output
    assert "1 query × 3 documents" in result.output and "useful GF/s" in result.output
    report = json.loads(out.read_text())
    assert [w["docs"] for w in report["workloads"]] == [2, 3]
    by_peer = {r["peer"]: r for r in report["workloads"][1]["results"]}
    assert set(by_peer) == set(peers.split(","))
    # the shared prefix once: rankgate computes fewer tokens than its pairs hold, and than the
    # peers that pad or repeat the prefix
    rankgate = by_peer["rankgate"]
    assert rankgate["computed_tokens"] == rankgate["useful_tokens"] < rankgate["pair_tokens"]
    for other in ("rankgate-padded", "rankgate-whole", "crossencoder"):
        assert by_peer[other]["computed_gflop"] > rankgate["computed_gflop"], other


def test_llm_bench_rejects_an_encoder_peer(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    app = typer.Typer()
    app.command()(bench)
    result = CliRunner().invoke(app, ["--llm", "--tiny", "--peers", "flag"])
    assert result.exit_code == 2
    assert "flag-llm" in result.output


def test_the_bench_quiets_library_logs_only_while_it_runs() -> None:
    """run_core silences rankgate's and transformers' notices for its report; a caller in the
    same process (a test asserting on a warning) gets them back afterwards."""
    import logging

    from transformers.utils import logging as hf_logging

    from rankgate.bench.core import _quiet

    rankgate_log = logging.getLogger("rankgate")
    before = (rankgate_log.level, hf_logging.get_verbosity())
    with _quiet():
        assert rankgate_log.getEffectiveLevel() == logging.ERROR
    assert (rankgate_log.level, hf_logging.get_verbosity()) == before
