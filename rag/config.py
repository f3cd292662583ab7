"""Settings: the one place that reads the environment.

Every field has a description; ``rag config`` prints them. Environment variables use the
``RAG_`` prefix (``RAG_INDEX``, ``RAG_BACKEND``, ``RAG_MODEL``; nested groups with ``__``,
e.g. ``RAG_CHUNK__MAX_TOKENS``) plus the usual ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError


class ChunkSettings(BaseModel):
    max_tokens: int = Field(300, ge=16, le=8192, description="Largest chunk, in tokens of the configured encoding.")
    overlap: int = Field(1, ge=0, le=10, description="Sentences repeated at the start of the next chunk.")


class LLMSettings(BaseModel):
    timeout: float = Field(60.0, gt=0, le=600, description="Seconds before one HTTP request to the model times out.")
    max_output_tokens: int = Field(1024, ge=16, le=65536, description="Output tokens reserved and requested per call.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    context_window: int = Field(16384, ge=1024, description="Model context window in tokens, used for context packing.")
    max_attempts: int = Field(4, ge=1, le=20, description="Attempts per call, first one included.")
    max_retry_seconds: float = Field(60.0, ge=0, le=3600, description="Total time budget for retries of one call.")
    max_retry_after: float = Field(60.0, ge=0, description="Longest Retry-After we honour; longer is reported, not slept.")
    requests_per_minute: int = Field(0, ge=0, description="Shared request rate limit for batch work (0 = none).")
    tokens_per_minute: int = Field(0, ge=0, description="Shared token rate limit for batch work (0 = none).")


class ServerSettings(BaseModel):
    max_body_bytes: int = Field(2_000_000, ge=1024, description="Largest accepted request body.")
    max_question_chars: int = Field(2000, ge=10, description="Longest accepted question.")
    rate_limit_per_minute: int = Field(120, ge=1, description="Requests per minute per API key (or client address).")
    auth_failures_per_minute: int = Field(10, ge=1, description="Failed authentications per minute per client address before 429.")
    request_timeout: float = Field(180.0, gt=0, le=600, description="Seconds before a request is abandoned with 503.")
    allowed_hosts: str = Field("", description="Comma-separated Host names (with :port or without) the server answers besides "
                                               "its own address and localhost; '*' for any (behind a proxy that checks it).")
    allowed_origins: str = Field("", description="Comma-separated origins (scheme://host:port) allowed to change state "
                                                 "besides the server's own page.")
    job_lease_seconds: float = Field(30.0, ge=1, le=3600, description="A briefing job's lease: a worker that has not renewed "
                                     "it for this long (killed, hung, cut off) leaves the job to another worker.")
    metrics_interval: float = Field(1.0, gt=0, le=60, description="Seconds between a worker's metric snapshots, when "
                                    "several workers share them (/metrics adds up every worker's last snapshot).")
    model_aliases: str = Field("", description="Comma-separated model names the OpenAI-compatible endpoint also accepts "
                                               "for its one model `rag` (for clients that insist on a name, e.g. gpt-4o); "
                                               "any other name gets 404 model_not_found.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_nested_delimiter="__", extra="ignore", populate_by_name=True)

    home: Path | None = Field(None, description="One directory for all state: the default index is HOME/index.db, "
                                                "with the response cache and briefing jobs beside it. Default: none "
                                                "(state in ./.rag/, per project).")
    index: Path | str = Field(Path(".rag/index.db"), description="Index: an SQLite file (default .rag/index.db, or "
                              "RAG_HOME/index.db when RAG_HOME is set) or a PostgreSQL database shared by several workers "
                              "and machines (postgresql://USER@HOST/DB). Also --index.")
    encoding: str = Field("cl100k_base", description="tiktoken encoding used for chunking and budgets.")
    backend: Literal["offline", "openai"] | None = Field(
        None, description="Generation backend; default: openai when OPENAI_API_KEY is set, else offline."
    )
    model: str = Field("gpt-4o-mini", description="Model name sent to the OpenAI-compatible endpoint.")
    api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "RAG_API_KEY"), description="Key for the endpoint."
    )
    base_url: str | None = Field(
        None, validation_alias=AliasChoices("OPENAI_BASE_URL", "RAG_BASE_URL"), description="OpenAI-compatible base URL."
    )
    cache: Literal["off", "read-write", "replay"] = Field("read-write", description="Response cache mode.")
    cache_path: Path | None = Field(None, description="Response cache file; default: beside the index.")
    k: int = Field(6, ge=1, le=100, description="Chunks retrieved per question.")
    index_workers: int = Field(0, ge=0, le=16, description="Processes that chunk and embed documents while indexing "
                               "(0: one per core, at most 4; 1: all in the indexing process).")
    prices: Path | None = Field(None, description="Price table (TOML, USD per 1M tokens); default: the bundled rag/prices.toml.")
    api_keys: SecretStr = Field(SecretStr(""), description="Comma-separated bearer tokens accepted by `rag serve`, each "
                                "`[name=]token[:role]` with role read, write (the default) or admin.")
    chunk: ChunkSettings = Field(default_factory=ChunkSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)

    @field_validator("index", mode="before")
    @classmethod
    def _index_kind(cls, value: object) -> object:
        # A URL must stay a string: as a Path, "postgresql://h/db" would lose a slash.
        from .pg import is_database_url

        if is_database_url(value):
            return str(value).strip()
        return Path(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _pick_backend(self) -> "Settings":
        if self.backend is None:
            self.backend = "openai" if self.api_key else "offline"
        if self.home is not None:
            self.home = self.home.expanduser()
            if "index" not in self.model_fields_set:  # --index and RAG_INDEX win over RAG_HOME
                self.index = self.home / "index.db"
        return self

    @property
    def index_is_database(self) -> bool:
        """True when the index (and with it sessions, jobs, the cache, limits, metrics) is in PostgreSQL."""
        return isinstance(self.index, str)

    @property
    def index_file(self) -> Path:
        """The SQLite index file; an error for a database index (state beside it lives in the database)."""
        if isinstance(self.index, str):
            raise ConfigError("this needs an index file, and the index is a database", hint="pass --index PATH")
        return self.index

    @property
    def resolved_cache_path(self) -> Path:
        if self.cache_path is not None:
            return self.cache_path
        if isinstance(self.index, str):  # a database index keeps its cache in the database; this file only for
            return (self.home or Path(".rag")) / "cache.db"  # commands that need one anyway (rag eval's own indexes)
        return self.index.with_name("cache.db")


def load_settings(**overrides: object) -> Settings:
    """Read the environment once, apply CLI overrides (None means 'not given'), validate."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {where}: {first['msg']}", hint=f"{len(err.errors())} problem(s)") from err


def describe_settings(settings: Settings) -> list[tuple[str, str, object, str]]:
    """(dotted name, environment variable, current value, description) for every setting."""
    rows: list[tuple[str, str, object, str]] = []
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            for sub, subfield in type(value).model_fields.items():
                rows.append((f"{name}.{sub}", f"RAG_{name.upper()}__{sub.upper()}", getattr(value, sub), subfield.description or ""))
            continue
        env = {"api_key": "OPENAI_API_KEY", "base_url": "OPENAI_BASE_URL"}.get(name, f"RAG_{name.upper()}")
        shown = "(set)" if isinstance(value, SecretStr) else value
        if name == "cache_path" and value is None:
            # where the cache really is (beside the index)
            shown = "table rag_cache in the index database" if settings.index_is_database else settings.resolved_cache_path
        rows.append((name, env, shown, field.description or ""))
    return rows
