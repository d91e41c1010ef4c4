"""The funnel's last stage: light rules that drop what a careful reader would.

Rules run over the reranked candidates in rank order; each dropped candidate records the rule
that dropped it and why. From a TOML file (a ``[rules]`` table or top-level keys)::

    [rules]
    min_score = 0.7            # reranker score in [0, 1] (calibrated, if the model is)
    max_age_days = 730         # by the date field; undated documents pass unless keep_undated=false
    date_field = "published"
    allow_sources = ["apple.com", "Apple Support"]   # hosts match their subdomains too
    deny_sources = ["spam.example"]
    max_per_source = 2
    near_duplicate = 0.9       # drop a passage this similar to a better one (0-1, Jaccard)
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rankgate.funnel.errors import RulesError
from rankgate.funnel.types import Candidate, Passage

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Rules", "source_matches"]

_SHINGLE = 5


@dataclass(frozen=True, slots=True)
class Rules:
    """Rule settings; ``None`` (or an empty list) turns a rule off.

    Attributes:
        min_score: drop candidates whose rerank score is lower (the calibrated probability
            of relevance when the model has a calibration).
        max_age_days: drop candidates whose date is older than this many days.
        date_field: ``published`` or a metadata field holding an ISO 8601 date.
        keep_undated: whether candidates without a (readable) date pass the age rule.
        allow_sources: if set, only these sources pass (names, or hosts with subdomains).
        deny_sources: these sources never pass.
        max_per_source: at most this many candidates per source (the best ones).
        near_duplicate: drop a candidate whose text is at least this similar (Jaccard of
            character 5-grams) to a better-ranked kept one.
        today: the date ages are counted from (default: today, UTC); set it for reproducibility.
    """

    min_score: float | None = 0.7
    max_age_days: int | None = 730
    date_field: str = "published"
    keep_undated: bool = True
    allow_sources: tuple[str, ...] = ()
    deny_sources: tuple[str, ...] = ()
    max_per_source: int | None = None
    near_duplicate: float | None = 0.9
    today: date | None = None

    def __post_init__(self) -> None:
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise RulesError(f"min_score must be in [0, 1], not {self.min_score}")
        if self.max_age_days is not None and self.max_age_days < 0:
            raise RulesError(f"max_age_days must be >= 0, not {self.max_age_days}")
        if self.max_per_source is not None and self.max_per_source < 1:
            raise RulesError(f"max_per_source must be >= 1, not {self.max_per_source}")
        if self.near_duplicate is not None and not 0.0 < self.near_duplicate <= 1.0:
            raise RulesError(f"near_duplicate must be in (0, 1], not {self.near_duplicate}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Rules:
        """Rules from a plain mapping (TOML table, JSON body), checked key by key.

        Raises:
            RulesError: an unknown key or a value of the wrong type.
        """
        return cls(**_convert(values))

    def with_overrides(self, values: dict[str, Any]) -> Rules:
        """A copy with ``values`` applied (``None`` turns a rule off), checked as above."""
        return replace(self, **_convert(values))

    @classmethod
    def from_toml(cls, path: Path) -> Rules:
        """Rules from a TOML file (a ``[rules]`` table, or keys at the top level).

        Raises:
            RulesError: the file is unreadable, not TOML, or holds an invalid rule.
        """
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise RulesError(f"cannot read rules file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise RulesError(f"{path}: not valid TOML ({exc})") from None
        table = data.get("rules", data)
        if not isinstance(table, dict):
            raise RulesError(f"{path}: [rules] must be a table")
        return cls.from_mapping(table)

    def apply(self, ranked: Sequence[Candidate]) -> list[Candidate]:
        """Judge reranked candidates, best first; passing ones get stage ``ruled``."""
        today = self.today or datetime.now(timezone.utc).date()
        kept: list[Candidate] = []
        kept_shingles: list[set[str]] = []
        per_source: dict[str, int] = {}
        out = []
        for c in ranked:
            verdict = self._judge(c, today, kept_shingles, per_source)
            if verdict is not None:
                out.append(replace(c, dropped_by=verdict[0], reason=verdict[1]))
                continue
            passed = replace(c, stage="ruled")
            kept.append(passed)
            kept_shingles.append(_shingles(c.passage.text))
            key = _source_key(c.passage.source)
            per_source[key] = per_source.get(key, 0) + 1
            out.append(passed)
        return out

    def _judge(
        self,
        c: Candidate,
        today: date,
        kept_shingles: list[set[str]],
        per_source: dict[str, int],
    ) -> tuple[str, str] | None:
        p = c.passage
        score = c.rerank_score
        if self.min_score is not None and score is not None and score < self.min_score:
            return "min_score", f"rerank score {score:.3f} < {self.min_score}"
        if self.max_age_days is not None:
            raw = _date_value(p, self.date_field)
            when = _parse_date(raw) if raw is not None else None
            if when is None and not self.keep_undated:
                return "max_age", f"no readable {self.date_field} date"
            if when is not None and (today - when).days > self.max_age_days:
                age = (today - when).days
                return (
                    "max_age",
                    f"{self.date_field} {when} is {age} days old (> {self.max_age_days})",
                )
        if any(source_matches(p.source, s) for s in self.deny_sources):
            return "deny_sources", f"source {p.source!r} is denied"
        if self.allow_sources and not any(source_matches(p.source, s) for s in self.allow_sources):
            return "allow_sources", f"source {p.source!r} is not in the allowlist"
        if self.near_duplicate is not None:
            mine = _shingles(p.text)
            for other, theirs in enumerate(kept_shingles):
                similarity = _jaccard(mine, theirs)
                if similarity >= self.near_duplicate:
                    return "near_duplicate", (
                        f"{similarity:.2f} similar to kept candidate #{other + 1}"
                    )
        if self.max_per_source is not None:
            key = _source_key(p.source)
            if per_source.get(key, 0) >= self.max_per_source:
                return "max_per_source", f"already {self.max_per_source} from {p.source!r}"
        return None


def _convert(values: dict[str, Any]) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(Rules)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise RulesError(f"unknown rule(s) {', '.join(unknown)}; known: {', '.join(names)}")
    given: dict[str, Any] = {}
    for key, value in values.items():
        if key in {"allow_sources", "deny_sources"}:
            if value is None:
                value = []
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise RulesError(f"{key} must be a list of strings")
            value = tuple(value)
        elif key == "today" and isinstance(value, str):
            value = _parse_date(value)
            if value is None:
                raise RulesError(f"today must be an ISO date, not {values[key]!r}")
        elif key in {"min_score", "near_duplicate"} and value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RulesError(f"{key} must be a number")
            value = float(value)
        elif (
            key in {"max_age_days", "max_per_source"}
            and value is not None
            and (isinstance(value, bool) or not isinstance(value, int))
        ):
            raise RulesError(f"{key} must be an integer")
        given[key] = value
    return given


def source_matches(source: str | None, entry: str) -> bool:
    """Whether ``source`` is ``entry``: the same name (any case), or a URL or host on ``entry``'s
    domain or a subdomain of it (``support.apple.com`` matches ``apple.com``)."""
    if not source:
        return False
    s, e = source.strip().lower(), entry.strip().lower()
    if s == e:
        return True
    host = _host(s)
    return host is not None and (host == e or host.endswith("." + e))


def _host(source: str) -> str | None:
    parsed = urlparse(source if "://" in source else f"//{source}")
    host = parsed.hostname
    return host if host and "." in host and " " not in source else None


def _source_key(source: str | None) -> str:
    if not source:
        return ""
    s = source.strip().lower()
    return _host(s) or s


def _date_value(p: Passage, name: str) -> Any:
    if name == "published":
        return p.published
    return p.metadata.get(name)


def _parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date()
    except ValueError:
        return None


_SPACE = re.compile(r"\s+")


def _shingles(text: str) -> set[str]:
    flat = _SPACE.sub(" ", text.lower()).strip()
    if len(flat) <= _SHINGLE:
        return {flat}
    return {flat[i : i + _SHINGLE] for i in range(len(flat) - _SHINGLE + 1)}


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0
