"""A Milvus first stage (dense vectors) through pymilvus, for corpora that outgrow one machine.

The same code talks to Milvus Lite (a local path, or ``milvus-lite server`` on a port) and to a
Milvus cluster (``http://host:19530`` plus a token): only the URI changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rankgate.errors import MissingDependencyError
from rankgate.funnel.corpus import SourceDocument, split_passages
from rankgate.funnel.embedders import Embedder
from rankgate.funnel.errors import IndexMismatchError
from rankgate.funnel.index import BuildReport, passage_text
from rankgate.funnel.types import Hit, Passage, ProgressFn

__all__ = ["MilvusRetriever"]

_ID_LENGTH = 1024
_TEXT_LENGTH = 65535
_BATCH = 256


def _literal_list(values: Iterable[str]) -> str:
    # Milvus Lite rejects filter templates ({name} + filter_params), so ids are quoted inline;
    # JSON string escaping is what Milvus' expression grammar accepts.
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


class MilvusRetriever:
    """Passages and their vectors in a Milvus collection; search is cosine similarity.

    Args:
        uri: ``./rankgate.db`` (Milvus Lite, embedded), ``http://127.0.0.1:19530`` (a server).
        embedder: embeds passages and queries; the collection is created with its dimension.
        collection: collection name.
        token: ``user:password`` or an API key for secured clusters.
        client: an existing ``pymilvus.MilvusClient`` (then ``uri`` and ``token`` are unused).

    Raises:
        MissingDependencyError: pymilvus is not installed.
        IndexMismatchError: the collection exists with another vector dimension.
    """

    def __init__(
        self,
        uri: str,
        embedder: Embedder,
        *,
        collection: str = "rankgate",
        token: str | None = None,
        client: Any = None,
    ) -> None:
        try:
            import pymilvus
        except ImportError:
            raise MissingDependencyError("pymilvus", "milvus", "the Milvus retriever") from None
        self._pymilvus = pymilvus
        self.client = client or pymilvus.MilvusClient(uri=uri, token=token or "")
        self.collection = collection
        self.embedder = embedder
        self._ensure_collection()

    def _ensure_collection(self) -> None:
        c, dt = self.client, self._pymilvus.DataType
        if c.has_collection(self.collection):
            fields = c.describe_collection(self.collection)["fields"]
            dim = next(int(f["params"]["dim"]) for f in fields if f["name"] == "vector")
            if dim != self.embedder.dim:
                raise IndexMismatchError(
                    f"Milvus collection {self.collection!r} holds {dim}-dimensional vectors, "
                    f"but {self.embedder.name!r} makes {self.embedder.dim}"
                )
            return
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", dt.VARCHAR, is_primary=True, max_length=_ID_LENGTH)
        schema.add_field("doc_id", dt.VARCHAR, max_length=_ID_LENGTH)
        schema.add_field("fingerprint", dt.VARCHAR, max_length=64)
        schema.add_field("text", dt.VARCHAR, max_length=_TEXT_LENGTH)
        schema.add_field("meta", dt.JSON)
        schema.add_field("vector", dt.FLOAT_VECTOR, dim=self.embedder.dim)
        index = c.prepare_index_params()
        index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="COSINE")
        c.create_collection(self.collection, schema=schema, index_params=index)

    def add(
        self,
        documents: Sequence[SourceDocument],
        *,
        passage_words: int = 200,
        passage_overlap: int = 40,
        prune: bool = False,
        progress: ProgressFn | None = None,
    ) -> BuildReport:
        """Add or replace ``documents`` by id; unchanged documents are not re-embedded."""
        known = self._fingerprints([d.id for d in documents])
        changed = [d for d in documents if known.get(d.id) != d.fingerprint]
        removed = 0
        if prune:
            stale = set(self._fingerprints(None)) - {d.id for d in documents}
            removed = len(stale)
            if stale:
                self.client.delete(self.collection, filter=f"doc_id in {_literal_list(stale)}")
        replaced = [d.id for d in changed if d.id in known]
        if replaced:
            # A changed document may now have fewer passages: drop all of its old ones first.
            self.client.delete(self.collection, filter=f"doc_id in {_literal_list(replaced)}")
        rows: list[tuple[Passage, str]] = [
            (p, d.fingerprint)
            for d in changed
            for p in split_passages(d, passage_words, passage_overlap)
        ]
        vectors = self.embedder.embed([passage_text(p) for p, _ in rows], progress=progress)
        for start in range(0, len(rows), _BATCH):
            batch = [
                {
                    "id": p.id,
                    "doc_id": p.doc_id,
                    "fingerprint": fp,
                    "text": p.text,
                    "meta": {
                        "n": p.n,
                        "title": p.title,
                        "source": p.source,
                        "published": p.published,
                        "metadata": dict(p.metadata),
                    },
                    "vector": vectors[start + i].tolist(),
                }
                for i, (p, fp) in enumerate(rows[start : start + _BATCH])
            ]
            self.client.upsert(self.collection, batch)
        total = self._fingerprints(None)
        return BuildReport(
            documents=len(total),
            passages=self.count(),
            added=sum(1 for d in changed if d.id not in known),
            updated=len(replaced),
            unchanged=len(documents) - len(changed),
            removed=removed,
            embedded=len(rows),
        )

    def _fingerprints(self, doc_ids: Sequence[str] | None) -> dict[str, str]:
        if doc_ids is not None and not doc_ids:
            return {}
        expr = 'doc_id != ""' if doc_ids is None else f"doc_id in {_literal_list(doc_ids)}"
        rows = self._query(expr, ["doc_id", "fingerprint"])
        return {r["doc_id"]: r["fingerprint"] for r in rows}

    def _query(self, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1000
        while True:
            rows = self.client.query(
                self.collection, filter=expr, output_fields=fields, limit=page, offset=len(out)
            )
            out.extend(rows)
            if len(rows) < page:
                return out

    def count(self) -> int:
        """Passages stored."""
        return len(self._query('id != ""', ["id"]))

    def search(self, query: str, top_k: int) -> list[Hit]:
        """The ``top_k`` passages closest to the query embedding, best first."""
        vector = self.embedder.embed([query], query=True)[0].tolist()
        found = self.client.search(
            self.collection,
            data=[vector],
            limit=top_k,
            output_fields=["doc_id", "text", "meta"],
            search_params={"metric_type": "COSINE"},
        )[0]
        hits = []
        for rank, hit in enumerate(found, 1):
            entity, meta = hit["entity"], hit["entity"]["meta"]
            passage = Passage(
                id=str(hit["id"]),
                doc_id=entity["doc_id"],
                n=int(meta.get("n", 0)),
                text=entity["text"],
                title=meta.get("title"),
                source=meta.get("source"),
                published=meta.get("published"),
                metadata=meta.get("metadata") or {},
            )
            hits.append(Hit(passage, float(hit["distance"]), rank, {"dense": rank}))
        return hits
