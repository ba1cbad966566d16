"""Typed settings of the live engine (DESIGN.md §7, §9).

Precedence, highest first: flags (keyword arguments / the ``flags`` mapping of
:func:`load_settings`; ``None`` values mean "flag not given") > environment variables
(``ESCALATION_<FIELD>``, e.g. ``ESCALATION_BROKER``) > the optional settings file (TOML or YAML
with the field names as keys; ``--settings``/``settings_file=`` or ``ESCALATION_SETTINGS_FILE``)
> defaults. Empty environment variables count as unset.

Invariants:

- ``broker is None`` means "start the embedded Tansu broker"; otherwise it is normalised to
  ``kafka://host:port[,host:port...]`` (port 9092 when omitted).
- ``profile="auto"`` resolves to ``test`` for the embedded broker and ``production`` otherwise.
  The ``test`` profile holds the client settings Tansu needs (DESIGN.md §7); an explicitly set
  tuning field (``broker_session_timeout`` ...) always wins over the profile.
- ``exactly_once`` is refused with the embedded broker (Tansu has no transactions).
- Secrets (:data:`SECRET_FIELDS`, typed ``SecretStr``) never appear in a repr, a log line or an
  error: their values are remembered by :mod:`escalation.secrets` as soon as they are read (also
  when validation then fails), errors are :class:`SettingsError` without input values, and a
  broker URL carrying credentials is refused (Kafka takes them as SASL settings), its user-info
  masked in the message.
- Nothing here opens a socket or imports Faust; :meth:`LiveSettings.faust_credentials` imports
  ``faust`` lazily.
"""

from __future__ import annotations

import contextvars
import ssl
import tomllib
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from escalation.secrets import redact, redact_url, remember, validation_message

__all__ = ["LiveSettings", "SECRET_FIELDS", "SettingsError", "TEST_PROFILE", "SETTINGS_FILE_ENV", "load_settings",
           "parse_broker"]

#: Settings holding secrets (typed ``SecretStr``; a unit test keeps this list complete).
SECRET_FIELDS = ("sasl_password",)


class SettingsError(ValueError):
    """Unusable settings; the message holds no secret (see the module docstring)."""

SETTINGS_FILE_ENV = "ESCALATION_SETTINGS_FILE"

#: Client settings that make Faust usable on the embedded Tansu broker (DESIGN.md §7).
TEST_PROFILE: dict[str, float | int] = {
    "broker_session_timeout": 2.0,
    "broker_heartbeat_interval": 0.5,
    "producer_max_batch_size": 1,
    "table_standby_replicas": 0,
}
_TUNING = tuple(TEST_PROFILE)

_file_data: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("_file_data", default={})


def parse_broker(value: str) -> list[str]:
    """``kafka://h1:9092,h2:9092`` (also ``;``-separated, schemes optional) -> ``["h1:9092", ...]``."""
    hosts = []
    for item in value.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        if "://" in item:
            scheme, item = item.split("://", 1)
            if scheme != "kafka":
                raise ValueError(f"unsupported broker scheme {scheme!r} (use kafka://)")
        if "@" in item:   # user:pass@host would be taken for a host name, and then printed
            raise ValueError(f"credentials in the broker address {redact_url('kafka://' + item)!r} are not "
                             f"supported: set sasl_username and sasl_password (ESCALATION_SASL_PASSWORD)")
        item = item.rstrip("/")
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, "9092"
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad broker address {item!r} (want host:port)")
        hosts.append(f"{host}:{int(port)}")
    if not hosts:
        raise ValueError("no broker address given")
    return hosts


