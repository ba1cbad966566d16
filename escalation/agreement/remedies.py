"""Remedies of the agreement format (DESIGN.md §13): service credits in tiers over an
attainment, penalties per breach, and the caps that bound them per period."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from escalation.agreement.fields import Frozen, Money, Percent


class CreditTier(Frozen):
    below: Annotated[float, Field(gt=0, le=100)]
    credit_percent: Percent


class EarnBack(Frozen):
    """A credit for period P is returned when each of the next ``periods`` periods attains at
    least ``at_least`` on the same SLO or objective (DESIGN.md §13)."""

    periods: Annotated[int, Field(ge=1, le=120)]
    at_least: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]


class TieredCredit(Frozen):
    """Tiers over the attainment of exactly one of: an SLO, a ticket objective."""

    id: str
    kind: Literal["tiered_credit"]
    slo: str | None = None
    objective: str | None = None
    basis: str
    tiers: list[CreditTier]
    earn_back: EarnBack | None = None

    @model_validator(mode="after")
    def _one_measure(self) -> "TieredCredit":
        if (self.slo is None) == (self.objective is None):
            raise ValueError("a tiered_credit names exactly one of: slo, objective")
        return self


class PerBreachPenalty(Frozen):
    """A fixed ``amount``, or ``percent`` of a fee (``percent_of: fees.monthly``), per breach."""

    id: str
    kind: Literal["per_breach"]
    clock: str
    priority: list[str] | None = None
    amount: Money | None = None
    percent_of: str | None = None
    percent: Annotated[Percent, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_amount(self) -> "PerBreachPenalty":
        relative = self.percent_of is not None or self.percent is not None
        if relative and (self.percent_of is None or self.percent is None):
            raise ValueError("a percentage penalty needs both percent_of and percent")
        if relative == (self.amount is not None):
            raise ValueError("a per_breach remedy needs either amount, or percent_of + percent")
        return self


Remedy = Annotated[Union[TieredCredit, PerBreachPenalty], Field(discriminator="kind")]


class Cap(Frozen):
    """A period budget shared by penalties and credits: a percent of a fee or a fixed amount.

    ``rolling_12_months`` sums the 12 calendar months ending with the current one; ``allocation``
    gives each named remedy at most that percent of the cap (the shares sum to at most 100)."""

    period: Literal["calendar_month", "rolling_12_months"] = "calendar_month"
    max_percent_of: str | None = None
    percent: Annotated[Percent, Field(gt=0)] | None = None
    max_amount: Money | None = None
    allocation: dict[str, Annotated[Percent, Field(gt=0)]] | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> "Cap":
        relative = self.max_percent_of is not None and self.percent is not None
        if relative == (self.max_amount is not None):
            raise ValueError("a cap needs either max_percent_of + percent, or max_amount")
        if self.allocation is not None and sum(self.allocation.values()) > 100:
            raise ValueError(f"allocation shares sum to {sum(self.allocation.values())}%, more than 100%")
        return self
