"""``rankgate bench`` and ``rankgate bench-server``: speed against the peers, in one run.

The logic lives in :mod:`rankgate.bench`; these commands only parse options. Every option is also
a ``RANKGATE_BENCH_*`` environment variable.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from rankgate.bench.core import DEFAULT_GPU_PEERS, DEFAULT_PEERS, PEERS, CoreOptions, run_core
from rankgate.bench.llm import LLM_PEERS, LlmOptions, run_llm
from rankgate.bench.server import SERVERS, ServerOptions, run_server_bench
from rankgate.bench.workload import DEFAULT_SPREAD
from rankgate.cli import common

__all__ = ["bench", "bench_server"]


def _opt(env: str, help: str, *names: str, min: float | None = None) -> typer.models.OptionInfo:
    return typer.Option(*names, envvar=f"RANKGATE_BENCH_{env}", help=help, min=min)


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise typer.BadParameter(f"{what} must be comma-separated integers, not {text!r}") from None
    if not values or min(values) < 1:
        raise typer.BadParameter(f"{what} must be positive integers")
    return values


def _names(text: str, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise typer.BadParameter(f"{what}: choose from {', '.join(known)}; got {text!r}")
    return names


ModelDir = Annotated[
    Path | None,
    _opt(
        "MODEL_DIR",
        "Where the random model is built or reused. Default: benchmarks/.models/bge-m3-arch "
        "(tiny-xlmr with --tiny; with --llm qwen3-reranker-0.6b-arch, qwen3-tiny) in the "
        "rankgate repo, else ~/.cache/rankgate/bench/.",
    ),
]
Tiny = Annotated[
    bool, _opt("TINY", "A 2-layer model instead of bge-reranker-v2-m3's architecture (smoke run).")
]
Short = Annotated[bool, _opt("SHORT", "~60-token documents instead of ~280.")]
Spread = Annotated[
    float,
    _opt(
        "SPREAD",
        "Document lengths drawn uniformly within target × (1 ± spread). The default, 0.7 "
        "(84-476 tokens), mixes short and long documents as a real first stage returns them; "
        "0.15 keeps them nearly alike.",
        min=0,
    ),
]
Threads = Annotated[int, _opt("THREADS", "CPU threads for every peer (and server).", min=1)]
Out = Annotated[Path | None, _opt("OUT", "Also write the results as JSON here.")]


def bench(
    docs: Annotated[str, _opt("DOCS", "Documents per request, comma-separated.")] = "10,50",
    repeats: Annotated[
        int, _opt("REPEATS", "Timed calls per peer and size (after 1 warm-up).", min=1)
    ] = 2,
    peers: Annotated[
        str | None,
        _opt(
            "PEERS",
            f"Comma-separated, from {','.join(PEERS)}. Default: {','.join(DEFAULT_PEERS)} on the "
            "CPU (plus rankgate-bf16-mixed and rankgate-bf16 on CPUs with bf16 hardware, and "
            "rankgate-blas where oneDNN is the fp32 pick), "
            f"{','.join(DEFAULT_GPU_PEERS)} on a GPU. With --llm, from (and by default) "
            f"{','.join(LLM_PEERS)}.",
        ),
    ] = None,
    llm: Annotated[
        bool,
        _opt(
            "LLM",
            "Decoder (LLM) rerankers: Qwen3-Reranker-0.6B's architecture, rankgate against "
            "CrossEncoder and FlagLLMReranker (CPU, fp32).",
        ),
    ] = False,
    model_dir: ModelDir = None,
    tiny: Tiny = False,
    short: Short = False,
    spread: Spread = DEFAULT_SPREAD,
    threads: Threads = 2,
    device: Annotated[
        str,
        _opt(
            "DEVICE",
            "cpu (every peer in fp32, against the fp32 matmul peak) or cuda / cuda:N (every peer "
            "in fp16 on the GPU, against its fp16 matmul peak).",
        ),
    ] = "cpu",
    flag_python: Annotated[
        Path | None,
        _opt(
            "FLAG_PYTHON",
            "Python of FlagEmbedding's environment (scripts/setup-flag-env.sh). "
            "Default: the repo's .venv-flag.",
        ),
    ] = None,
    st_onnx_python: Annotated[
        Path | None,
        _opt(
            "ST_ONNX_PYTHON",
            "For crossencoder-onnx when this environment lacks optimum-onnx: a Python with "
            "sentence-transformers and optimum-onnx (scripts/setup-st-onnx-env.sh). Default: the "
            "repo's .venv-st-onnx.",
        ),
    ] = None,
    out: Out = None,
) -> None:
    """Benchmark rankgate (torch, ONNX, int8) against sentence-transformers CrossEncoder (torch,
    ONNX) and FlagEmbedding FlagReranker on the same local random model: pairs/s, seconds per
    request, ratios, model GFLOP/s against a matmul peak, and int8's score deviation.

    Example: rankgate bench --tiny --peers rankgate,crossencoder --repeats 1

    With --llm: rankgate's decoder path (packed, padded, every pair whole) against CrossEncoder
    and FlagLLMReranker, with the FLOPs each computes. Example: rankgate bench --llm --docs 10
    """
    common.quiet_libraries()
    with common.exits_on_error():
        if llm:
            if device != "cpu":
                raise typer.BadParameter(
                    "--llm runs on the CPU only for now", param_hint="--device"
                )
            try:
                llm_options = LlmOptions(
                    model_dir=model_dir,
                    tiny=tiny,
                    docs=_ints(docs, "--docs"),
                    tokens=60 if short else 280,
                    spread=spread,
                    repeats=repeats,
                    peers=_names(peers, LLM_PEERS, "--peers") if peers else LLM_PEERS,
                    threads=threads,
                    out=out,
                    **_given(flag_python=flag_python),  # type: ignore[arg-type]
                )
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
            run_llm(llm_options)
            return
        options = _core_options(
            model_dir=model_dir,
            tiny=tiny,
            docs=_ints(docs, "--docs"),
            short=short,
            spread=spread,
            repeats=repeats,
            peers=_names(peers, PEERS, "--peers") if peers else None,
            threads=threads,
            device=device,
            out=out,
            **_given(flag_python=flag_python, st_onnx_python=st_onnx_python),
        )
        run_core(options)


def _given(**paths: Path | None) -> dict[str, Path]:
    """The paths given on the command line; the others keep the options' own defaults."""
    return {name: path for name, path in paths.items() if path is not None}


