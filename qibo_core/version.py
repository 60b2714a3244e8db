"""The version of qibo-core: defined here once, read by pyproject.toml and the package."""

__version__ = "0.1.0"
