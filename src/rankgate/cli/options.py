"""Command-line options derived from the settings classes: every setting is declared once.

A setting's type, default, description and environment variable live on its pydantic field
(``ServerSettings``, ...); :func:`setting_option` builds the typer option from it, and
:func:`settings_table` the row of the configuration reference in the docs, so that the help,
the environment variable and the docs cannot drift apart (tests/test_settings_reference.py
compares the committed tables with what this module generates). A field may carry, in
``json_schema_extra``:

- ``flags``: the option's names when they are not ``--field-name`` (``["--port", "-p"]``, or
  ``["--public-playground/--private-playground"]`` for a switch);
- ``default_text``: the default in words when the value alone does not say it ("the model's id").

A field whose environment variable is not its class's prefix and name (``--json`` is
``RANKGATE_JSON`` in every command) gives it as its ``validation_alias``, with
``validate_by_name`` on its class.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from rankgate.config import settings_or_error

__all__ = [
    "REFERENCE_DOCS",
    "env_var",
    "flags",
    "setting_default",
    "setting_option",
    "settings_from",
    "settings_table",
    "update_references",
    "with_reference",
]


def _field(model: type[BaseModel], name: str) -> FieldInfo:
    try:
        return model.model_fields[name]
    except KeyError:
        raise KeyError(f"{model.__name__} has no setting {name!r}") from None


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def env_var(model: type[BaseModel], name: str) -> str:
    """The environment variable of a setting: the class's ``env_prefix`` and the field name,
    or the field's ``validation_alias`` where it names another (``RANKGATE_JSON``)."""
    alias = _field(model, name).validation_alias
    if isinstance(alias, str):
        return alias.upper()
    prefix = str(model.model_config.get("env_prefix", ""))
    return f"{prefix}{name}".upper()


def flags(model: type[BaseModel], name: str) -> list[str]:
    """The option's names: ``json_schema_extra["flags"]``, else ``--name`` (``--name/--no-name``
    for a boolean)."""
    info = _field(model, name)
    given = _extra(info).get("flags")
    if given:
        return [str(f) for f in given]
    dashed = name.replace("_", "-")
    if info.annotation is bool:
        return [f"--{dashed}/--no-{dashed}"]
    return [f"--{dashed}"]


def setting_default(model: type[BaseModel], name: str) -> str:
    """The default as the help and the docs show it."""
    info = _field(model, name)
    text = _extra(info).get("default_text")
    if text:
        return str(text)
    value = info.default
    if value is PydanticUndefined and info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None or value == [] or value == "":
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def setting_option(model: type[BaseModel], name: str, *, panel: str | None = None) -> Any:
    """The typer option of a setting: its names, environment variable, and help (the field's
    description and its default). The option's value is None when not given, so that the
    environment and the default stay the settings class's."""
    info = _field(model, name)
    default = setting_default(model, name)
    shown = "" if default == "required" else f" Default: {default}."  # click says [required]
    help_text = f"{info.description or ''}{shown}".strip()
    return typer.Option(
        *flags(model, name),
        envvar=env_var(model, name),
        rich_help_panel=panel,
        help=help_text,
        show_default=False,
    )


Settings = TypeVar("Settings", bound=BaseModel)


def settings_from(model: type[Settings], options: Mapping[str, object], what: str) -> Settings:
    """``model`` from a command's parameters (pass ``locals()``): every parameter named as a
    field is forwarded, and ``None`` (not given) leaves the environment or default in force.

    Raises:
        ConfigError: an invalid value, or a required setting neither given nor in the
            environment; the message names ``what`` and the setting (a missing one by its flag).
    """
    given = {n: options[n] for n in model.model_fields if n in options}

    def missing(name: str) -> str:
        return f"{flags(model, name)[0]} is required (or {env_var(model, name)})"

    return settings_or_error(model, what, given, missing=missing)


def settings_table(model: type[BaseModel], names: Iterable[str] | None = None) -> str:
    """Markdown rows ``| flags | environment variable | default | meaning |`` for ``names``
    (default: every field, in declaration order), with the header."""
    rows = [
        "| flag | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for name in names or model.model_fields:
        info = _field(model, name)
        shown = ", ".join(f"`{f.replace('/', ' / ')}`" for f in flags(model, name))
        meaning = (info.description or "").replace("|", "\\|")
        rows.append(
            f"| {shown} | `{env_var(model, name)}` | {setting_default(model, name)} | {meaning} |"
        )
    return "\n".join(rows) + "\n"


def _marker(name: str) -> tuple[str, str]:
    return (
        f"<!-- generated from {name} by `make reference`; do not edit -->",
        f"<!-- end of generated {name} -->",
    )


def _settings_classes() -> dict[str, type[BaseModel]]:
    from rankgate.backends.onnx_export import ExportSettings
    from rankgate.bench.settings import BenchServerSettings, BenchSettings
    from rankgate.cli.calibrate_settings import CalibrateSettings
    from rankgate.cli.command_settings import (
        DownloadSettings,
        OutputSettings,
        SearchOutputSettings,
        ServeCommandSettings,
    )
    from rankgate.cli.demo_settings import DemoSettings, HealthReportSettings
    from rankgate.cli.rerank_settings import RerankCallSettings
    from rankgate.config import RerankerSettings
    from rankgate.funnel.settings import EvalSettings, FunnelSettings
    from rankgate.learn.finetune import FinetuneJob, FinetuneOptions
    from rankgate.ray.settings import BatchSettings, RaySettings
    from rankgate.server.settings import ServerSettings

    classes: list[type[BaseModel]] = [
        ServerSettings,
        RerankerSettings,
        RerankCallSettings,
        FinetuneOptions,
        FinetuneJob,
        FunnelSettings,
        EvalSettings,
        RaySettings,
        BatchSettings,
        ExportSettings,
        DemoSettings,
        HealthReportSettings,
        BenchSettings,
        BenchServerSettings,
        CalibrateSettings,
        OutputSettings,
        SearchOutputSettings,
        DownloadSettings,
        ServeCommandSettings,
    ]
    return {model.__name__: model for model in classes}


def with_reference(text: str) -> str:
    """``text`` with every generated settings block (between the markers of a settings class)
    replaced by that class's :func:`settings_table`."""
    for name, model in _settings_classes().items():
        begin, end = _marker(name)
        block = re.compile(re.escape(begin) + r"\n.*?" + re.escape(end), re.DOTALL)
        replacement = f"{begin}\n{settings_table(model)}{end}"
        text = block.sub(lambda _, new=replacement: new, text)  # type: ignore[misc]
    return text


REFERENCE_DOCS = (
    "README.md",
    "docs/http-api.md",
    "docs/finetuning.md",
    "docs/funnel.md",
    "docs/ray.md",
    "docs/insight.md",
    "benchmarks/README.md",
)
"""The documents that hold generated settings tables, relative to the repository."""


def update_references(root: Path) -> None:
    """Rewrite the generated blocks of each of :data:`REFERENCE_DOCS` under ``root``."""
    for name in REFERENCE_DOCS:
        doc = root / name
        doc.write_text(with_reference(doc.read_text(encoding="utf-8")), encoding="utf-8")
