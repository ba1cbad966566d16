"""The ``slis.yaml`` of ``escalation sli prometheus`` (DESIGN.md §14), validated with pydantic.

```yaml
slice: 1m          # slice length (whole seconds; slices start at multiples of it since the epoch)
lag: 2m            # a slice is queried once it is this old (Prometheus has scraped it by then)
slis:
  - service: erp-prod
    sli: availability
    good: 'sum(increase(http_requests_total{job="erp",code!~"5.."}[1m]))'
    total: 'sum(increase(http_requests_total{job="erp"}[1m]))'
```

Invariants: a loaded config has a slice of at least one whole second that divides a day (so
slices of 1m are aligned to the minute, 5m to five minutes, and every day starts a slice), a lag
≥ 0, at least one SLI, unique (service, sli) pairs and non-empty expressions; every problem is
reported as ``file:line: path: message`` (the agreement loader's format), never a traceback.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from escalation.agreement.durations import BusinessDays, parse_duration

NonEmpty = Annotated[str, Field(min_length=1, max_length=10_000)]
_DAY = 86_400


class SliQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service: NonEmpty
    sli: NonEmpty
    good: NonEmpty
    total: NonEmpty


def _seconds(text: str, what: str) -> int:
    value = parse_duration(text)
    if isinstance(value, BusinessDays):
        raise ValueError(f"{what} is wall-clock time, not business days")
    if value % timedelta(seconds=1):
        raise ValueError(f"{what} must be whole seconds")
    return int(value.total_seconds())


class SliConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    slice: str = "1m"
    lag: str = "2m"
    slis: list[SliQuery] = Field(min_length=1)

    @field_validator("slice")
    @classmethod
    def _slice(cls, v: str) -> str:
        seconds = _seconds(v, "slice")
        if seconds < 1 or _DAY % seconds:
            raise ValueError(f"slice {v!r} must be at least 1s and divide a day (e.g. 10s, 1m, 5m, 1h)")
        return v

    @field_validator("lag")
    @classmethod
    def _lag(cls, v: str) -> str:
        _seconds(v, "lag")
        return v

    @model_validator(mode="after")
    def _unique(self) -> "SliConfig":
        seen = set()
        for s in self.slis:
            if (s.service, s.sli) in seen:
                raise ValueError(f"duplicate SLI {s.sli!r} of service {s.service!r}")
            seen.add((s.service, s.sli))
        return self

    @property
    def slice_seconds(self) -> int:
        return _seconds(self.slice, "slice")

    @property
    def lag_seconds(self) -> int:
        return _seconds(self.lag, "lag")


class SliConfigError(Exception):
    """The config cannot be used; ``problems`` are ``file:line: path: message`` lines."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def load_sli_config(path: str | Path) -> SliConfig:
    """Read and validate ``path``; :class:`SliConfigError` listing every problem."""
    from ruamel.yaml.comments import CommentedMap

    from escalation.agreement.bounded import Refused, read_yaml
    from escalation.loader import _plain, _validation_problems

    file = str(path)
    try:
        root = read_yaml(Path(path).read_bytes())
    except OSError as err:
        raise SliConfigError([f"{file}: {err.strerror or err}"]) from None
    except Refused as err:
        raise SliConfigError([f"{file}:{err.line}: {err.message}"]) from None
    if not isinstance(root, CommentedMap):
        raise SliConfigError([f"{file}:1: the SLI config must hold one mapping (slice, lag, slis)"])
    try:
        return SliConfig.model_validate(_plain(root))
    except ValidationError as err:
        raise SliConfigError([str(p) for p in sorted(_validation_problems(err, root, file), key=lambda p: p.line)]) \
            from None