class _FileSource(PydanticBaseSettingsSource):
    """Values from the settings file (set per call by :func:`load_settings`)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return _file_data.get().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_data.get())


class LiveSettings(BaseSettings):
    """Settings of ``escalation run`` and of the live tests; see the module docstring."""

    model_config = SettingsConfigDict(
        env_prefix="ESCALATION_", env_ignore_empty=True, extra="forbid", frozen=True
    )

    # -- the contract names of DESIGN.md §9
    broker: str | None = Field(None, description="kafka://host:port[,host:port]; None: embedded broker")
    agreements: Path | None = Field(None, description="file or directory; None: ./agreements or the bundled example")
    topic_prefix: str = "escalation."

    # -- engine
    app_id: str = Field("escalation", pattern=r"^[A-Za-z0-9._-]+$", description="Faust app id = consumer group")
    partitions: int = Field(4, ge=1, description="partitions of topics created by the engine")
    replication_factor: int = Field(1, ge=1, description="replication factor of created topics")
    # Deadline latency is about tick_grace + processing at p99: besides every tick_interval, the
    # ticker ticks a partition at the first 50 ms beat after something of it falls due
    # (ticker.TickSchedule), so the interval is the heartbeat for everything else. The ticker holds a
    # partition's ticks back while the broker holds unapplied input for it, and a tick carries the
    # input offsets applied before it, so the grace covers only events still in transit to the
    # broker whose time is already past: one arriving more than `tick_grace` late may find a
    # deadline it would have stopped fired (applied late, §6). Defaults (issue #11): 0.25 s between
    # ticks and a 0.5 s grace keep p99 under 1 s (DESIGN.md §6 names 1 s as its example grace; a
    # producer far from the broker, or slower than 0.5 s from stamping an event to its append,
    # should raise it); a tick costs one record, one step and one ListOffsets per owned partition.
    tick_interval: float = Field(0.25, gt=0, description="seconds between heartbeat ticks per partition "
                                 "(a partition with a deadline due is ticked early; each tick is a record and a "
                                 "step per partition)")
    tick_grace: float = Field(0.5, ge=0, description="ticks lag the wall clock by this many seconds: events "
                              "reaching the broker later than this after their time may find a deadline "
                              "already fired (input already on the broker holds ticks back anyway)")
    period_grace: float = Field(300.0, ge=0, description="SLO and report periods close this many seconds after "
                                "their end, so late metric slices still count (replay: --period-grace)")
    max_future_skew: float = Field(300.0, gt=0, description="events (slice ends) more than this many seconds ahead "
                                   "of the worker's wall clock are dead-lettered as 'from the future'")
    gc_interval: float = Field(30.0, ge=0, description="seconds between memory maintenance runs (a "
                               "collection of what survived since the last run, a full one every 12th run, "
                               "then free heap pages back to the system; no automatic full collections in "
                               "between); 0: Python's defaults")
    store: str = Field("memory://", description="Faust table store: memory:// or rocksdb://")
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"

    # -- HTTP endpoint for /metrics and /health (port 0: pick a free port)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9464, ge=0, lt=65536)

    # -- client tuning: None = take it from the profile (then Faust's default)
    profile: Literal["auto", "production", "test"] = "auto"
    broker_session_timeout: float | None = Field(None, gt=0)
    broker_heartbeat_interval: float | None = Field(None, gt=0)
    producer_max_batch_size: int | None = Field(None, ge=1)
    table_standby_replicas: int | None = Field(None, ge=0)

    # -- security, passed through to the Kafka clients
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileSource(settings_cls)

    @field_validator(*SECRET_FIELDS, mode="before")
    @classmethod
    def _remember_secret(cls, v: Any) -> Any:
        # before validation: the value must be masked even in the error of another field
        if isinstance(v, (str, SecretStr)):
            remember(v)
        return v

    @field_validator("broker")
    @classmethod
    def _normalise_broker(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        return "kafka://" + ",".join(parse_broker(v))

    @field_validator("store")
    @classmethod
    def _check_store(cls, v: str) -> str:
        if v.split("://", 1)[0] not in ("memory", "rocksdb") or "://" not in v:
            raise ValueError("store must be memory:// or rocksdb://")
        return v

    @model_validator(mode="after")
    def _check_combination(self) -> "LiveSettings":
        if self.broker is None and self.processing_guarantee == "exactly_once":
            raise ValueError("exactly_once needs a broker with transactions; the embedded broker has none")
        if self.security_protocol.startswith("SASL") and not (self.sasl_username and self.sasl_password):
            raise ValueError("SASL needs sasl_username and sasl_password")
        return self

    # -- derived values
    @property
    def embedded(self) -> bool:
        """True when the engine must start the embedded broker."""
        return self.broker is None

    def bootstrap_servers(self) -> str:
        """aiokafka form ``h1:p1,h2:p2``; ``ValueError`` when the broker is embedded."""
        if self.broker is None:
            raise ValueError("no broker configured (embedded broker: use its bootstrap)")
        return ",".join(parse_broker(self.broker))

    def faust_broker_url(self) -> str:
        """Faust form ``kafka://h1:p1;kafka://h2:p2``; ``ValueError`` when embedded."""
        return ";".join(f"kafka://{hp}" for hp in self.bootstrap_servers().split(","))

    @property
    def effective_profile(self) -> Literal["production", "test"]:
        if self.profile != "auto":
            return self.profile
        return "test" if self.embedded else "production"

    def client_tuning(self) -> dict[str, float | int]:
        """The tuning fields in force: explicit values, else the profile's (absent = Faust default)."""
        base = dict(TEST_PROFILE) if self.effective_profile == "test" else {}
        for name in _TUNING:
            value = getattr(self, name)
            if value is not None:
                base[name] = value
        return base

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.security_protocol.endswith("SSL"):
            return None
        ctx = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        if self.ssl_certfile:
            ctx.load_cert_chain(str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None)
        return ctx

    def aiokafka_security(self) -> dict[str, Any]:
        """Security keyword arguments for aiokafka clients (empty for PLAINTEXT)."""
        if self.security_protocol == "PLAINTEXT":
            return {}
        kw: dict[str, Any] = {"security_protocol": self.security_protocol, "ssl_context": self.ssl_context()}
        if self.security_protocol.startswith("SASL"):
            assert self.sasl_password is not None
            kw |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password.get_secret_value(),
            }
        return kw

    def faust_credentials(self) -> Any:
        """``faust.SASLCredentials`` / ``SSLCredentials`` / None for PLAINTEXT."""
        if self.security_protocol == "PLAINTEXT":
            return None
        import faust

        if self.security_protocol == "SSL":
            return faust.SSLCredentials(self.ssl_context())
        assert self.sasl_password is not None
        return faust.SASLCredentials(
            username=self.sasl_username,
            password=self.sasl_password.get_secret_value(),
            mechanism=self.sasl_mechanism,
            ssl_context=self.ssl_context(),
        )

    def faust_app_kwargs(self, broker_url: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``faust.App(self.app_id, **kw)``.

        ``broker_url`` must be given for the embedded broker (its ``url``).
        """
        kw: dict[str, Any] = {
            "broker": broker_url or self.faust_broker_url(),
            "store": self.store,
            "topic_partitions": self.partitions,
            "topic_replication_factor": self.replication_factor,
            "processing_guarantee": self.processing_guarantee,
            "web_enabled": False,  # our own /metrics + /health endpoint serves HTTP
        }
        kw |= self.client_tuning()
        creds = self.faust_credentials()
        if creds is not None:
            kw["broker_credentials"] = creds
        return kw

    def resolve_agreements(self, cwd: Path | None = None) -> Path:
        """The agreements path: the setting, else ``./agreements`` if present, else the bundled example."""
        if self.agreements is not None:
            return self.agreements
        local = (cwd or Path.cwd()) / "agreements"
        if local.exists():
            return local
        return Path(__file__).resolve().parents[2] / "examples" / "agreements"


def _read_settings_file(path: Path) -> dict[str, Any]:
    text = path.read_text()
    if path.suffix == ".toml":
        data = tomllib.loads(text)   # its errors give line and column, never the text
    elif path.suffix in (".yaml", ".yml"):
        data = _load_yaml(path, text)
    else:
        raise ValueError(f"{path}: settings file must be .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: settings file must hold a mapping")
    unknown = sorted(set(data) - set(LiveSettings.model_fields))
    if unknown:
        raise ValueError(f"{path}: unknown settings {', '.join(unknown)}")
    return data


def _load_yaml(path: Path, text: str) -> Any:
    """The YAML document; an error names line and column only: ruamel quotes the offending line,
    which may be the one holding the password."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return YAML(typ="safe").load(text) or {}
    except MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ValueError(f"{path}: {where}{err.problem or err.context}") from None
    except YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({type(err).__name__})") from None


def load_settings(
    flags: Mapping[str, Any] | None = None, *, settings_file: str | Path | None = None, **kw: Any
) -> LiveSettings:
    """Build settings from flags (``flags`` and ``kw``; None = not given) > env > file > defaults.

    The file is ``settings_file``, else ``$ESCALATION_SETTINGS_FILE``, else none. Raises
    :class:`SettingsError` (a ``ValueError``) with a message free of secrets.
    """
    import os

    given = {k: v for k, v in {**(flags or {}), **kw}.items() if v is not None}
    file = settings_file or os.environ.get(SETTINGS_FILE_ENV) or None
    try:
        data = _read_settings_file(Path(file)) if file else {}
    except (OSError, ValueError) as err:   # tomllib's error is a ValueError
        raise SettingsError(redact(str(err))) from None
    token = _file_data.set(data)
    try:
        return LiveSettings(**given)
    except ValidationError as err:
        raise SettingsError(validation_message(err, "invalid settings")) from None
    finally:
        _file_data.reset(token)
