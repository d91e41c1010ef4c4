"""One suite, two first stages: the embedded index and Milvus (milvus-lite's server on loopback)."""

from __future__ import annotations

import itertools

import pytest

from rankgate.funnel import LocalIndex, MilvusRetriever, SourceDocument

_names = itertools.count()


@pytest.fixture(scope="session")
def milvus_retriever(milvus_uri, corpus, embedder) -> MilvusRetriever:
    retriever = MilvusRetriever(milvus_uri, embedder, collection="corpus")
    retriever.add(corpus)
    return retriever


@pytest.fixture(params=["local", "milvus"])
def retriever(request, local_index):
    return local_index if request.param == "local" else request.getfixturevalue("milvus_retriever")


@pytest.fixture(params=["local", "milvus"])
def make_store(request, tmp_path, embedder):
    """A fresh, empty store: returns (add(documents) -> BuildReport, the retriever to search)."""
    if request.param == "local":
        root = tmp_path / "idx"

        def add(docs, prune=False):
            return LocalIndex.build(root, docs, embedder, prune=prune)

        return add, lambda: LocalIndex.open(root, embedder)
    store = MilvusRetriever(
        request.getfixturevalue("milvus_uri"), embedder, collection=f"fresh{next(_names)}"
    )
    return (lambda docs, prune=False: store.add(docs, prune=prune)), (lambda: store)


QUERIES = [
    ("iPhone 15 charges slowly, what should I do?", "t00"),
    ("Huawei AX3 router 忘记管理员密码怎么办", "t01"),
    ("Tesla Model Y perd de l'autonomie en hiver", "t02"),
    ("Mi PlayStation 5 se sobrecalienta", "t09"),
    ("Dyson V15 verliert Saugkraft", "t08"),
]


@pytest.mark.parametrize(("query", "topic"), QUERIES)
def test_finds_the_topic_in_every_language(retriever, query, topic):
    hits = retriever.search(query, 10)
    assert hits[0].passage.doc_id.startswith(topic)
    assert sum(h.passage.doc_id.startswith(topic) for h in hits) >= 8


def test_hits_are_ranked_and_keep_metadata(retriever, corpus):
    hits = retriever.search("Samsung Galaxy S24 battery drains fast", 50)
    assert len(hits) == 50
    assert [h.rank for h in hits] == list(range(1, 51))
    assert len({h.passage.id for h in hits}) == 50
    by_id = {d.id: d for d in corpus}
    for hit in hits:
        doc = by_id[hit.passage.doc_id]
        assert hit.passage.text == doc.text
        assert hit.passage.source == doc.source
        assert hit.passage.published == doc.published
        assert hit.passage.metadata["lang"] == doc.metadata["lang"]


def _doc(doc_id: str, text: str) -> SourceDocument:
    return SourceDocument(
        id=doc_id, text=text, source="https://example.org", published="2025-01-01"
    )


def test_reindexing_is_incremental_by_id(make_store, embedder):
    add, open_ = make_store
    first = add(
        [
            _doc("a", "Kiwi fruit ripen at room temperature."),
            _doc("b", "Lighthouses guide ships along rocky coasts."),
        ]
    )
    assert (first.added, first.embedded, first.documents) == (2, 2, 2)

    before = embedder.requested
    second = add(
        [
            _doc("a", "Kiwi fruit ripen at room temperature."),
            _doc("b", "Glaciers carve deep valleys over millennia."),
            _doc("c", "Sourdough bread needs a lively starter."),
        ]
    )
    assert (second.added, second.updated, second.unchanged) == (1, 1, 1)
    assert second.embedded == 2 and embedder.requested - before == 2
    assert second.documents == 3 and second.passages == 3

    retriever = open_()
    found = {h.passage.doc_id: h.passage.text for h in retriever.search("glaciers valleys", 3)}
    assert found["b"].startswith("Glaciers")
    assert all("Lighthouses" not in h.passage.text for h in retriever.search("lighthouse", 3))

    third = add([_doc("c", "Sourdough bread needs a lively starter.")], prune=True)
    assert (third.removed, third.documents) == (2, 1)
    assert {h.passage.doc_id for h in open_().search("bread", 5)} == {"c"}
