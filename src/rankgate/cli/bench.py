"""``rankgate bench`` and ``rankgate bench-server``: speed against the peers, in one run.

The logic lives in :mod:`rankgate.bench`; these commands only parse options. Each option is
derived from its field of :class:`~rankgate.bench.settings.BenchSettings` or
:class:`~rankgate.bench.settings.BenchServerSettings` (type, default, bound, help and
``RANKGATE_BENCH_*`` environment variable, declared once there; :mod:`rankgate.cli.options`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from rankgate.bench.core import PEERS, CoreOptions, run_core
from rankgate.bench.llm import LLM_PEERS, LlmOptions, run_llm
from rankgate.bench.server import SERVERS, ServerOptions, run_server_bench
from rankgate.bench.settings import BenchCommonSettings, BenchServerSettings, BenchSettings
from rankgate.cli import common
from rankgate.cli.options import setting_option, settings_from

__all__ = ["bench", "bench_server"]


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


_common = functools.partial(setting_option, BenchCommonSettings)
_bench = functools.partial(setting_option, BenchSettings)
_server = functools.partial(setting_option, BenchServerSettings)


# The options both commands share: one field each, so one help and one variable for both.
ModelDir = Annotated[Path | None, _common("model_dir")]
Tiny = Annotated[bool | None, _common("tiny")]
Short = Annotated[bool | None, _common("short")]
Spread = Annotated[float | None, _common("spread")]
Threads = Annotated[int | None, _common("threads")]
Out = Annotated[Path | None, _common("out")]


def bench(
    docs: Annotated[str | None, _bench("docs")] = None,
    repeats: Annotated[int | None, _bench("repeats")] = None,
    peers: Annotated[str | None, _bench("peers")] = None,
    llm: Annotated[bool | None, _bench("llm")] = None,
    model_dir: ModelDir = None,
    tiny: Tiny = None,
    short: Short = None,
    spread: Spread = None,
    threads: Threads = None,
    device: Annotated[str | None, _bench("device")] = None,
    flag_python: Annotated[Path | None, _bench("flag_python")] = None,
    st_onnx_python: Annotated[Path | None, _bench("st_onnx_python")] = None,
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
        s = settings_from(BenchSettings, locals(), "bench settings")
        if s.llm:
            if s.device != "cpu":
                raise typer.BadParameter(
                    "--llm runs on the CPU only for now", param_hint="--device"
                )
            llm_options = _options(
                LlmOptions,
                **_workload(s),
                docs=_ints(s.docs, "--docs"),
                tokens=60 if s.short else 280,
                repeats=s.repeats,
                peers=_names(s.peers, LLM_PEERS, "--peers") if s.peers else LLM_PEERS,
                **_given(flag_python=s.flag_python),
            )
            run_llm(llm_options)
            return
        options = _options(
            CoreOptions,
            **_workload(s),
            docs=_ints(s.docs, "--docs"),
            short=s.short,
            repeats=s.repeats,
            peers=_names(s.peers, PEERS, "--peers") if s.peers else None,
            device=s.device,
            **_given(flag_python=s.flag_python, st_onnx_python=s.st_onnx_python),
        )
        run_core(options)


def _workload(s: BenchCommonSettings) -> dict[str, object]:
    """The options both benchmarks take as the settings have them."""
    return {
        "model_dir": s.model_dir,
        "tiny": s.tiny,
        "spread": s.spread,
        "threads": s.threads,
        "out": s.out,
    }


def _given(**paths: Path | None) -> dict[str, Path]:
    """The paths given on the command line; the others keep the options' own defaults."""
    return {name: path for name, path in paths.items() if path is not None}


Options = TypeVar("Options")


def _options(kind: type[Options], **given: object) -> Options:
    """The benchmark's options; their ValueError (the one place they are checked) shown as a
    usage error."""
    try:
        return kind(**given)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def bench_server(
    server_docs: Annotated[int | None, _server("server_docs")] = None,
    clients: Annotated[str | None, _server("clients")] = None,
    duration_s: Annotated[float | None, _server("duration_s")] = None,
    max_requests: Annotated[int | None, _server("max_requests")] = None,
    servers: Annotated[str | None, _server("servers")] = None,
    infinity_bin: Annotated[Path | None, _server("infinity_bin")] = None,
    repeat_share: Annotated[float | None, _server("repeat_share")] = None,
    cache_size: Annotated[str | None, _server("cache_size")] = None,
    model_dir: ModelDir = None,
    tiny: Tiny = None,
    short: Short = None,
    spread: Spread = None,
    threads: Threads = None,
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
        s = settings_from(BenchServerSettings, locals(), "bench-server settings")
        options = _options(
            ServerOptions,
            **_workload(s),
            docs=s.server_docs,
            short=s.short,
            clients=_ints(s.clients, "--clients"),
            duration_s=s.duration_s,
            max_requests=s.max_requests,
            servers=_names(s.servers, SERVERS, "--servers"),
            repeat_share=s.repeat_share,
            cache_size=s.cache_size,
            **_given(infinity_bin=s.infinity_bin),
        )
        run_server_bench(options)
