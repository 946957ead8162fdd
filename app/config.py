"""Runtime settings, read from the environment (prefix KOKYAKU_) and an optional .env file."""

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOKYAKU_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./kokyaku.db"
    database_pool_size: int = Field(default=10, ge=1)
    redis_url: str | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)

    cors_origins: Annotated[list[str], NoDecode] = []
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_import_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)

    rate_limit: int = Field(default=1200, ge=1, description="Requests per key per window")
    rate_limit_window_seconds: int = Field(default=60, ge=1)

    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    api_key_cache_seconds: float = Field(default=5.0, ge=0)

    log_level: str = "INFO"
    access_log: bool = True

    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=60)
    dispatcher: Literal["on", "off"] = "on"
    segment_sweep_seconds: int = Field(
        default=900, ge=10, description="How often each dynamic segment is re-evaluated in full"
    )
    # RFM scores, churn risk and the LTV model are recomputed when older than this, by
    # `kokyaku worker` and by `serve` when it runs the dispatcher; 0 turns the schedule off.
    insights_refresh_seconds: int = Field(default=6 * 3600, ge=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, origins: list[str]) -> list[str]:
        if "*" in origins:
            raise ValueError("list the frontend origins explicitly; '*' is not allowed")
        return origins

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
