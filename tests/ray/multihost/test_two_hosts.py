"""Ray across two test hosts: Serve replicas on both, score-batch on both, a host lost mid-job.

The tests share one cluster and run in file order; the last one kills the worker host.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rankgate import Reranker
from rankgate.config import RerankerSettings
from rankgate.ray import BatchSettings, RaySettings, score_batch, serve_app
from rankgate.server import ServerSettings
from tests.ray.netns.test_score_batch import library_scores, make_pairs

from .conftest import Cluster, NodeRecorder

QUERIES = [
    "how do I reset the router password?",
    "wie lade ich den Akku auf?",
    "quel est le niveau de bruit ?",
]
DOCS = [
    "Hold the reset button for ten seconds to restore the router's password.",
    "Four gigabit ports and a USB socket.",
    "Den Akku mit dem mitgelieferten Netzteil laden.",
    "Le ventilateur reste sous 30 dB.",
]

REQUESTS = 24


def tiny_settings(tiny_model: Path) -> RerankerSettings:
    return RerankerSettings(model=str(tiny_model), device="cpu", max_length=128)


@pytest.fixture
def both_actors_first() -> Iterator[None]:
    """Ray Data waits for the whole actor pool before scoring, so each host gets rows."""
    import ray.data

    context = ray.data.DataContext.get_current()
    before = context.wait_for_min_actors_s
    context.wait_for_min_actors_s = 120
    yield
    context.wait_for_min_actors_s = before


def test_serve_replicas_on_both_hosts_rank_like_the_library(
    cluster: Cluster, tiny_model: Path, tiny_library: Reranker, tmp_path: Path
) -> None:
    from ray import serve

    with socket.socket() as s:  # a free port on the head host (the worker host's is fresh)
        s.bind(("0.0.0.0", 0))
        port = int(s.getsockname()[1])
    recorder = NodeRecorder(tiny_model, tmp_path)
    # Serve runs a proxy on every host; each answers on its host's address, as behind a load
    # balancer (the addresses exist only on the veth pair).
    serve.start(http_options={"host": "0.0.0.0", "port": port})
    try:
        ray_settings = RaySettings(replicas=2, num_cpus_per_replica=1, app_name="two-hosts")
        app = serve_app(
            ServerSettings(), tiny_settings(tiny_model), ray_settings, reranker_factory=recorder
        )
        serve.run(app, name="two-hosts", route_prefix="/")  # returns once both replicas are up
        engines = sorted(p.name.split(".")[0] for p in tmp_path.iterdir())
        hosts = sorted([cluster.node_of(cluster.head_ip), cluster.node_of(cluster.worker_ip)])
        assert engines == hosts, "not one replica on each host"

        proxies = [f"http://{ip}:{port}" for ip in (cluster.head_ip, cluster.worker_ip)]
        with httpx.Client(timeout=60) as client:
            for i in range(REQUESTS):
                query, docs = QUERIES[i % 3], DOCS[i % 4 :] + DOCS[: i % 4]
                body = {"query": query, "documents": docs}
                r = client.post(f"{proxies[i % 2]}/v2/rerank", json=body)
                assert r.status_code == 200, r.text
                want = tiny_library.rerank(query, docs)
                got = r.json()["results"]
                assert [x["index"] for x in got] == [w.index for w in want]
                scores = [x["relevance_score"] for x in got]
                assert scores == pytest.approx([w.score for w in want], abs=1e-5)
        # Both replicas answered (a proxy prefers the replica on its own host).
        by_node = recorder.rows_by_node()
        assert all(by_node[host] > 0 for host in hosts), by_node
        assert sum(by_node.values()) == REQUESTS * len(DOCS), by_node
    finally:
        serve.shutdown()


def _batch_job(n: int, tiny_model: Path, tmp_path: Path) -> tuple[list[dict], Path, NodeRecorder]:
    """``n`` pairs in a Parquet file, and a recorder of which host scored which rows."""
    rows = make_pairs(n)
    source = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source)
    marks = tmp_path / "marks"
    marks.mkdir()
    return rows, source, NodeRecorder(tiny_model, marks)


def test_score_batch_scores_on_both_hosts(
    cluster: Cluster,
    tiny_model: Path,
    tiny_library: Reranker,
    tmp_path: Path,
    both_actors_first: None,
) -> None:
    rows, source, recorder = _batch_job(600, tiny_model, tmp_path)
    report = score_batch(
        source,
        tmp_path / "scores.parquet",
        model_settings=tiny_settings(tiny_model),
        batch_settings=BatchSettings(actors=2, batch_size=16, shard_rows=50),
        address=cluster.address,
        reranker_factory=recorder,
    )
    assert (report.rows, report.shards, report.scored_shards) == (600, 12, 12)
    by_node = recorder.rows_by_node()
    head, worker = cluster.node_of(cluster.head_ip), cluster.node_of(cluster.worker_ip)
    assert set(by_node) == {head, worker}, by_node
    assert by_node[head] > 0 and by_node[worker] > 0, by_node
    assert sum(by_node.values()) == 600, by_node  # each row scored once, on one host
    out = pq.read_table(report.output)
    assert out.column("row").to_pylist() == list(range(600))
    assert out.column("id").to_pylist() == [r["id"] for r in rows]
    want = library_scores(tiny_library, rows)
    assert out.column("score").to_pylist() == pytest.approx(want, rel=1e-4, abs=5e-5)


def test_worker_host_lost_mid_job_and_the_head_finishes_it(
    cluster: Cluster,
    tiny_model: Path,
    tiny_library: Reranker,
    tmp_path: Path,
    both_actors_first: None,
) -> None:
    rows, source, recorder = _batch_job(2000, tiny_model, tmp_path)
    head, lost = cluster.node_of(cluster.head_ip), cluster.node_of(cluster.worker_ip)
    at_kill: dict[str, int] = {}

    def kill_after_three_parts(written: int, total: int) -> None:
        if at_kill or written < 300:
            return
        at_kill.update(recorder.rows_by_node(), written=written)
        cluster.kill_worker()
        cluster.wait_for(lambda n: lost not in n, "the killed host is still alive", 60)

    report = score_batch(
        source,
        tmp_path / "scores.parquet",
        model_settings=tiny_settings(tiny_model),
        batch_settings=BatchSettings(actors=2, batch_size=4, shard_rows=100),
        address=cluster.address,
        progress=kill_after_three_parts,
        reranker_factory=recorder,
    )
    assert at_kill, "the job ended before the worker host was killed"
    assert at_kill["written"] < 2000 and at_kill.get(lost, 0) > 0, at_kill
    assert (report.rows, report.shards, report.scored_shards) == (2000, 20, 20)
    out = pq.read_table(report.output)
    assert out.column("row").to_pylist() == list(range(2000))  # none missing, none twice
    assert out.column("id").to_pylist() == [r["id"] for r in rows]
    want = library_scores(tiny_library, rows)
    assert out.column("score").to_pylist() == pytest.approx(want, rel=1e-4, abs=5e-5)
    # Ray rescheduled the lost host's unfinished rows onto the head; nothing took its place.
    assert lost not in cluster.alive_nodes()
    scored = recorder.rows_by_node()
    assert scored[head] >= 2000 - scored[lost], scored
