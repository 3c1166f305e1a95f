"""The package's version: one place, read by the package's face, provenance and plugin listings."""

__version__ = "0.1.0"
