"""The embedded index: BM25 + dense vectors on disk, fused by reciprocal rank fusion."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rankgate.funnel.corpus import SourceDocument, split_passages
from rankgate.funnel.embedders import Embedder
from rankgate.funnel.errors import IndexMismatchError
from rankgate.funnel.fusion import reciprocal_rank_fusion
from rankgate.funnel.lexical import Bm25
from rankgate.funnel.store import commit_generation, live_generation, new_generation
from rankgate.funnel.types import Hit, Passage, ProgressFn

__all__ = ["BuildReport", "LocalIndex", "passage_text"]

log = logging.getLogger(__name__)
FORMAT = 1


def passage_text(p: Passage) -> str:
    """What is embedded and BM25-indexed: the title helps recall of short passages."""
    return f"{p.title}\n{p.text}" if p.title else p.text


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What a (re)build did, counted in documents except ``passages`` and ``embedded``."""

    documents: int
    passages: int
    added: int
    updated: int
    unchanged: int
    removed: int
    embedded: int


@dataclass(frozen=True, slots=True)
class _Stored:
    passages: list[Passage]
    fingerprints: dict[str, str]
    vectors: np.ndarray
    manifest: dict[str, Any]


def _read_manifest(gen: Path) -> dict[str, Any]:
    return dict(json.loads((gen / "manifest.json").read_text(encoding="utf-8")))


def _read(gen: Path) -> _Stored:
    manifest = _read_manifest(gen)
    passages = []
    with (gen / "passages.jsonl").open(encoding="utf-8") as stream:
        passages = [Passage(**json.loads(line)) for line in stream]
    fingerprints = json.loads((gen / "documents.json").read_text(encoding="utf-8"))
    vectors = np.load(gen / "vectors.npy")
    return _Stored(passages, fingerprints, vectors, manifest)


