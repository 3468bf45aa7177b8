"""Settings of the web service, read once at the edge: environment (``PLANNER_*``) or a file.

Examples
--------
>>> import os
>>> os.environ["PLANNER_MAX_UPLOAD_MB"] = "5"
>>> Settings(store="p.gpkg").max_upload_mb
5.0
>>> del os.environ["PLANNER_MAX_UPLOAD_MB"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from planner.ingest import ArchiveLimits


class Settings(BaseSettings):
    """Web-service settings; each can be set as ``PLANNER_<NAME>`` or in a ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="PLANNER_", extra="ignore")

    store: str = Field(description="Location of the programme store (.gpkg path or "
                                   "postgresql:// URL).")
    engine: Literal["single", "dask", "postgis"] = Field(
        "single", description="How the ledger is built: in the service's process, tiled on a "
                              "local dask cluster, or inside a PostGIS store; same figures.")
    workers: int = Field(2, gt=0, description="Dask workers or database sessions of the "
                                              "engine.")
    max_upload_mb: float = Field(100.0, gt=0, description="Largest upload accepted [MB].")
    max_archive_members: int = Field(2_000, gt=0, description="Most files in an uploaded zip.")
    max_unpacked_mb: float = Field(2_048.0, gt=0, description="Largest unpacked zip [MB].")
    max_zip_ratio: float = Field(200.0, gt=1, description="Highest compression ratio of a zip.")
    max_vertices: int = Field(5_000_000, gt=0,
                              description="Most vertices in one uploaded file.")
    cors_origins: list[str] = Field(default_factory=list,
                                    description="Origins allowed to call the API from a browser.")
    geojson_page_max: int = Field(10_000, gt=0, description="Most features per GeoJSON page.")
    max_upload_seconds: float = Field(
        120.0, gt=0, description="Longest time one upload may be read, checked and written "
                                 "[s]; past it the import is stopped and nothing lands.")
    upload_workers: int = Field(2, gt=0, description="Uploads imported at once (each in a "
                                                     "worker process of its own).")
    upload_dir: str | None = Field(None, description="Where uploads are spooled (default: the "
                                                     "system temporary directory).")
    trusted_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host:port) whose pages may post forms with the sign-in "
                    "cookie besides the service's own, e.g. its public URL behind a proxy "
                    "that rewrites Host.")

    @property
    def max_upload_bytes(self) -> int:
        """:attr:`max_upload_mb` in bytes."""
        return int(self.max_upload_mb * 1_000_000)

    @property
    def archive_limits(self) -> ArchiveLimits:
        """The zip limits for ingest."""
        return ArchiveLimits(max_members=self.max_archive_members,
                             max_total_bytes=int(self.max_unpacked_mb * 1_000_000),
                             max_ratio=self.max_zip_ratio)


def load_settings(store: str | None = None, env_file: Path | None = None) -> Settings:
    """Settings from the environment, a ``.env``-style file, and a store given directly."""
    kwargs: dict[str, object] = {}
    if store is not None:
        kwargs["store"] = store
    if env_file is not None:
        kwargs["_env_file"] = env_file
    return Settings(**kwargs)  # type: ignore[arg-type]
