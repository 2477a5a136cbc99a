"""Spending guard: refuse a billable call before anything is sent when it would exceed the
configured budget (`SORA_MCP_BUDGET_USD` per UTC day, `SORA_MCP_BUDGET_PER_CALL_USD` per call).

Spend is the registry's estimated cost (catalogue list prices) of every job recorded today:
jobs the backend refused are discarded from the registry and so cost nothing; jobs with an
unknown outcome count (they may have started), and so do batch items still queued locally (they
were accepted against the budget and will be sent).

`reserve` is the guard that holds under concurrency: the registry reads today's spend and writes
the intents in one transaction, so N calls racing (in any process) never spend past the limit
together. `check_budget` is the early, advisory check made before any preparation work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sora_mcp.clock import Clock
from sora_mcp.errors import InvalidRequest
from sora_mcp.registry.interface import RegistryStore, Reservation, SpendLimit
from sora_mcp.registry.records import VideoRecord


class BudgetExceeded(InvalidRequest):
    """The call would go over the spending limit; nothing was sent. `code` says which limit:
    per_call_limit or daily_limit."""

    kind = "budget_exceeded"


@dataclass(frozen=True)
class Budget:
    daily_usd: float | None = None
    per_call_usd: float | None = None

    @property
    def enabled(self) -> bool:
        return self.daily_usd is not None or self.per_call_usd is not None


def day_start(now: float) -> float:
    moment = datetime.fromtimestamp(now, tz=UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def spent_today(registry: RegistryStore, clock: Clock) -> float:
    """Estimated USD of today's (UTC) jobs in the registry, refused ones excluded."""
    return round(registry.spent_since(day_start(clock.now())), 2)


def check_budget(
    budget: Budget, registry: RegistryStore, clock: Clock, cost: float, what: str, *, daily: bool = True
) -> None:
    """Raise BudgetExceeded, with the figures, if `cost` more would break a limit (the per-call
    one only, without `daily`).

    Raises:
        BudgetExceeded: over the per-call or the daily limit.
    """
    _check_per_call(budget, cost, what)
    if daily and budget.daily_usd is not None:
        spent = spent_today(registry, clock)
        if spent + cost > budget.daily_usd + 1e-9:
            raise _over_daily(budget.daily_usd, spent, cost, what)


def reserve(
    budget: Budget,
    registry: RegistryStore,
    clock: Clock,
    intents: list[VideoRecord],
    what: str,
    *,
    key: str | None = None,
    key_since: float | None = None,
    tool: str = "",
) -> Reservation:
    """Record `intents` (not yet stored) as one unit, only if their cost fits the limits: the
    daily check and the write are one registry transaction. Discarding an intent releases it.
    With an idempotency `key` used before, nothing is recorded and the answer is `replayed`
    with the first call's records: the caller then sends nothing.

    Raises:
        BudgetExceeded: over a limit; nothing was recorded.
    """
    cost = sum(intent.estimated_cost_usd for intent in intents)
    _check_per_call(budget, cost, what)
    limit = (
        SpendLimit(since=day_start(clock.now()), limit_usd=budget.daily_usd)
        if budget.daily_usd is not None
        else None
    )
    reservation = registry.record_intents(intents, limit=limit, key=key, key_since=key_since, tool=tool)
    if not reservation.accepted and not reservation.replayed:
        assert budget.daily_usd is not None  # only a daily limit refuses a reservation
        raise _over_daily(budget.daily_usd, round(reservation.spent_usd, 2), cost, what)
    return reservation


def _check_per_call(budget: Budget, cost: float, what: str) -> None:
    if budget.per_call_usd is not None and cost > budget.per_call_usd + 1e-9:
        raise BudgetExceeded(
            f"{what} would cost about ${cost:.2f}, over the per-call limit of ${budget.per_call_usd:.2f} "
            "(SORA_MCP_BUDGET_PER_CALL_USD). Nothing was sent. Use fewer variations, shorter clips or sora-2.",
            code="per_call_limit",
        )


def _over_daily(daily_usd: float, spent: float, cost: float, what: str) -> BudgetExceeded:
    left = max(0.0, daily_usd - spent)
    return BudgetExceeded(
        f"{what} would cost about ${cost:.2f}; ${spent:.2f} of today's ${daily_usd:.2f} "
        f"budget (SORA_MCP_BUDGET_USD) is already committed, ${left:.2f} left. Nothing was sent.",
        code="daily_limit",
    )
