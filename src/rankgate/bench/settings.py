"""The settings of ``rankgate bench`` and ``rankgate bench-server`` (``RANKGATE_BENCH_*``).

The commands' options and the tables in benchmarks/README.md are derived from these fields
(:mod:`rankgate.cli.options`). They are what a user types: lists stay the comma-separated text
given (the command checks and splits them), and the commands turn the settings into the
benchmarks' own options, :class:`~rankgate.bench.core.CoreOptions`,
:class:`~rankgate.bench.llm.LlmOptions` and :class:`~rankgate.bench.server.ServerOptions`, which
stay the library's way to run them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from rankgate.bench.core import DEFAULT_GPU_PEERS, DEFAULT_PEERS, PEERS
from rankgate.bench.llm import LLM_PEERS
from rankgate.bench.server import SERVERS
from rankgate.bench.workload import DEFAULT_SPREAD

__all__ = ["BenchCommonSettings", "BenchServerSettings", "BenchSettings"]


class BenchCommonSettings(BaseSettings):
    """The model and workload settings both benchmarks share (prefix ``RANKGATE_BENCH_``)."""

    model_config = SettingsConfigDict(env_prefix="RANKGATE_BENCH_", extra="forbid", frozen=True)

    model_dir: Path | None = Field(
        None,
        description="Where the random model is built or reused.",
        json_schema_extra={
            "default_text": "benchmarks/.models/bge-m3-arch (tiny-xlmr with --tiny; with --llm "
            "qwen3-reranker-0.6b-arch, qwen3-tiny) in the rankgate repo, else "
            "~/.cache/rankgate/bench/"
        },
    )
    tiny: bool = Field(
        False,
        description="A 2-layer model instead of bge-reranker-v2-m3's architecture (smoke run).",
    )
    short: bool = Field(False, description="~60-token documents instead of ~280.")
    spread: float = Field(
        DEFAULT_SPREAD,
        ge=0,
        description="Document lengths drawn uniformly within target × (1 ± spread). The default "
        "(84-476 tokens) mixes short and long documents as a real first stage returns them; "
        "0.15 keeps them nearly alike.",
    )
    threads: int = Field(2, ge=1, description="CPU threads for every peer (and server).")
    out: Path | None = Field(None, description="Also write the results as JSON here.")


class BenchSettings(BenchCommonSettings):
    """``rankgate bench``: the library against its peers (also ``--llm``)."""

    docs: str = Field("10,50", description="Documents per request, comma-separated.")
    repeats: int = Field(2, ge=1, description="Timed calls per peer and size (after 1 warm-up).")
    peers: str | None = Field(
        None,
        description=f"Comma-separated, from {','.join(PEERS)}; with --llm, from "
        f"{','.join(LLM_PEERS)}.",
        json_schema_extra={
            "default_text": f"{','.join(DEFAULT_PEERS)} on the CPU (plus rankgate-bf16-mixed "
            "and rankgate-bf16 on CPUs with bf16 hardware, and rankgate-blas where oneDNN is "
            f"the fp32 pick), {','.join(DEFAULT_GPU_PEERS)} on a GPU; with --llm, all of its "
            "peers"
        },
    )
    llm: bool = Field(
        False,
        description="Decoder (LLM) rerankers: Qwen3-Reranker-0.6B's architecture, rankgate "
        "against CrossEncoder and FlagLLMReranker (CPU, fp32).",
    )
    device: str = Field(
        "cpu",
        description="cpu (every peer in fp32, against the fp32 matmul peak) or cuda / cuda:N "
        "(every peer in fp16 on the GPU, against its fp16 matmul peak).",
    )
    flag_python: Path | None = Field(
        None,
        description="Python of FlagEmbedding's environment (scripts/setup-flag-env.sh).",
        json_schema_extra={"default_text": "the repo's .venv-flag"},
    )
    st_onnx_python: Path | None = Field(
        None,
        description="For crossencoder-onnx when this environment lacks optimum-onnx: a Python "
        "with sentence-transformers and optimum-onnx (scripts/setup-st-onnx-env.sh).",
        json_schema_extra={"default_text": "the repo's .venv-st-onnx"},
    )


class BenchServerSettings(BenchCommonSettings):
    """``rankgate bench-server``: HTTP load against the servers."""

    server_docs: int = Field(
        8,
        ge=1,
        description="Documents per request.",
        json_schema_extra={"flags": ["--docs"]},
    )
    clients: str = Field("1,8,32", description="Concurrent clients per level, comma-separated.")
    duration_s: float = Field(
        60.0,
        ge=0.1,
        description="Seconds of load per level; in-flight requests then finish.",
        json_schema_extra={"flags": ["--duration"]},
    )
    max_requests: int | None = Field(
        None,
        ge=1,
        description="Most requests per level.",
        json_schema_extra={"default_text": "no limit"},
    )
    servers: str = Field(
        ",".join(SERVERS), description=f"Comma-separated, from {','.join(SERVERS)}."
    )
    infinity_bin: Path | None = Field(
        None,
        description="infinity_emb of scripts/setup-infinity-env.sh's environment.",
        json_schema_extra={"default_text": "the repo's .venv-infinity"},
    )
    repeat_share: float = Field(
        0.0,
        ge=0,
        description="Share of requests that repeat an earlier one (0 to below 1). Above 0, "
        "rankgate runs twice, with its score cache off and on, and the table shows both with "
        "the hit rate.",
    )
    cache_size: str = Field(
        "256MiB", description="--cache-size of the cached rankgate (with --repeat-share)."
    )
