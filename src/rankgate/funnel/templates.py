"""Named, versioned query templates applied to the query before reranking.

A cross-encoder judges better when the query says what to judge (the troubleshooting template
turns "iPhone 15充电慢怎么办" into a request that names the likely causes and asks for a fix).
Templates are chosen per call as ``name`` (latest version) or ``name@version``. User templates
come from a TOML file::

    [[templates]]
    name = "support"
    version = 2
    description = "Customer support question"
    template = "A customer asks: {query} Does the document answer it?"
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from rankgate.funnel.errors import RulesError, UnknownTemplateError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["BUILTIN_TEMPLATES", "QueryTemplate", "TemplateRegistry"]


@dataclass(frozen=True, slots=True)
class QueryTemplate:
    """A query rewrite: ``template`` holds ``{query}`` once.

    Example:
        >>> QueryTemplate("q", 1, "Question: {query}").apply("why?")
        'Question: why?'
    """

    name: str
    version: int
    template: str
    description: str = ""
    origin: str = "builtin"

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def apply(self, query: str) -> str:
        # str.replace, not str.format: user templates may hold literal braces.
        return self.template.replace("{query}", query.strip())


BUILTIN_TEMPLATES: tuple[QueryTemplate, ...] = (
    QueryTemplate("plain", 1, "{query}", "The query unchanged."),
    QueryTemplate(
        "troubleshooting",
        1,
        "A user reports a problem: {query} Possible causes include hardware faults, wrong "
        "settings or accessories, software bugs and the environment. Judge whether the document "
        "gives valid troubleshooting steps or a solution for this problem.",
        "Structured troubleshooting request: likely causes, then a fix, in English.",
    ),
    QueryTemplate(
        "troubleshooting-zh",
        1,
        "用户反馈：{query}。可能原因包括硬件故障、设置或配件不当、系统Bug、环境因素。"
        "请判断以下文档是否提供有效的排查步骤或解决方案。",
        "Structured troubleshooting request: likely causes, then a fix, in Chinese.",
    ),
    QueryTemplate(
        "question",
        1,
        "Question: {query} Judge whether the document answers this question directly.",
        "A direct question to be answered.",
    ),
)


class TemplateRegistry:
    """Built-in templates plus any loaded from files; later versions shadow earlier ones."""

    def __init__(self, templates: tuple[QueryTemplate, ...] = BUILTIN_TEMPLATES) -> None:
        self._by_ref: dict[str, QueryTemplate] = {}
        for t in templates:
            self.add(t)

    def add(self, template: QueryTemplate) -> None:
        """Register ``template``; a user template may replace a built-in of the same version.

        Raises:
            RulesError: the template lacks ``{query}``.
        """
        if "{query}" not in template.template:
            raise RulesError(f"template {template.ref} must contain {{query}}")
        self._by_ref[template.ref] = template

    def load(self, path: Path) -> None:
        """Add the ``[[templates]]`` of a TOML file.

        Raises:
            RulesError: unreadable file, invalid TOML, or a template without name/template.
        """
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise RulesError(f"cannot read templates file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise RulesError(f"{path}: not valid TOML ({exc})") from None
        for n, entry in enumerate(data.get("templates", []), 1):
            name, text = entry.get("name"), entry.get("template")
            version = entry.get("version", 1)
            if not isinstance(name, str) or not isinstance(text, str) or "@" in name:
                raise RulesError(f"{path}: template {n} needs a 'name' (no '@') and 'template'")
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise RulesError(f"{path}: template {name!r} version must be an integer >= 1")
            desc = str(entry.get("description", ""))
            self.add(QueryTemplate(name, version, text, desc, origin=str(path)))

    def all(self) -> list[QueryTemplate]:
        """Every template, by name then version."""
        return sorted(self._by_ref.values(), key=lambda t: (t.name, t.version))

    def get(self, ref: str) -> QueryTemplate:
        """``name@version``, or ``name`` for its latest version.

        Raises:
            UnknownTemplateError: no such template (the message lists the known ones).
        """
        name, _, version = ref.partition("@")
        matches = [t for t in self._by_ref.values() if t.name == name]
        if version:
            matches = [t for t in matches if str(t.version) == version]
        if not matches:
            known = ", ".join(t.ref for t in self.all())
            raise UnknownTemplateError(f"no query template {ref!r}; known: {known}")
        return max(matches, key=lambda t: t.version)
