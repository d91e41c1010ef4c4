"""Running a demo scenario: rerank its candidates, explain each score, compare with expectations."""

from __future__ import annotations

from dataclasses import dataclass

from rankgate.engine import Reranker
from rankgate.engine.explain import Explanation, explain
from rankgate.insight.catalog import Scenario
from rankgate.insight.health import top1_displaced, top_gap

__all__ = ["DemoRun", "run_scenario"]


@dataclass(frozen=True, slots=True)
class DemoRun:
    """What the model did with a scenario.

    Attributes:
        scenario: the scenario variant that was run.
        scores: normalized score per document id.
        reranked: document ids, best first.
        explanations: per document id, the sentence attribution (empty when not asked for).
    """

    scenario: Scenario
    scores: dict[str, float]
    reranked: tuple[str, ...]
    explanations: dict[str, Explanation]

    @property
    def retrieval(self) -> tuple[str, ...]:
        """Document ids in retrieval order."""
        return tuple(d.id for d in self.scenario.documents)

    @property
    def best_as_expected(self) -> bool:
        return self.reranked[0] == self.scenario.expected_best

    @property
    def worst_as_expected(self) -> bool:
        return self.reranked[-1] == self.scenario.expected_worst

    @property
    def top1_displaced(self) -> bool:
        """Reranking changed the top document (the first health metric, for this one query)."""
        return bool(top1_displaced([self.scores[i] for i in self.retrieval]))

    @property
    def top_gap(self) -> float:
        return top_gap(list(self.scores.values())) or 0.0


def run_scenario(reranker: Reranker, scenario: Scenario, *, explain_scores: bool = True) -> DemoRun:
    """Rerank a scenario's documents and, unless told not to, explain every score by sentence.

    Explanations cost one extra pair per sentence; the demo documents have three to five.
    """
    texts = [d.text for d in scenario.documents]
    results = reranker.rerank(scenario.query, texts)
    ids = [d.id for d in scenario.documents]
    scores = {ids[r.index]: r.score for r in results}
    explanations = (
        {doc.id: explain(reranker, scenario.query, doc.text) for doc in scenario.documents}
        if explain_scores
        else {}
    )
    return DemoRun(scenario, scores, tuple(ids[r.index] for r in results), explanations)
