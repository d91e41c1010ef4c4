"""The demo scenario catalog: queries, candidates in retrieval order, and expected outcomes.

The scenarios are data, one JSON file per topic in ``rankgate/insight/scenarios/``. Each file has
``id``, ``title``, ``source``, ``expected`` (``best`` and ``worst`` document ids and a ``why`` per
document, in English) and ``variants``: one per language, each with ``lang``, ``query`` and
``documents`` (``[{"id", "text"}]`` in retrieval order). Every variant of a topic has the same
document ids, so the expectation holds in every language. ``lang`` is one code (``ja``) when the
query and documents share a language, or ``query-documents`` (``zh-en``: a Chinese query over
English documents) for a cross-lingual variant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from rankgate.errors import ConfigError, InputError

__all__ = ["Scenario", "ScenarioDocument", "get_scenario", "load_scenarios"]


@dataclass(frozen=True, slots=True)
class ScenarioDocument:
    id: str
    text: str


@dataclass(frozen=True, slots=True)
class Scenario:
    """One language variant of a demo topic.

    Attributes:
        id: the topic (``tesla-winter-range``).
        title: one line, in English.
        lang: ``ja``, or ``zh-en`` for a Chinese query over English documents.
        query: the question.
        documents: candidates in retrieval order.
        expected_best: id of the document a good reranker puts first.
        expected_worst: id of the document it puts last.
        why: per document id, one sentence on where it belongs and why.
        source: what the scenario puts to the test, in a few words (``demo trap`` shows it).
    """

    id: str
    title: str
    lang: str
    query: str
    documents: tuple[ScenarioDocument, ...]
    expected_best: str
    expected_worst: str
    why: dict[str, str]
    source: str

    @property
    def cross_lingual(self) -> bool:
        return "-" in self.lang

    def position(self, doc_id: str) -> int:
        """Index of a document in retrieval order."""
        return next(i for i, d in enumerate(self.documents) if d.id == doc_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "lang": self.lang,
            "query": self.query,
            "documents": [{"id": d.id, "text": d.text} for d in self.documents],
            "expected_best": self.expected_best,
            "expected_worst": self.expected_worst,
            "why": self.why,
            "source": self.source,
        }


def _parse(raw: dict[str, Any], name: str) -> list[Scenario]:
    try:
        expected = raw["expected"]
        out = []
        for variant in raw["variants"]:
            docs = tuple(
                ScenarioDocument(str(d["id"]), str(d["text"])) for d in variant["documents"]
            )
            ids = [d.id for d in docs]
            if len(set(ids)) != len(ids) or len(ids) < 2:
                raise ConfigError(f"{name} [{variant['lang']}]: need 2+ documents with unique ids")
            for key in ("best", "worst"):
                if expected[key] not in ids:
                    raise ConfigError(f"{name} [{variant['lang']}]: expected {key} not a document")
            out.append(
                Scenario(
                    id=str(raw["id"]),
                    title=str(raw["title"]),
                    lang=str(variant["lang"]),
                    query=str(variant["query"]),
                    documents=docs,
                    expected_best=str(expected["best"]),
                    expected_worst=str(expected["worst"]),
                    why={str(k): str(v) for k, v in expected.get("why", {}).items()},
                    source=str(raw.get("source", "")),
                )
            )
        return out
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"scenario file {name} is malformed: missing or bad {exc}") from None


@cache
def load_scenarios() -> tuple[Scenario, ...]:
    """Every variant of every shipped scenario, sorted by topic, then language.

    Raises:
        ConfigError: a shipped scenario file is malformed (a packaging bug).
    """
    folder = resources.files("rankgate.insight") / "scenarios"
    found: list[Scenario] = []
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            found.extend(_parse(json.loads(entry.read_text(encoding="utf-8")), entry.name))
    return tuple(sorted(found, key=lambda s: (s.id, s.lang)))


def get_scenario(scenario_id: str, lang: str) -> Scenario:
    """The variant of ``scenario_id`` in ``lang``.

    Raises:
        InputError: no such topic, or no variant in that language (the message lists them).
    """
    variants = [s for s in load_scenarios() if s.id == scenario_id]
    if not variants:
        topics = sorted({s.id for s in load_scenarios()})
        raise InputError(f"no scenario {scenario_id!r}; choose one of: {', '.join(topics)}")
    for s in variants:
        if s.lang == lang:
            return s
    langs = ", ".join(s.lang for s in variants)
    raise InputError(f"scenario {scenario_id!r} has no {lang!r} variant; languages: {langs}")
