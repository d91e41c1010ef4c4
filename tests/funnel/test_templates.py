"""Query templates: built-in, versioned, user files."""

from __future__ import annotations

import pytest

from rankgate.funnel import QueryTemplate, RulesError, TemplateRegistry, UnknownTemplateError
from tests.funnel.conftest import EXAMPLES


def test_seed_example_becomes_a_structured_troubleshooting_query():
    t = TemplateRegistry().get("troubleshooting-zh")
    assert t.apply("iPhone 15充电慢怎么办") == (
        "用户反馈：iPhone 15充电慢怎么办。可能原因包括硬件故障、设置或配件不当、系统Bug、环境因素。"
        "请判断以下文档是否提供有效的排查步骤或解决方案。"
    )


def test_user_templates_are_versioned():
    registry = TemplateRegistry()
    registry.load(EXAMPLES / "templates.toml")
    assert registry.get("support").ref == "support@2"
    assert registry.get("support@1").apply("Hi?") == (
        "A customer asks: Hi? Does the document tell them what to do?"
    )
    refs = [t.ref for t in registry.all()]
    assert refs.index("support@1") + 1 == refs.index("support@2")
    with pytest.raises(UnknownTemplateError, match="support@1, support@2"):
        registry.get("support@3")


def test_braces_in_templates_are_literal():
    assert QueryTemplate("j", 1, '{"q": "{query}"}').apply("x") == '{"q": "x"}'


def test_a_template_needs_the_query(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[[templates]]\nname = "bad"\ntemplate = "no slot"\n', encoding="utf-8")
    with pytest.raises(RulesError, match="must contain"):
        TemplateRegistry().load(path)
