"""Project settings: ``urbanlake.yaml`` in the project folder, each key overridable by ``URBANLAKE_…``.

The project folder is ``--project DIR``, else ``URBANLAKE_PROJECT``, else the current folder.
A nested key maps to one environment variable by joining its path with ``_``:
``s3.endpoint`` is ``URBANLAKE_S3_ENDPOINT``, ``lake`` is ``URBANLAKE_LAKE``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from urbanlake.core.errors import ConfigError, ConfigProblem
from urbanlake.core.secrets import ENV_REF, register_secret, resolve, url_password
from urbanlake.core.yamlsource import load_located, problem_at, yaml_problem

PROJECT_FILE = "urbanlake.yaml"
ENV_PREFIX = "URBANLAKE_"
# A setting marked so is a secret: masked wherever it could be shown, and in a settings file
# only as an ${ENV} reference. A password inside any connection-string setting is treated alike.
SECRET: dict[str, Any] = {"secret": True}


def is_postgres(url: str) -> bool:
    """Whether a catalog location names PostgreSQL (a URL or DuckDB's ``postgres:`` form)."""
    return url.startswith(("postgres://", "postgresql://", "postgres:"))


class S3Settings(BaseModel):
    """Where the ``s3://`` lake lives (AWS, MinIO or any S3-compatible server)."""

    model_config = ConfigDict(extra="forbid")
    endpoint: str | None = Field(
        None, description="host:port of an S3-compatible server; empty for AWS"
    )
    access_key_id: str | None = Field(
        None, description="access key (use ${ENV} in the file)", json_schema_extra=SECRET
    )
    secret_access_key: str | None = Field(
        None, description="secret key (use ${ENV} in the file)", json_schema_extra=SECRET
    )
    region: str = Field("us-east-1", description="bucket region")
    use_ssl: bool = Field(True, description="https to the endpoint")
    url_style: Literal["path", "vhost"] = Field("path", description="path style suits MinIO")


class HttpSettings(BaseModel):
    """The shared HTTP client every connector uses."""

    model_config = ConfigDict(extra="forbid")
    timeout: float = Field(30.0, description="seconds to wait for a response")
    max_retries: int = Field(5, description="retries on timeouts, 429 and 5xx before a run fails")
    backoff_base: float = Field(0.5, description="first back-off in seconds; doubles each retry")
    backoff_max: float = Field(
        60.0, description="longest back-off or Retry-After honoured, seconds"
    )
    user_agent: str = Field("urbanlake", description="User-Agent header sent to sources")


class Defaults(BaseModel):
    """Values a connector config gets when it does not say."""

    model_config = ConfigDict(extra="forbid")
    schedule: str = Field("1h", description="how often `urbanlake run` pulls a connector")
    timezone: str = Field("UTC", description="zone of naive timestamps in sources")
    on_failure: Literal["quarantine", "reject_batch", "warn"] = Field(
        "quarantine", description="what a failed quality check does to a batch"
    )


class ApiSettings(BaseModel):
    """The public catalog API."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        "", description="public base URL of the catalog API in links; empty: the request's own"
    )
    host: str = Field("127.0.0.1", description="address `urbanlake serve` listens on")
    port: int = Field(8000, description="port `urbanlake serve` listens on")
    workers: int = Field(1, description="API worker processes")
    memory_limit: str = Field(
        "256MB", description="DuckDB memory per API worker; larger sorts and joins spill to disk"
    )
    max_groups: int = Field(100_000, description="most groups an aggregate answers (more: 400)")
    cache_values: int = Field(
        500_000,
        description="values (rows × columns) of answers each API worker keeps: a version never "
        "changes, so a repeated page, count or aggregate is served from memory; 0: none",
    )
    web_strings: str = Field(
        "",
        description="YAML file (relative to the project) of the web catalog's words, to "
        "translate it; empty: English",
    )


class AccessSettings(BaseModel):
    """API keys: where their hashes are kept and how long a checked key is trusted."""

    model_config = ConfigDict(extra="forbid")
    keys_store: str | None = Field(
        None,
        description="where API keys (salted hashes only) are kept: a SQLite file path or "
        "postgresql://…; default .urbanlake/access.sqlite, outside anything the SQL endpoint reads",
    )
    key_cache_seconds: float = Field(
        30.0,
        description="seconds an API worker trusts a key it has checked; a revoked key stops "
        "working within this time; 0: check every request",
    )
    usage_flush_seconds: float = Field(
        5.0, description="seconds between writes of each key's request count and last use"
    )


class QuotaSettings(BaseModel):
    """Requests allowed per caller and tier, counted where every API worker sees the count, and
    the API's usage kept as lake data (``platform.api_usage``)."""

    model_config = ConfigDict(extra="forbid")
    public: str = Field(
        "60/minute",
        description="requests allowed to each client address calling without a key, in the "
        "limits notation (`60/minute`, `1000/hour`, `10/second; 500/hour`); empty: no limit",
    )
    partner: str = Field(
        "600/minute", description="requests allowed to each partner key; empty: no limit"
    )
    internal: str = Field("", description="requests allowed to each internal key; empty: no limit")
    storage: str = Field(
        "",
        description="where the counts live, seen by every API worker: empty is the SQLite file "
        ".urbanlake/quota.sqlite (the workers of one machine); redis://host:port for replicas "
        "on several machines; memory:// counts per worker",
    )
    usage_flush_seconds: float = Field(
        60.0,
        description="seconds between writes of each worker's request counts to "
        "platform.api_usage (and one when it stops); never a write per request",
    )
    usage_address: Literal["network", "full", "none"] = Field(
        "network",
        description="the address kept in platform.api_usage for a caller without a key: its "
        "network (IPv4 /24, IPv6 /48), the full address, or none; never kept for a key",
    )

    @field_validator("public", "partner", "internal")
    @classmethod
    def _limits_notation(cls, value: str) -> str:
        if value.strip():
            from limits import parse_many  # here, not at import: most commands never serve

            try:
                parse_many(value)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a limit such as 60/minute, 1000/hour or 10/second; 500/hour"
                ) from None
        return value.strip()


