"""Hostile traffic, one named regression test per finding: cancellation, one road to the model,
honest health, connection and body timeouts, edge validation and the documented contract."""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from rankgate import Reranker
from rankgate.funnel import Funnel, Rules, StageCuts
from rankgate.funnel.settings import FunnelSettings
from rankgate.funnel.types import Passage
from rankgate.server import ServerSettings, create_app
from rankgate.server.protocol.errors import AnyError, CohereError, TEIError, VLLMError
from rankgate.testing import KeywordBackend
from tests.funnel.conftest import StaticRetriever

from .conftest import LiveServer, parse_metric


def metric(live: LiveServer, name: str) -> float:
    with live.client() as client:
        try:
            return parse_metric(client.get("/metrics").text, name)
        except KeyError:
            return 0.0


def wait_for(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def one_pair_per_pass(backend: KeywordBackend, **settings: Any) -> tuple[Reranker, ServerSettings]:
    """A reranker whose forward passes hold one pair each, so every pair is a cancellation
    point, and a server that takes one request per step."""
    reranker = Reranker(backend=backend, batch_tokens=16)
    options: dict[str, Any] = dict(batch_wait_ms=0, max_batch_tokens=16)
    options.update(settings)
    return reranker, ServerSettings(**options)


def raw_request(port: int, path: str, body: bytes, *, length: int | None = None) -> socket.socket:
    """Send a POST whose Content-Length may promise more than is sent (a stalled upload)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length if length is not None else len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    size = int(headers.get("content-length", "0"))
    while len(rest) < size:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:size]


# -- 1. work is cancelled ----------------------------------------------------------------------


def test_a_client_that_disconnects_while_queued_costs_no_model_time(serve) -> None:  # type: ignore[no-untyped-def]
    backend = KeywordBackend(delay=0.05)
    reranker, settings = one_pair_per_pass(backend)
    live = serve(create_app(settings, reranker))
    first = {"query": "router", "documents": [f"router doc {i}" for i in range(20)]}
    abandoned = {"query": "router", "documents": [f"gone doc {i}" for i in range(10)]}
    done: list[int] = []

    def call_first() -> None:
        with live.client() as client:
            done.append(client.post("/v1/rerank", json=first).status_code)

    worker = threading.Thread(target=call_first)
    worker.start()
    wait_for(lambda: backend.pairs_computed >= 1)
    with pytest.raises(httpx.ReadTimeout), httpx.Client(base_url=live.url, timeout=0.3) as quitter:
        quitter.post("/v1/rerank", json=abandoned)  # queued behind the first; gives up
    worker.join(30)
    assert done == [200]
    time.sleep(0.3)  # what the model would have done next, had it kept the abandoned request
    assert backend.pairs_computed == 20
    assert metric(live, 'rankgate_cancelled_tokens_total{stage="queued"}') > 0
    assert metric(live, "rankgate_client_disconnects_total") == 1
    assert metric(live, 'rankgate_requests_total{route="/v1/rerank",status="499"}') == 1
    assert metric(live, "rankgate_requests_in_flight") == 0


def test_a_request_past_its_deadline_stops_computing(serve) -> None:  # type: ignore[no-untyped-def]
    backend = KeywordBackend(delay=0.05)
    reranker, settings = one_pair_per_pass(backend, request_timeout_s=0.3)
    live = serve(create_app(settings, reranker))
    body = {"query": "router", "documents": [f"router doc {i}" for i in range(40)]}
    with live.client() as client:
        r = client.post("/v2/rerank", json=body)
    assert r.status_code == 504
    time.sleep(0.5)
    assert backend.pairs_computed < 20  # 40 pairs would take 2 s; it stopped after ~0.3 s
    assert metric(live, 'rankgate_cancelled_tokens_total{stage="running"}') > 0


def test_requests_behind_an_abandoned_one_do_not_wait_for_it(serve) -> None:  # type: ignore[no-untyped-def]
    backend = KeywordBackend(delay=0.05)
    reranker, settings = one_pair_per_pass(backend, request_timeout_s=1.0)
    live = serve(create_app(settings, reranker))
    heavy = {"query": "router", "texts": [f"router doc {i}" for i in range(60)]}  # 3 s of work
    light = {"query": "router", "texts": ["router reset"]}
    with ThreadPoolExecutor(2) as pool, live.client() as client:
        slow = pool.submit(client.post, "/rerank", json=heavy)
        wait_for(lambda: backend.pairs_computed >= 10)  # arrives 0.5 s later, due at 1.5 s
        quick = pool.submit(client.post, "/rerank", json=light)
        assert slow.result().status_code == 504
        assert quick.result().status_code == 200  # not a 504: the heavy one stopped at its deadline


# -- 2. one road to the model --------------------------------------------------------------


def explain_body(i: int) -> dict[str, str]:
    sentences = " ".join(f"Sentence {j} about router {i}." for j in range(10))
    return {"query": "router reset", "document": sentences}


def search_funnel() -> Funnel:
    passages = [
        Passage(id=f"d{i}#0", doc_id=f"d{i}", n=0, text=f"router reset step {i} " * 4)
        for i in range(12)
    ]
    return Funnel(
        StaticRetriever({"router reset": passages}),
        Reranker(backend=KeywordBackend()),
        Rules(min_score=None, max_age_days=None),
        cuts=StageCuts(12, 6, 3),
    )


def test_explain_and_search_floods_get_429_and_rerank_keeps_its_place(serve) -> None:  # type: ignore[no-untyped-def]
    backend = KeywordBackend(delay=0.004)
    reranker = Reranker(backend=backend, batch_tokens=64)
    settings = ServerSettings(
        batch_wait_ms=0,
        max_queue_tokens=4000,
        max_request_tokens=2000,
        low_priority_queue_share=0.25,
    )
    live = serve(create_app(settings, reranker, funnel=search_funnel()))
    flood: list[httpx.Response] = []
    stop = threading.Event()

    def flooder(i: int) -> None:
        with live.client() as client:
            while not stop.is_set() and len(flood) < 400:
                if i % 3:
                    flood.append(client.post("/v1/explain", json=explain_body(i)))
                else:
                    flood.append(client.post("/v1/search", json={"query": "router reset"}))

    reranks: list[httpx.Response] = []
    with ThreadPoolExecutor(12) as pool:
        for i in range(12):
            pool.submit(flooder, i)
        wait_for(lambda: sum(r.status_code == 429 for r in flood) >= 3)
        with live.client() as client:
            for _ in range(15):
                body = {"query": "router", "documents": [f"router doc {j}" for j in range(4)]}
                reranks.append(client.post("/v1/rerank", json=body))
        stop.set()
    statuses = {r.status_code for r in flood}
    assert statuses <= {200, 429}, statuses
    refused = [r for r in flood if r.status_code == 429]
    assert refused and all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert {r.status_code for r in reranks} == {200}
    # Rerank requests jump the explanations' backlog: they wait for the step that is running,
    # the explanations for everything queued before them.
    rerank_wait = statistics.median(int(r.headers["x-queue-time"]) for r in reranks)
    low_wait = statistics.median(
        int(r.headers["x-queue-time"]) for r in flood if r.status_code == 200
    )
    assert rerank_wait * 3 <= low_wait, (rerank_wait, low_wait)
    assert metric(live, 'rankgate_requests_total{route="/v1/explain",status="429"}') > 0


def test_explain_has_the_request_deadline_and_the_token_limit(serve) -> None:  # type: ignore[no-untyped-def]
    backend = KeywordBackend(delay=0.05)
    reranker, settings = one_pair_per_pass(backend, request_timeout_s=0.3, max_request_tokens=2000)
    live = serve(create_app(settings, reranker))
    with live.client() as client:
        slow = client.post("/v1/explain", json=explain_body(0))
        assert slow.status_code == 504  # 11 passes of 0.05 s
        long = " ".join(f"Sentence {j} is here with several words in it." for j in range(60))
        big = client.post("/v1/explain", json={"query": "q", "document": long})
        assert big.status_code == 422 and "limit is 2000" in big.json()["message"]
    time.sleep(0.4)
    assert backend.pairs_computed < 11


def test_search_reranks_through_the_queue(serve) -> None:  # type: ignore[no-untyped-def]
    backend = KeywordBackend()
    live = serve(create_app(ServerSettings(), Reranker(backend=backend), funnel=search_funnel()))
    with live.client() as client:
        r = client.post("/v1/search", json={"query": "router reset"})
    assert r.status_code == 200, r.text
    assert len(r.json()["results"]) == 3
    assert backend.pairs_computed == 12  # the server's model scored them, not the funnel's own
    assert metric(live, 'rankgate_requests_total{route="/v1/search",status="200"}') == 1
    assert metric(live, "rankgate_documents_total") == 12


class BlockingRetriever(StaticRetriever):
    """A first stage that waits until released (a slow embedder)."""

    def __init__(self, answers: dict[str, list[Passage]]) -> None:
        super().__init__(answers)
        self.release = threading.Event()
        self.inside = threading.Event()

    def search(self, query: str, top_k: int):  # type: ignore[no-untyped-def]
        self.inside.set()
        self.release.wait(30)
        return super().search(query, top_k)


def test_searches_beyond_the_first_stage_bound_get_429(serve) -> None:  # type: ignore[no-untyped-def]
    funnel = search_funnel()
    retriever = BlockingRetriever(funnel.retriever.answers)  # type: ignore[attr-defined]
    funnel.retriever = retriever
    settings = ServerSettings(max_pending_searches=1)
    live = serve(create_app(settings, Reranker(backend=KeywordBackend()), funnel=funnel))
    with ThreadPoolExecutor(1) as pool, live.client() as client:
        first = pool.submit(client.post, "/v1/search", json={"query": "router reset"})
        retriever.inside.wait(10)
        second = client.post("/v1/search", json={"query": "router reset"})
        assert second.status_code == 429 and int(second.headers["retry-after"]) >= 1
        retriever.release.set()
        assert first.result().status_code == 200
        assert client.post("/v1/search", json={"query": "router reset"}).status_code == 200


# -- 3. health tells the truth ------------------------------------------------------------------


class StuckBackend(KeywordBackend):
    """Blocks inside a forward pass until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.inside = threading.Event()

    def forward(self, pairs):  # type: ignore[no-untyped-def]
        self.inside.set()
        self.release.wait(30)
        return super().forward(pairs)


def test_health_and_ready_answer_at_once_under_a_backlog(serve) -> None:  # type: ignore[no-untyped-def]
    backend = KeywordBackend(delay=0.05)
    reranker, settings = one_pair_per_pass(backend)
    live = serve(create_app(settings, reranker))
    body = {"query": "router", "documents": [f"router doc {i}" for i in range(15)]}
    with ThreadPoolExecutor(4) as pool:
        jobs = [pool.submit(lambda: live.client().post("/v1/rerank", json=body)) for _ in range(4)]
        wait_for(lambda: metric(live, "rankgate_queue_pairs") >= 30)
        with live.client() as client:
            assert client.get("/health").status_code == 200
            assert client.get("/ready").status_code == 200  # the probe went first
        assert metric(live, "rankgate_queue_pairs") > 0  # the backlog is still there
        assert all(j.result().status_code == 200 for j in jobs)


def test_health_fails_when_the_model_thread_is_stuck(serve) -> None:  # type: ignore[no-untyped-def]
    backend = StuckBackend()
    live = serve(create_app(ServerSettings(liveness_stall_s=0.2), Reranker(backend=backend)))
    with ThreadPoolExecutor(1) as pool, live.client() as client:
        job = pool.submit(client.post, "/v1/rerank", json={"query": "q", "documents": ["a"]})
        backend.inside.wait(10)
        time.sleep(0.3)
        r = client.get("/health")
        assert r.status_code == 503 and "no forward pass finished" in r.json()["message"]
        backend.release.set()
        assert job.result().status_code == 200
        assert client.get("/health").status_code == 200


# -- 4. kept-alive connections ------------------------------------------------------------------


@pytest.mark.slow
def test_kept_alive_connections_survive_the_pause_of_client_pools(serve) -> None:  # type: ignore[no-untyped-def]
    live = serve(create_app(ServerSettings(), Reranker(backend=KeywordBackend())))
    port = int(live.url.rsplit(":", 1)[1])
    body = json.dumps({"query": "q", "texts": ["a"]}).encode()
    sock = raw_request(port, "/rerank", body)
    assert read_response(sock)[0] == 200
    time.sleep(5.5)  # uvicorn's default closes idle connections after 5 s; pools keep them ~60 s
    sock.sendall(
        b"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    assert read_response(sock)[0] == 200
    sock.close()
    assert live.server.config.timeout_keep_alive == 75


# -- 5. ignored field names in a header ---------------------------------------------------------


def test_ignored_field_names_are_listed_only_when_printable_and_capped(fake) -> None:  # type: ignore[no-untyped-def]
    body: dict[str, Any] = {"query": "q", "documents": ["a"], "naïve": 1, "a\r\nb": 2, "n\x00": 3}
    body["ok_field"] = 4
    r = fake.post("/v1/rerank", json=body)
    assert r.status_code == 200
    assert r.headers["x-ignored-fields"] == "ok_field,...and 3 more"
    many = {"query": "q", "documents": ["a"], **{f"field{i}": i for i in range(5_000)}}
    r = fake.post("/v2/rerank", json=many)
    assert r.status_code == 200
    header = r.headers["x-ignored-fields"]
    assert len(header) < 1024 and header.endswith(f"...and {5_000 - 16} more")


# -- 6 and 7. text and numbers no response can carry ----------------------------------------


ROUTES = [
    ("/v1/rerank", {"query": "QUERY", "documents": ["DOC"]}, CohereError),
    ("/v2/rerank", {"query": "QUERY", "documents": ["DOC"]}, CohereError),
    ("/rerank", {"query": "QUERY", "texts": ["DOC"]}, TEIError),
    ("/rerank", {"query": "QUERY", "documents": ["DOC"]}, CohereError),
    ("/score", {"text_1": "QUERY", "text_2": ["DOC"]}, VLLMError),
    ("/v1/score", {"text_1": "QUERY", "text_2": "DOC"}, VLLMError),
    ("/v1/explain", {"query": "QUERY", "document": "DOC"}, AnyError),
    ("/v1/search", {"query": "QUERY"}, AnyError),
]


SURROGATE_CASES = [
    (path, template, shape, where)
    for path, template, shape in ROUTES
    for where in ("QUERY", "DOC")
    if where in json.dumps(template)
]


@pytest.mark.parametrize(("path", "template", "shape", "where"), SURROGATE_CASES)
def test_a_lone_surrogate_is_a_422_in_every_dialect(fake, path, template, shape, where) -> None:  # type: ignore[no-untyped-def]
    raw = json.dumps(template).replace(f'"{where}"', '"x \\ud800 y"').replace('"QUERY"', '"q"')
    raw = raw.replace('"DOC"', '"d"')
    r = fake.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    shape.model_validate(r.json())
    assert "Unicode" in r.text


def test_a_body_that_is_not_utf8_is_a_400(fake) -> None:  # type: ignore[no-untyped-def]
    raw = b'{"query": "q", "documents": ["caf\xe9"]}'  # Latin-1, not UTF-8
    r = fake.post("/v1/rerank", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "not valid UTF-8" in r.json()["message"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_anywhere_are_a_422(fake, number) -> None:  # type: ignore[no-untyped-def]
    raw = (
        '{"query": "q", "return_documents": true, "documents": '
        f'[{{"text": "router", "meta": {{"weight": {number}}}}}]}}'
    )
    r = fake.post("/v1/rerank", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["documents", 0, "meta", "weight"]


# -- 8. search without an index -----------------------------------------------------------------


def test_search_without_an_index_is_a_503_remembered(serve, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    attempts = []

    def failing_build(*args: object, **kwargs: object) -> Funnel:
        attempts.append(1)
        raise OSError("no such embedding model in the cache")  # what an embedder raises

    monkeypatch.setattr("rankgate.server.state.build_funnel", failing_build)
    index = FunnelSettings(index_dir=Path("/nonexistent/rankgate-index"))
    live = serve(
        create_app(ServerSettings(), Reranker(backend=KeywordBackend()), funnel_settings=index)
    )
    with live.client() as client:
        for _ in range(3):
            r = client.post("/v1/search", json={"query": "router"})
            assert r.status_code == 503
            AnyError.model_validate(r.json())
            assert "search is not available" in r.json()["message"]
    assert attempts == [1]


def test_search_never_uses_an_index_directory_nobody_named(serve, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    attempts = []
    monkeypatch.setattr("rankgate.server.state.build_funnel", lambda *a, **k: attempts.append(1))
    monkeypatch.delenv("RANKGATE_INDEX_DIR", raising=False)
    live = serve(create_app(ServerSettings(), Reranker(backend=KeywordBackend())))
    with live.client() as client:
        r = client.post("/v1/search", json={"query": "router"})
    assert r.status_code == 503
    assert "set RANKGATE_INDEX_DIR" in r.json()["message"]
    assert attempts == []  # not even ./rankgate-index was tried


# -- 10. a body that never completes --------------------------------------------------------


def test_a_stalled_upload_gets_408_and_frees_its_slot(serve) -> None:  # type: ignore[no-untyped-def]
    live = serve(create_app(ServerSettings(body_timeout_s=0.5), Reranker(backend=KeywordBackend())))
    port = int(live.url.rsplit(":", 1)[1])
    sock = raw_request(port, "/v1/rerank", b'{"query": "q", ', length=1000)
    status, headers, body = read_response(sock)
    sock.close()
    assert status == 408
    assert headers["connection"] == "close"
    assert "did not arrive within 0.5 s" in json.loads(body)["message"]
    assert metric(live, "rankgate_requests_in_flight") == 0


# -- 11. the contract -------------------------------------------------------------------------


def test_explain_and_search_errors_are_documented_and_match(fake) -> None:  # type: ignore[no-untyped-def]
    doc = fake.get("/openapi.json").json()
    for path in ("/v1/explain", "/v1/search"):
        responses = doc["paths"][path]["post"]["responses"]
        for status in ("400", "408", "422", "429", "500", "503", "504"):
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/AnyError"), (path, status)
    r = fake.post("/v1/explain", json={"document": "x"})
    assert r.status_code == 422
    AnyError.model_validate(r.json())
    assert r.json()["detail"][0]["loc"] == ["query"]


def test_vllm_with_no_documents_is_a_400(fake) -> None:  # type: ignore[no-untyped-def]
    r = fake.post("/score", json={"text_1": "q", "text_2": []})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "BadRequestError"


def test_405_names_the_allowed_methods(fake) -> None:  # type: ignore[no-untyped-def]
    r = fake.get("/v1/rerank")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