def _core_options(**given: object) -> CoreOptions:
    """CoreOptions, its ValueError (the one place options are checked) shown as a usage error."""
    try:
        return CoreOptions(**given)  # type: ignore[arg-type]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def bench_server(
    docs: Annotated[int, _opt("SERVER_DOCS", "Documents per request.", min=1)] = 8,
    clients: Annotated[
        str, _opt("CLIENTS", "Concurrent clients per level, comma-separated.")
    ] = "1,8,32",
    duration: Annotated[
        float,
        _opt("DURATION_S", "Seconds of load per level; in-flight requests then finish.", min=0.1),
    ] = 60.0,
    max_requests: Annotated[
        int | None, _opt("MAX_REQUESTS", "Most requests per level. Default: no limit.", min=1)
    ] = None,
    servers: Annotated[
        str, _opt("SERVERS", f"Comma-separated, from {','.join(SERVERS)}.")
    ] = ",".join(SERVERS),
    infinity_bin: Annotated[
        Path | None,
        _opt(
            "INFINITY_BIN",
            "infinity_emb of scripts/setup-infinity-env.sh's environment. "
            "Default: the repo's .venv-infinity.",
        ),
    ] = None,
    repeat_share: Annotated[
        float,
        _opt(
            "REPEAT_SHARE",
            "Share of requests that repeat an earlier one (0 to below 1). Above 0, rankgate runs "
            "twice, with its score cache off and on, and the table shows both with the hit rate.",
            min=0,
        ),
    ] = 0.0,
    cache_size: Annotated[
        str, _opt("CACHE_SIZE", "--cache-size of the cached rankgate (with --repeat-share).")
    ] = "256MiB",
    model_dir: ModelDir = None,
    tiny: Tiny = False,
    short: Short = False,
    spread: Spread = DEFAULT_SPREAD,
    threads: Threads = 2,
    out: Out = None,
) -> None:
    """Load-test `rankgate serve` against infinity-emb on the same local model, one server at a
    time on 127.0.0.1: requests/s, pairs/s, p50 and p99 latency per concurrency level, and the
    server's pairs/s against the library's on the same requests. With --repeat-share, rankgate
    also runs with its score cache on, side by side with it off.

    Example: rankgate bench-server --tiny --duration 5 --repeat-share 0.5
    """
    common.quiet_libraries()
    with common.exits_on_error():
        options = _server_options(
            model_dir=model_dir,
            tiny=tiny,
            docs=docs,
            short=short,
            spread=spread,
            clients=_ints(clients, "--clients"),
            duration_s=duration,
            max_requests=max_requests,
            threads=threads,
            servers=_names(servers, SERVERS, "--servers"),
            repeat_share=repeat_share,
            cache_size=cache_size,
            out=out,
        )
        if infinity_bin is not None:  # else the options' own default, the repo's .venv-infinity
            options = dataclasses.replace(options, infinity_bin=infinity_bin)
        run_server_bench(options)


def _server_options(**given: object) -> ServerOptions:
    """ServerOptions, its ValueError shown as a usage error."""
    try:
        return ServerOptions(**given)  # type: ignore[arg-type]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
