"""The one configuration model.

Precedence, highest first: CLI flags (passed as keyword overrides), environment variables
``PIPELINE_*`` (nested keys joined with ``__``, e.g. ``PIPELINE_DEDUPE__TRACKING_PARAMS``), the TOML
file (``--config FILE``, else ``$PIPELINE_CONFIG``, else ``./config/pipeline.toml`` when present), and
the built-in defaults below, which equal those of ``config/pipeline.toml`` (a test keeps them equal).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("config") / "pipeline.toml"

LogLevel = Literal["debug", "info", "warning", "error"]


class ConfigError(Exception):
    """A configuration value is wrong; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DedupeSettings(_Section):
    tracking_params: list[str] = [
        "utm_*", "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "ocid",
        "cmpid", "ref", "ref_src", "_ga", "igshid", "yclid", "spm", "cid",
    ]
    shingle_words: int = Field(3, ge=1, le=10)
    num_perm: int = Field(48, ge=8, le=1024)
    bands: int = Field(16, ge=1)
    seed: int = Field(1, ge=0)
    min_words: int = Field(8, ge=1)
    anchor_words: int = Field(8, ge=3)
    containment: float = Field(0.8, gt=0, le=1)
    title_min_words: int = Field(5, ge=2)
    title_days: float = Field(7.0, ge=0)
    max_candidates: int = Field(200, ge=1)

    @model_validator(mode="after")
    def _bands_divide_perm(self) -> DedupeSettings:
        if self.num_perm % self.bands:
            raise ValueError(f"dedupe.bands ({self.bands}) must divide dedupe.num_perm "
                             f"({self.num_perm})")
        return self

    def params(self) -> Any:
        """The picklable parameters the dedupe functions take (``dedupe.DedupeParams``)."""
        from .dedupe import DedupeParams

        return DedupeParams(
            tracking_params=tuple(self.tracking_params),
            **self.model_dump(exclude={"tracking_params"}),
        )


def _enrich_settings_model() -> type[_Section]:
    """``[enrich]``: ``enabled`` plus one sub-table per enricher that has options, built from the
    registry so that adding an enricher never means editing this file (only the TOML file)."""
    from .enrichers import REGISTRY, default_enabled

    fields: dict[str, Any] = {"enabled": (list[str], default_enabled())}
    for enricher in REGISTRY:
        if enricher.options is not None:
            fields[enricher.name] = (enricher.options, Field(default_factory=enricher.options))
    return create_model("EnrichSettings", __base__=_Section, __module__=__name__, **fields)


EnrichSettings = _enrich_settings_model()


def enricher_options(section: Any) -> dict[str, Any]:
    """{enricher name: its options} from an ``EnrichSettings``."""
    from .enrichers import REGISTRY

    return {e.name: getattr(section, e.name) for e in REGISTRY if e.options is not None}


class LimitsSettings(_Section):
    """Bounds that keep hostile or broken files from costing memory or time."""

    max_depth: int = Field(16, gt=0)
    max_aliases: int = Field(100, ge=0)
    max_items: int = Field(1000, gt=0)
    max_chars: int = Field(100_000, gt=0)
    max_expanded: int = Field(20_000, gt=0)


class ServeSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8001, ge=1, le=65535)
    metadata: Path = Path("config/datasette.yml")
    # The rest are Datasette settings of the same name (passed to it as --setting would be).
    sql_time_limit_ms: int = Field(3000, gt=0)
    facet_time_limit_ms: int = Field(1000, gt=0)
    facet_suggest_time_limit_ms: int = Field(50, gt=0)
    suggest_facets: bool = False
    default_page_size: int = Field(50, gt=0)
    max_returned_rows: int = Field(1000, gt=0)
    default_cache_ttl: int = Field(0, ge=0)
    default_allow_sql: bool = True
    allow_download: bool = True

    def datasette_settings(self) -> dict[str, Any]:
        return self.model_dump(exclude={"host", "port", "metadata"})