SQL_TIERS: dict[str, dict[str, Any]] = {
    "public": {"timeout": 5.0, "row_cap": 10_000},
    "partner": {"timeout": 30.0, "row_cap": 100_000},
    "internal": {"timeout": 120.0, "row_cap": 1_000_000},
}


class SqlTierSettings(BaseModel):
    """What one access tier's query may take on ``POST /api/v1/sql``."""

    model_config = ConfigDict(extra="forbid")
    timeout: float = Field(
        description="seconds a query may run (and stream its rows) before it is interrupted"
    )
    row_cap: int = Field(description="most rows an answer holds; more are cut and it says so")


class SqlSettings(BaseModel):
    """The read-only SQL endpoint (``POST /api/v1/sql``): its own DuckDB per API worker, external
    access off and its configuration locked; a time budget and a row cap per access tier."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(True, description="serve POST /api/v1/sql; false: it answers 404")
    memory_limit: str = Field(
        "256MB",
        description="DuckDB memory of the SQL endpoint per API worker, shared by its queries",
    )
    public: SqlTierSettings = Field(default_factory=lambda: SqlTierSettings(**SQL_TIERS["public"]))
    partner: SqlTierSettings = Field(
        default_factory=lambda: SqlTierSettings(**SQL_TIERS["partner"])
    )
    internal: SqlTierSettings = Field(
        default_factory=lambda: SqlTierSettings(**SQL_TIERS["internal"])
    )

    @model_validator(mode="before")
    @classmethod
    def _tier_defaults(cls, data: Any) -> Any:
        """A tier given in part (``URBANLAKE_SQL_PUBLIC_TIMEOUT=2``) keeps its other defaults."""
        if isinstance(data, dict):
            data = dict(data)
            for tier, defaults in SQL_TIERS.items():
                if isinstance(data.get(tier), dict):
                    data[tier] = {**defaults, **data[tier]}
        return data

    def tier(self, name: str) -> SqlTierSettings:
        """The budget of an access tier (an unknown tier gets the public one)."""
        found = getattr(self, name, None) if name in ("public", "partner", "internal") else None
        return found if isinstance(found, SqlTierSettings) else self.public


class Settings(BaseModel):
    """Everything a run needs to know about where things are."""

    model_config = ConfigDict(extra="forbid")
    project_dir: Path = Field(
        Path("."), description="the city project folder (not set in the file)"
    )
    name: str = Field("city", description="the city's name, shown in catalogs")
    lake: str = Field(
        "lake", description="lake URI: a folder (relative to the project) or s3://bucket/prefix"
    )
    catalog: str | None = Field(
        None,
        description="DuckLake catalog: a SQLite file path or postgresql://user@host:port/db; "
        "default <lake>/catalog.sqlite, or .urbanlake/catalog.sqlite for an s3:// lake",
    )
    data_inlining_row_limit: int = Field(
        10, description="batches up to this many rows are kept in the catalog until compaction"
    )
    s3: S3Settings = Field(default_factory=S3Settings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    defaults: Defaults = Field(default_factory=Defaults)
    api: ApiSettings = Field(default_factory=ApiSettings)
    sql: SqlSettings = Field(default_factory=SqlSettings)
    quota: QuotaSettings = Field(default_factory=QuotaSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)

    @property
    def is_remote(self) -> bool:
        return self.lake.startswith("s3://")

    @property
    def lake_uri(self) -> str:
        """Absolute lake location: ``s3://…`` or a local absolute path."""
        if self.is_remote:
            return self.lake.rstrip("/")
        path = Path(self.lake.removeprefix("file://"))
        return str(path if path.is_absolute() else (self.project_dir / path).resolve())

    @property
    def state_dir(self) -> Path:
        """Local working folder: DuckDB extensions and, for a remote lake, the default catalog."""
        return self.project_dir / ".urbanlake"

    @property
    def catalog_url(self) -> str:
        if self.catalog:
            if is_postgres(self.catalog):
                return self.catalog
            path = Path(self.catalog.removeprefix("sqlite:///").removeprefix("sqlite:"))
            return str(path if path.is_absolute() else (self.project_dir / path).resolve())
        if self.is_remote:
            return str((self.state_dir / "catalog.sqlite").resolve())
        return str(Path(self.lake_uri) / "catalog.sqlite")

    @property
    def connectors_dir(self) -> Path:
        return self.project_dir / "connectors"

    @property
    def quality_dir(self) -> Path:
        return self.project_dir / "quality"

    @property
    def catalog_dir(self) -> Path:
        return self.project_dir / "catalog"


