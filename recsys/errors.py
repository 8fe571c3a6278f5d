"""Error hierarchy. Messages say what was expected, what arrived, and where.

`raise` these for caller mistakes (bad files, flags, request bodies); `assert` only invariants.
The CLI maps them to exit code 2 with the message; serving maps them to 4xx.
"""

from __future__ import annotations


class RecsysError(Exception):
    """Base of every error this project raises on purpose."""


class SchemaError(RecsysError, ValueError):
    """A table, matrix or file does not have the expected columns, types or shape."""


class UnknownIdError(RecsysError, KeyError):
    """An id (user, post, baseline, modality...) that the data or registry does not know."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ArtifactError(RecsysError, OSError):
    """An artifact (dataset dir, feature store, checkpoint, bundle) is missing, corrupt or mismatched."""


class UnsafePickleError(ArtifactError):
    """A pickle references a global outside the allow-list."""


class ConfigError(RecsysError, ValueError):
    """A configuration value or CLI flag is out of range or inconsistent."""
