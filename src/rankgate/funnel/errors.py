"""Funnel errors: subclasses of rankgate's one exception tree (``rankgate.errors``).

::

    InputError
    ├── CorpusError            a corpus or evaluation file is malformed (file and line named)
    └── UnknownTemplateError   no query template has that name (or version)
    ConfigError
    ├── IndexMissingError      no index at the given directory
    ├── IndexMismatchError     the index was built with another embedding model
    └── RulesError             a rules file or rule value is invalid
"""

from __future__ import annotations

from rankgate.errors import ConfigError, InputError

__all__ = [
    "CorpusError",
    "IndexMismatchError",
    "IndexMissingError",
    "RulesError",
    "UnknownTemplateError",
]


class CorpusError(InputError):
    """A corpus, query or relevance file is malformed; the message names the file and line."""


class UnknownTemplateError(InputError):
    """No query template matches the requested name or version."""


class IndexMissingError(ConfigError):
    """There is no readable index at the given directory."""


class IndexMismatchError(ConfigError):
    """The index was embedded with another model than the one asked for."""


class RulesError(ConfigError):
    """A rules file or a rule value is invalid."""
