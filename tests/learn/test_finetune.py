"""Fine-tuning: it learns, it trains on inference's pairs, it resumes after a kill, and its output
loads unchanged in sentence-transformers and FlagEmbedding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rankgate import Reranker
from rankgate.errors import ConfigError, ModelLoadError, TrainingDataError
from rankgate.learn import (
    FINETUNE_FILE,
    TrainingRow,
    finetune,
    finetune_options,
    read_rows,
    write_rows,
)
from rankgate.learn.finetune import _encode
from tests.samples import DOCUMENTS, QUERY

ROOT = Path(__file__).resolve().parents[2]


def _rows(n: int = 6) -> list[TrainingRow]:
    k = len(DOCUMENTS)
    return [
        TrainingRow(QUERY, (DOCUMENTS[i % k],), tuple(DOCUMENTS[(i + j) % k] for j in (1, 2, 3)))
        for i in range(n)
    ]


def _quick(**overrides: object):
    defaults = {"max_steps": 3, "batch_size": 2, "group_size": 3, "progress": False}
    return finetune_options(**{**defaults, **overrides})


def test_training_pairs_are_the_pairs_inference_scores(tiny_model: Path) -> None:
    reranker = Reranker(str(tiny_model), max_length=48)
    long_query = " ".join(["router admin password reset"] * 12)
    rows = [
        TrainingRow(QUERY, (DOCUMENTS[6] * 4,), (DOCUMENTS[0], DOCUMENTS[1])),
        TrainingRow(long_query, ("short",), (DOCUMENTS[2] * 3,)),
    ]
    encoded, truncated, total = _encode(reranker, rows)
    assert total == 5 and truncated >= 3
    for row, (pos, neg) in zip(rows, encoded, strict=True):
        prepared = reranker.prepare(row.query, [*row.pos, *row.neg], long_documents="truncate")
        assert [*pos, *neg] == [plan.pairs[0] for plan in prepared.plans]
        assert all(len(pair) <= 48 for pair in [*pos, *neg])


def test_output_is_a_plain_checkpoint_sentence_transformers_loads_with_equal_scores(
    tiny_model: Path, tmp_path: Path
) -> None:
    import torch
    from sentence_transformers import CrossEncoder

    out = tmp_path / "tuned"
    result = finetune(str(tiny_model), _rows(), out, options=_quick(learning_rate=1e-2))
    assert result.steps == 3 and result.resumed_from is None
    assert {"config.json", "model.safetensors", "tokenizer.json", FINETUNE_FILE} <= {
        p.name for p in out.iterdir()
    }
    record = json.loads((out / FINETUNE_FILE).read_text())
    assert record["base_model"] == str(tiny_model) and record["steps"] == 3
    pairs = [(QUERY, d) for d in DOCUMENTS]
    base = Reranker(str(tiny_model)).compute_score(pairs)
    ours = Reranker(str(out), max_length=512).compute_score(pairs)
    assert ours != pytest.approx(base, abs=1e-3)  # the weights moved
    cross_encoder = CrossEncoder(str(out), device="cpu", max_length=512)
    theirs = cross_encoder.predict(pairs, activation_fn=torch.nn.Identity())
    assert ours == pytest.approx(theirs.tolist(), abs=1e-5)


@pytest.mark.reference
def test_output_loads_in_flagembedding_with_equal_scores(tiny_model: Path, tmp_path: Path) -> None:
    from tests.test_reference import flag_scores

    out = tmp_path / "tuned"
    finetune(str(tiny_model), _rows(), out, options=_quick(learning_rate=1e-2, loss="bce"))
    pairs = [(QUERY, d) for d in DOCUMENTS]
    ours = Reranker(str(out), max_length=512).compute_score(pairs)
    assert flag_scores(out, pairs, 512) == pytest.approx(ours, abs=1e-5)


def test_a_base_encoder_gets_a_new_one_logit_head(tiny_model: Path, tmp_path: Path) -> None:
    from transformers import AutoModel

    base = tmp_path / "encoder"
    AutoModel.from_pretrained(str(tiny_model)).save_pretrained(str(base))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_model / name).exists():
            (base / name).write_bytes((tiny_model / name).read_bytes())
    with pytest.raises(ModelLoadError, match="without a reranking head"):
        Reranker(str(base))  # not a reranker as it is: rankgate will not score with a random head
    out = tmp_path / "tuned"
    finetune(str(base), _rows(), out, options=_quick())
    assert (out / "start" / "config.json").is_file()
    assert Reranker(str(out)).compute_score([(QUERY, DOCUMENTS[0])])


def test_distillation_needs_teacher_scores_and_learns_them(
    tiny_model: Path, tmp_path: Path
) -> None:
    with pytest.raises(TrainingDataError, match="teacher scores"):
        finetune(str(tiny_model), _rows(), tmp_path / "x", options=_quick(loss="distill"))
    # The teacher prefers one document over all others; distillation makes the student agree.
    favourite = DOCUMENTS[3]

    def teacher(doc: str) -> float:
        return 8.0 if doc == favourite else 0.0

    rows = [
        TrainingRow(r.query, r.pos, r.neg, tuple(map(teacher, r.pos)), tuple(map(teacher, r.neg)))
        for r in _rows(7)
    ]
    out = tmp_path / "distilled"
    before = Reranker(str(tiny_model)).compute_score([(QUERY, d) for d in DOCUMENTS])
    assert before.index(max(before)) != 3  # the student does not agree yet
    finetune(
        str(tiny_model),
        rows,
        out,
        options=_quick(loss="distill", max_steps=40, learning_rate=5e-3, group_size=4),
    )
    scores = Reranker(str(out)).compute_score([(QUERY, d) for d in DOCUMENTS])
    assert scores.index(max(scores)) == 3


def test_rows_without_negatives_fail_with_the_way_to_mine_them(
    tiny_model: Path, tmp_path: Path
) -> None:
    rows = [TrainingRow(QUERY, (DOCUMENTS[0],), line=3, where="train.jsonl")]
    with pytest.raises(TrainingDataError, match=r"train.jsonl:3: no negatives.*--index-dir"):
        finetune(str(tiny_model), rows, tmp_path / "x", options=_quick())


def test_decoder_rerankers_are_refused_with_the_reason(qwen3_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="decoder"):
        finetune(str(qwen3_dir), _rows(), tmp_path / "x", options=_quick())


def test_invalid_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="group_size"):
        finetune_options(group_size=1)
    with pytest.raises(ConfigError, match="loss"):
        finetune_options(loss="hinge")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rankgate", "finetune", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint_to_the_same_model(
    tiny_model: Path, tmp_path: Path
) -> None:
    train = write_rows(_rows(8), tmp_path / "train.jsonl")
    common = [
        str(tiny_model), "--train", str(train), "--max-steps", "40", "--save-steps", "10",
        "--save-total-limit", "3", "--batch-size", "2", "--group-size", "3",
        "--learning-rate", "1e-3", "--no-progress", "--json",
    ]  # fmt: skip
    killed_out = tmp_path / "killed"
    proc = _cli(*common, "--out", str(killed_out))
    state = killed_out / "checkpoints" / "checkpoint-20" / "trainer_state.json"
    deadline = time.monotonic() + 120
    while not state.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed_out / "model.safetensors").exists()  # it really died mid-run

    resumed = _cli(*common, "--out", str(killed_out))
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr[-2000:]
    summary = json.loads(stdout)
    step = int(Path(summary["resumed_from"]).name.removeprefix("checkpoint-"))
    assert 20 <= step < 40 and summary["steps"] == 40

    whole = _cli(*common, "--out", str(tmp_path / "whole"))
    stdout, stderr = whole.communicate(timeout=300)
    assert whole.returncode == 0, stderr[-2000:]
    pairs = [(QUERY, d) for d in DOCUMENTS]
    again = Reranker(str(killed_out)).compute_score(pairs)
    straight = Reranker(str(tmp_path / "whole")).compute_score(pairs)
    assert again == pytest.approx(straight, abs=1e-4)


def test_cli_bad_training_file_exits_2_with_the_line(tiny_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pos": ["p"], "neg": ["n"]}\n{"query": "q"}\n')
    proc = _cli(str(tiny_model), "--train", str(bad), "--out", str(tmp_path / "o"))
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert f"{bad}:2" in stderr and "Traceback" not in stderr


@pytest.mark.slow
def test_fine_tuning_learns_a_task_from_chance_to_nearly_perfect(tmp_path: Path) -> None:
    """Relevant = the document names the query's rare keyword; the negatives share the query's
    other words. A random 2-layer model ranks at chance; after 1200 steps (about 40 s on 2 CPU
    cores) it ranks the held-out queries' positives first among 20 candidates. At learning rate
    1e-3 the end of training depended on the CPU's summation order (nDCG@10 1.0 on one AMD
    EPYC, 0.72 on another); at 3e-4 seeds 1-3 all ended at 0.99-1.0 on both."""
    from rankgate.learn import parse_records
    from rankgate.testing import build_model, keyword_task, keyword_vocabulary

    base = build_model(
        tmp_path / "base",
        hidden=128,
        heads=4,
        intermediate=256,
        max_positions=130,
        dropout=0.0,
        seed=1,
        tokenizer_texts=keyword_vocabulary(),
    )
    train = parse_records(enumerate(keyword_task(2000, filler=2, seed=1), 1), "train")
    dev = parse_records(enumerate(keyword_task(60, negatives=19, filler=2, seed=2), 1), "dev")
    options = finetune_options(
        max_steps=1200, batch_size=8, learning_rate=3e-4, seed=1, progress=False, save_steps=600
    )
    result = finetune(str(base), train, tmp_path / "tuned", options=options, dev=dev)
    assert result.before is not None and result.after is not None
    assert result.before.measures["nDCG@10"] < 0.45  # chance: 1 relevant among 20
    assert result.after.measures["nDCG@10"] >= 0.9
    assert result.after.measures["RR@10"] > result.before.measures["RR@10"]


def test_scoring_with_another_max_length_than_training_warns(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "tuned"
    finetune(str(tiny_model), _rows(), out, options=_quick(), max_length=64)
    assert json.loads((out / FINETUNE_FILE).read_text())["max_length"] == 64
    with caplog.at_level("WARNING", logger="rankgate.engine.reranker"):
        Reranker(str(out), max_length=64)
    assert "fine-tuned" not in caplog.text
    with caplog.at_level("WARNING", logger="rankgate.engine.reranker"):
        Reranker(str(out), max_length=256)
    assert "fine-tuned on pairs cut to 64 tokens" in caplog.text


def test_gradient_checkpointing_and_onnx_export_of_the_output(
    tiny_model: Path, tmp_path: Path
) -> None:
    from rankgate.backends.onnx_export import export_onnx

    out = tmp_path / "tuned"
    finetune(str(tiny_model), _rows(), out, options=_quick(gradient_checkpointing=True))
    onnx_dir = tmp_path / "onnx"
    export_onnx(str(out), onnx_dir, optimize=False)
    pairs = [(QUERY, d) for d in DOCUMENTS]
    torch_scores = Reranker(str(out)).compute_score(pairs)
    onnx_scores = Reranker(str(onnx_dir), backend="onnx").compute_score(pairs)
    assert onnx_scores == pytest.approx(torch_scores, abs=1e-4)


def test_cli_distills_from_the_model_itself_without_an_index(
    tiny_model: Path, tmp_path: Path
) -> None:
    train = write_rows(_rows(4), tmp_path / "train.jsonl")
    out = tmp_path / "tuned"
    proc = _cli(
        str(tiny_model), "--train", str(train), "--out", str(out), "--teacher", "self",
        "--loss", "distill", "--max-steps", "2", "--group-size", "3", "--no-progress", "--json",
    )  # fmt: skip
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    summary = json.loads(stdout)
    assert summary["steps"] == 2 and summary["mined"] is None
    scored = read_rows(Path(summary["mined_file"]))
    assert all(r.has_scores for r in scored)