class LocalIndex:
    """An on-disk index that needs no server.

    Build it with :meth:`build`, open it with :meth:`open`, query it with :meth:`search`.

    Example:
        >>> emb = SentenceTransformerEmbedder("BAAI/bge-m3")              # doctest: +SKIP
        >>> LocalIndex.build("idx", read_corpus(Path("docs.jsonl")), emb)  # doctest: +SKIP
        >>> LocalIndex.open("idx", emb).search("reset router password", 50)  # doctest: +SKIP
    """

    def __init__(
        self, root: Path, stored: _Stored, bm25: Bm25, embedder: Embedder, rrf_k: int = 60
    ) -> None:
        self.root = Path(root)
        self.passages = stored.passages
        self.vectors = stored.vectors
        self.manifest = stored.manifest
        self.documents = len(stored.fingerprints)
        self._bm25 = bm25
        self._embedder = embedder
        self.rrf_k = rrf_k

    @classmethod
    def open(cls, root: Path, embedder: Embedder, *, rrf_k: int = 60) -> LocalIndex:
        """Open the live generation at ``root``.

        Raises:
            IndexMissingError: nothing was ever built there.
            IndexMismatchError: ``embedder`` has another dimension than the stored vectors.
        """
        gen = live_generation(Path(root))
        stored = _read(gen)
        _check_model(stored.manifest, embedder)
        return cls(root, stored, Bm25.load(gen / "bm25", len(stored.passages)), embedder, rrf_k)

    @staticmethod
    def recorded_model(root: Path) -> str | None:
        """The embedding model the live generation at ``root`` was built with; None when
        nothing was built there."""
        from rankgate.funnel.errors import IndexMissingError

        try:
            manifest = _read_manifest(live_generation(Path(root)))
        except (IndexMissingError, OSError, ValueError, KeyError):
            return None
        model = manifest.get("params", {}).get("model")
        return str(model) if model else None

    @staticmethod
    def build(
        root: Path,
        documents: Sequence[SourceDocument],
        embedder: Embedder,
        *,
        passage_words: int = 200,
        passage_overlap: int = 40,
        prune: bool = False,
        progress: ProgressFn | None = None,
    ) -> BuildReport:
        """Add or replace ``documents`` by id, embedding only what changed, then swap atomically.

        Documents already indexed but absent from ``documents`` stay, unless ``prune``. Changing
        the embedding model or the passage sizes re-embeds everything.
        """
        root = Path(root)
        params = {"model": embedder.name, "words": passage_words, "overlap": passage_overlap}
        old = _previous(root)
        reusable = old is not None and old.manifest.get("params") == params
        old_by_doc: dict[str, list[tuple[Passage, np.ndarray]]] = {}
        if old is not None and reusable:
            for p, v in zip(old.passages, old.vectors, strict=True):
                old_by_doc.setdefault(p.doc_id, []).append((p, v))
        old_prints = old.fingerprints if old is not None else {}

        fingerprints: dict[str, str] = {}
        passages: list[Passage] = []
        vectors: list[np.ndarray | None] = []
        counts = {"added": 0, "updated": 0, "unchanged": 0}
        incoming = {d.id for d in documents}
        if old is not None and not prune:
            # Keep documents that this run does not mention, in their old order.
            for doc_id, fp in old_prints.items():
                if doc_id in incoming:
                    continue
                fingerprints[doc_id] = fp
                kept = old_by_doc.get(doc_id)
                if kept is None:  # settings changed: re-split needs the text, kept in passages
                    kept = [(p, None) for p in old.passages if p.doc_id == doc_id]  # type: ignore[misc]
                for p, v in kept:
                    passages.append(p)
                    vectors.append(v)
        for doc in documents:
            fp = doc.fingerprint
            fingerprints[doc.id] = fp
            if doc.id in old_by_doc and old_prints.get(doc.id) == fp:
                counts["unchanged"] += 1
                for p, v in old_by_doc[doc.id]:
                    passages.append(p)
                    vectors.append(v)
                continue
            counts["updated" if doc.id in old_prints else "added"] += 1
            for p in split_passages(doc, passage_words, passage_overlap):
                passages.append(p)
                vectors.append(None)
        removed = len(set(old_prints) - incoming) if prune else 0

        gen = new_generation(root)
        todo = [i for i, v in enumerate(vectors) if v is None]
        fresh = embedder.embed([passage_text(passages[i]) for i in todo], progress=progress)
        matrix = np.zeros((len(passages), embedder.dim), dtype=np.float32)
        for i, v in enumerate(vectors):
            if v is not None:
                matrix[i] = v
        if todo:
            matrix[todo] = fresh
        manifest = {
            "format": FORMAT,
            "params": params,
            "dim": embedder.dim,
            "documents": len(fingerprints),
            "passages": len(passages),
        }
        _write(gen, passages, fingerprints, matrix, manifest)
        commit_generation(root, gen)
        report = BuildReport(
            documents=len(fingerprints),
            passages=len(passages),
            removed=removed,
            embedded=len(todo),
            **counts,
        )
        log.info("index %s: %s", root, report)
        return report

    def search(self, query: str, top_k: int) -> list[Hit]:
        """The ``top_k`` passages by RRF of BM25 and dense ranks, best first."""
        depth = max(top_k * 2, 20)
        lexical = [row for row, _ in self._bm25.search(query, depth)]
        dense: list[int] = []
        if len(self.passages):
            q = self._embedder.embed([query], query=True)[0]
            sims = self.vectors @ q
            n = min(depth, len(sims))
            top = np.argpartition(-sims, n - 1)[:n]
            dense = [int(i) for i in top[np.argsort(-sims[top], kind="stable")]]
        fused = reciprocal_rank_fusion({"bm25": lexical, "dense": dense}, k=self.rrf_k)
        return [
            Hit(passage=self.passages[row], score=score, rank=rank, components=parts)
            for rank, (row, score, parts) in enumerate(fused[:top_k], 1)
        ]


def _previous(root: Path) -> _Stored | None:
    from rankgate.funnel.errors import IndexMissingError

    try:
        return _read(live_generation(root))
    except IndexMissingError:
        return None


def _check_model(manifest: dict[str, Any], embedder: Embedder) -> None:
    if manifest["dim"] != embedder.dim:
        raise IndexMismatchError(
            f"the index holds {manifest['dim']}-dimensional vectors from "
            f"{manifest['params']['model']!r}, but {embedder.name!r} makes {embedder.dim}; "
            "open it with the same embedding model or rebuild it"
        )
    if manifest["params"]["model"] != embedder.name:
        log.warning(
            "index built with %r, queried with %r", manifest["params"]["model"], embedder.name
        )


def _write(
    gen: Path,
    passages: list[Passage],
    fingerprints: dict[str, str],
    matrix: np.ndarray,
    manifest: dict[str, Any],
) -> None:
    with (gen / "passages.jsonl").open("w", encoding="utf-8") as stream:
        for p in passages:
            record = asdict(p)
            record["metadata"] = dict(p.metadata)
            stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    (gen / "documents.json").write_text(json.dumps(fingerprints), encoding="utf-8")
    np.save(gen / "vectors.npy", matrix)
    bm25_dir = gen / "bm25"
    bm25_dir.mkdir()
    Bm25.build([passage_text(p) for p in passages]).save(bm25_dir)
    # The manifest is written last: a generation without one was never finished.
    (gen / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