class WatchSettings(_Section):
    """The daemon (``pipeline watch``); see config/pipeline.toml for what each key means."""

    quiet_period_ms: int = Field(200, ge=0)
    reconcile_interval_s: float = Field(600, ge=0)
    batch_max_files: int = Field(500, gt=0)
    batch_max_ms: int = Field(100, ge=0)
    queue_max: int = Field(10_000, gt=0)
    polling: bool = False
    poll_interval_s: float = Field(1.0, gt=0)
    heartbeat_s: float = Field(5.0, gt=0)
    stale_after_s: float = Field(60.0, gt=0)


class Settings(BaseSettings):
    """Everything the pipeline can be told. Keys mirror ``config/pipeline.toml``."""

    model_config = SettingsConfigDict(
        env_prefix="PIPELINE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    db: Path = Path("var/articles.db")
    log_file: Path | None = Path("var/log/pipeline.jsonl")
    log_level: LogLevel = "info"
    log_file_level: LogLevel = "debug"
    log_format: Literal["auto", "console", "json"] = "auto"
    patterns: list[str] = ["*.md", "*.markdown"]
    ignore: list[str] = [".*", "*~", "*.tmp", "*.swp", "*.swx", "4913", "*.part", "*.crdownload"]
    max_file_bytes: int = Field(5_000_000, gt=0)
    follow_symlinks: bool = False
    workers: int = Field(0, ge=0)
    # two batches are in the writer's memory at a time (~20 KB a file once unpickled): 500 a
    # batch cost ~14 MB more at the peak than 250, for no speed measured at 20,000 files
    batch_size: int = Field(250, gt=0)
    bulk_min_files: int = Field(5000, ge=0)
    busy_timeout_ms: int = Field(30_000, ge=0)
    lock_retry_s: float = Field(600.0, ge=0)

    dedupe: DedupeSettings = DedupeSettings()
    enrich: EnrichSettings = EnrichSettings()  # type: ignore[valid-type]
    limits: LimitsSettings = LimitsSettings()
    serve: ServeSettings = ServeSettings()
    watch: WatchSettings = WatchSettings()

    @field_validator("log_level", "log_file_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_file", mode="before")
    @classmethod
    def _empty_is_off(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("enrich", mode="after")
    @classmethod
    def _known_enrichers(cls, value: Any) -> Any:
        from .enrichers import unknown_enrichers

        unknown = unknown_enrichers(value.enabled)
        if unknown:
            raise ValueError(f"unknown enricher(s) in enrich.enabled: {', '.join(unknown)}")
        return value

    @field_validator("db", "log_file", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        # Relative paths resolve against the working directory, once, at load time.
        return None if value is None else Path(os.path.abspath(value.expanduser()))

    @property
    def effective_workers(self) -> int:
        return self.workers or (os.cpu_count() or 1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        toml_file = _config_file_in_use.get("path")
        if toml_file is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=toml_file),)
        return sources


# load_settings() tells settings_customise_sources which file to read; a class attribute would
# be shared state too, this at least keeps it in one visible place.
_config_file_in_use: dict[str, Path | None] = {"path": None}


def find_config_file(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The TOML file to read: explicit, else $PIPELINE_CONFIG, else ./config/pipeline.toml."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    env = os.environ.get("PIPELINE_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (from PIPELINE_CONFIG)")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(
    config_file: str | os.PathLike[str] | None = None, **overrides: Any
) -> Settings:
    """Build the effective settings; ``overrides`` are CLI flags (None means "not given")."""
    path = find_config_file(config_file)
    if path is not None:
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    given = {k: v for k, v in overrides.items() if v is not None}
    _config_file_in_use["path"] = path
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path)) from exc
    finally:
        _config_file_in_use["path"] = None


def _explain(exc: ValidationError, path: Path | None) -> str:
    where = f" (file {path}, env PIPELINE_*, or a flag)" if path else " (env PIPELINE_* or a flag)"
    lines = [f"invalid configuration{where}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        got = err.get("input")
        lines.append(f"  {key}: {err['msg']} (got {got!r})")
    return "\n".join(lines)


def dump_settings(settings: Settings) -> dict[str, Any]:
    return settings.model_dump(mode="json")
