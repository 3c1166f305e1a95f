"""`recprobe serve`: a local web explorer over a run (``recprobe.serve.app``)."""

from recprobe.serve.app import create_app

__all__ = ["create_app"]
