"""The one reader of recprobe's environment variables (``RECPROBE_*``), through pydantic-settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Read afresh by ``settings()`` on each call, so a changed environment takes effect at once."""

    model_config = SettingsConfigDict(env_prefix="RECPROBE_", extra="ignore")
    data_dir: Path | None = Field(None, description="Folder holding the datasets, searched after --data-dir.")
    load_plugins: str | None = Field(
        None, description="Comma-separated entry-point names of the plugins to load (empty: none; unset: all).")
    cache_dir: Path | None = Field(
        None, description="Where fetched datasets are kept (default: the platform's user cache folder, recprobe/datasets).")
    datasets_url: str | None = Field(
        None, description="A mirror serving the datasets' files under their canonical file names (air-gapped clusters).")
    datasets_checksums: Path | None = Field(
        None, description="A file of `<sha256>  <file name>` lines (sha256sum's output) that replace the published ones.")
    openai_model: str | None = Field(None, description="Model name for openai: LLM backends (default: the server's first).")


def settings() -> Settings:
    return Settings()