def leaf_settings(
    model: type[BaseModel] | None = None, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    """Every setting that holds a value (not a group), as (key path, field info)."""
    model = model or Settings
    leaves: list[tuple[tuple[str, ...], Any]] = []
    for name, info in model.model_fields.items():
        if name == "project_dir":
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            leaves.extend(leaf_settings(annotation, (*path, name)))
        else:
            leaves.append(((*path, name), info))
    return leaves


def env_name(path: tuple[str, ...]) -> str:
    return ENV_PREFIX + "_".join(path).upper()


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings named by ``URBANLAKE_…`` variables in ``env``, as a nested dict."""
    out: dict[str, Any] = {}
    for path, _ in leaf_settings():
        if env_name(path) in env:
            node = out
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = env[env_name(path)]
    return out


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def find_project(
    project: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Path:
    env = os.environ if env is None else env
    chosen = project or env.get(f"{ENV_PREFIX}PROJECT") or "."
    return Path(chosen).resolve()


def load_settings(
    project: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Settings of the project: file, then environment, then keyword overrides."""
    env = os.environ if env is None else env
    project_dir = find_project(project, env)
    path = project_dir / PROJECT_FILE
    data: dict[str, Any] = {}
    if path.exists():
        try:
            doc = load_located(path)
        except yaml.YAMLError as exc:
            raise ConfigError([yaml_problem(path, exc)]) from None
        loaded = doc.data or {}
        if not isinstance(loaded, dict):
            raise ConfigError([ConfigProblem(str(path), 1, "", "expected a mapping of settings")])
        literal = [problem_at(doc, key, message) for key, message in literal_secrets(loaded)]
        if literal:
            raise ConfigError(literal)
        data = resolve(loaded, env, where=str(path))
    data = _merge(data, env_overrides(env))
    data = _merge(data, overrides)
    register_secrets(data)
    data["project_dir"] = project_dir
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [
                ConfigProblem(str(path), None, ".".join(str(p) for p in err["loc"]), err["msg"])
                for err in exc.errors()
            ]
        ) from None


def _secret_values(
    data: dict[str, Any],
) -> list[tuple[tuple[str, ...], str, bool]]:
    """(key path, value, declared secret) of every string setting in ``data``."""
    found = []
    for key, info in leaf_settings():
        node: Any = data
        for part in key:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, str) and node:
            extra = info.json_schema_extra
            found.append((key, node, isinstance(extra, dict) and bool(extra.get("secret"))))
    return found


def literal_secrets(data: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Secrets written into a settings file as they are, not as ``${ENV}`` references."""
    problems = []
    for key, value, declared in _secret_values(data):
        hint = f"write ${{SOME_VARIABLE}} and set it, or set {env_name(key)}"
        if declared and not ENV_REF.search(value):
            problems.append((key, f"a secret may not be written in the settings file: {hint}"))
            continue
        password = url_password(value)
        if password and not ENV_REF.search(password):
            problems.append(
                (
                    key,
                    f"a password may not be written in the settings file: {hint} "
                    "(or put ${SOME_VARIABLE} where the password is)",
                )
            )
    return problems


def register_secrets(data: dict[str, Any]) -> None:
    """Every secret setting, from the file or the environment, masked from now on."""
    for _, value, declared in _secret_values(data):
        if declared:
            register_secret(value)
        password = url_password(value)
        if password:
            register_secret(password)


def documented_settings() -> list[tuple[str, str, str]]:
    """(key, environment variable, description) of every setting, for docs and their test."""
    return [
        (".".join(path), env_name(path), info.description or "") for path, info in leaf_settings()
    ]
