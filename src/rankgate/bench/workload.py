"""Deterministic workloads: one query and documents of a chosen token length.

Documents are built from :data:`rankgate.testing.SAMPLE_TEXT` (multilingual prose), each cut to
its own token count drawn uniformly within ± ``spread`` of the target under the model's own
tokenizer, and every run of the benchmark sees the same texts. The default, ±70%
(:data:`DEFAULT_SPREAD`), is the mix of short answers and full chunks that a first stage returns
from a real corpus, and the workload issue 7 measured its peers on: CrossEncoder computed 57%
real tokens there and FlagReranker 28%, which only lengths this mixed reproduce (±70%: 61% and
30%). :data:`NARROW_SPREAD`, ±15%, is the easy case for padding peers (CrossEncoder 88-90% real).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_SPREAD",
    "DEVIATION_DOCS",
    "NARROW_SPREAD",
    "QUERY",
    "RepeatedRequests",
    "Workload",
    "check_spread",
    "make_documents",
    "token_counter",
]

QUERY = "How do I reset the admin password of the router?"  # 23 tokens with the model's tokenizer
DEFAULT_SPREAD = 0.7
"""84-476 tokens around 280: short answers next to full chunks, every pair still within
FlagReranker's default max_length of 512."""
NARROW_SPREAD = 0.15
"""238-322 tokens around 280: documents of nearly one length, where padding costs least."""
DEVIATION_DOCS = 24
"""Documents in the fixed pair set on which score deviation and rank correlation are measured."""

TokenCounter = Callable[[str], int]


def check_spread(spread: float) -> None:
    """Raises ValueError unless ``0 <= spread < 1`` (every document keeps at least one token)."""
    if not 0 <= spread < 1:
        raise ValueError(f"spread must be at least 0 and below 1, not {spread}")


def token_counter(model_dir: Path) -> TokenCounter:
    """Tokens of a text (no special tokens) under ``model_dir``'s ``tokenizer.json``."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    return lambda text: len(tok.encode(text, add_special_tokens=False).ids)


def make_documents(
    count: int,
    target_tokens: int,
    count_tokens: TokenCounter,
    *,
    spread: float = DEFAULT_SPREAD,
    seed: int = 0,
) -> list[str]:
    """``count`` documents of about ``target_tokens`` tokens each, the same on every run.

    Each document is a seeded shuffle of the sample sentences, repeated as needed and cut (at a
    character, found by bisection) where ``count_tokens`` reaches its own goal, drawn uniformly
    within ``target_tokens * (1 ± spread)``. Document ``i`` does not depend on ``count``, so a
    smaller workload is a prefix of a larger one.

    Example:
        >>> docs = make_documents(2, 20, lambda t: len(t.split()), spread=0.15)
        >>> [17 <= len(d.split()) <= 23 for d in docs]
        [True, True]
    """
    from rankgate.testing import SAMPLE_TEXT

    sentences = SAMPLE_TEXT[:-1]  # the last sample is punctuation and digits, not prose
    docs = []
    for i in range(count):
        rng = random.Random(seed * 1_000_003 + i)
        goal = round(target_tokens * rng.uniform(1 - spread, 1 + spread))
        text = ""
        while count_tokens(text) < goal:
            order = list(sentences)
            rng.shuffle(order)
            text = " ".join([text, *order]).strip()
        lo, hi = 1, len(text)
        while lo < hi:  # the shortest prefix that reaches the goal
            mid = (lo + hi) // 2
            if count_tokens(text[:mid]) >= goal:
                hi = mid
            else:
                lo = mid + 1
        docs.append(text[:lo])
    return docs


@dataclass(frozen=True)
class Workload:
    """Requests of 1 query × ``n`` documents for each ``n`` in ``sizes``, and the fixed pairs."""

    query: str
    sizes: tuple[int, ...]
    documents: tuple[str, ...]
    """The largest request's documents; request ``n`` takes the first ``n``."""
    deviation_documents: tuple[str, ...]
    target_tokens: int
    spread: float = DEFAULT_SPREAD

    @classmethod
    def build(
        cls,
        sizes: tuple[int, ...],
        target_tokens: int,
        count_tokens: TokenCounter,
        spread: float = DEFAULT_SPREAD,
    ) -> Workload:
        """Documents for every size, and :data:`DEVIATION_DOCS` for the deviation set."""
        count = max(*sizes, DEVIATION_DOCS)
        docs = make_documents(count, target_tokens, count_tokens, spread=spread)
        return cls(
            QUERY,
            tuple(sorted(set(sizes))),
            tuple(docs[: max(sizes)]),
            tuple(docs[:DEVIATION_DOCS]),
            target_tokens,
            spread,
        )

    @property
    def label(self) -> str:
        """How the documents' lengths were drawn, for table titles."""
        return f"~{self.target_tokens}-token documents, ±{self.spread:.0%}"

    def docs(self, n: int) -> list[str]:
        """The documents of the ``n``-document request."""
        return list(self.documents[:n])


@dataclass(frozen=True)
class RepeatedRequests:
    """Requests of 1 query × ``docs`` documents of which about ``share`` repeat an earlier one.

    Request ``i`` of a run (a load level) is, with probability ``share``, an exact copy of a
    request drawn uniformly from the ones before it, else a new one: new requests differ in
    their query (a number at its end) and take the next ``docs`` documents of ``pool``, so
    nothing but a repeat is ever asked again. Each run has its own requests, and every server
    gets the same ones in the same order.

    Example:
        >>> w = RepeatedRequests("q", ("a", "b", "c"), docs=2, share=0.5)
        >>> w.body(0, 5) == w.body(0, w.origin(0, 5))
        True
    """

    query: str
    pool: tuple[str, ...]
    docs: int
    share: float

    def __post_init__(self) -> None:
        if not 0 <= self.share < 1:
            raise ValueError(f"the repeat share must be at least 0 and below 1, not {self.share}")

    def origin(self, run: int, i: int) -> int:
        """The new request that request ``i`` of ``run`` is a copy of (itself when new)."""
        while i > 0:
            rng = random.Random(f"repeat {run}.{i}")  # the same draw on every run
            if rng.random() >= self.share:
                return i
            i = rng.randrange(i)
        return 0

    def body(self, run: int, i: int) -> dict[str, object]:
        """The JSON body of request ``i`` of ``run``."""
        new = self.origin(run, i)
        k, n = self.docs, len(self.pool)
        return {
            "query": f"{self.query} ({run}.{new})",
            "documents": [self.pool[(new * k + j) % n] for j in range(k)],
        }
