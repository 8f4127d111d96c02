"""The pools page: each rate-limited pool's capacity, who holds its tokens and who waits, and
each tenant's share of it over the last hour, drawn on the server as SVG with a table beside.

What ``plait pools`` counts (:func:`~plait.service.summary.pools_usage`), named attempt by
attempt (:func:`~plait.service.pool_activity.pool_claims`), and the token-seconds each tenant
held (:func:`~plait.service.pool_activity.pool_share`). A tenant of a project the user has no
role in is shown as "another project": its tokens count (they are why others wait), but not
its name, execution or node. A server admin sees every tenant.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from plait.service.pool_activity import PoolClaim, PoolShare, pool_claims, pool_share
from plait.service.summary import pools_usage
from plait.storage.events import EventStore
from plait.tokens.config import TokenConfig
from starlette.responses import Response

from plait_server.auth import access_store
from plait_server.console import ConsoleUser, render

router = APIRouter(include_in_schema=False)

HIDDEN = "another project"
"""How a tenant of a project the user has no role in is named."""

SLOTS = 12
"""The share plot's bars: five minutes each over the last hour."""

FILLS = ["#0b5cad", "url(#fill-1)", "url(#fill-2)", "url(#fill-3)", "url(#fill-4)", "url(#fill-5)"]
"""A tenant's fill in the plot: told apart by shape (stripes, dots, hatching; pools.html
defines the patterns), not only colour; reused in turn after six tenants."""

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 220, 44, 28, 20


@dataclass
class Segment:
    """One tenant's part of one bar of the plot: where it is drawn and what it says."""

    x: float
    y: float
    width: float
    height: float
    fill: int
    title: str


@dataclass
class PoolView:
    """One pool as the page shows it."""

    name: str
    capacity: int | None
    rate: float | None
    holders: list[PoolClaim] = field(default_factory=list)
    waiters: list[PoolClaim] = field(default_factory=list)
    tenants: list[str] = field(default_factory=list)
    """The tenants in the share plot, in the order of their fills."""
    slots: list[dict[str, float]] = field(default_factory=list)
    """Tokens held on average per slot, by tenant."""
    totals: dict[str, float] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    capacity_y: float | None = None

    @property
    def held(self) -> int:
        return sum(c.count for c in self.holders)

    @property
    def share(self) -> dict[str, float]:
        """Each tenant's part of the token-seconds held in the window, in percent."""
        whole = sum(self.totals.values())
        return {t: 100 * s / whole for t, s in self.totals.items()} if whole else {}


def _named(claim: PoolClaim, label: str) -> PoolClaim:
    if label == claim.tenant:
        return claim
    return PoolClaim(claim.pool, HIDDEN, "", "", claim.count, claim.holding, claim.since, claim.position,
                     claim.queued)


def _plot(view: PoolView, share: PoolShare) -> None:
    """Stacked bars of the average tokens each tenant held per slot, scaled to the capacity
    (or the tallest bar, if the capacity changed and a bar is taller)."""
    width = (WIDTH - LEFT - 8) / SLOTS
    tallest = max([sum(s.values()) for s in view.slots] + [float(view.capacity or 1)])
    scale = (HEIGHT - BOTTOM - TOP) / tallest
    for i, slot in enumerate(view.slots):
        y = float(HEIGHT - BOTTOM)
        end = dt.datetime.fromtimestamp(share.start + (i + 1) * (share.end - share.start) / SLOTS, dt.UTC)
        for n, tenant in enumerate(view.tenants):
            tokens = slot.get(tenant, 0.0)
            if tokens <= 0:
                continue
            height = max(tokens * scale, 2.0)  # a sliver still shows who held a little
            y -= height
            view.segments.append(Segment(LEFT + i * width + 2, y, width - 4, height, n % len(FILLS),
                                         f"{tenant}: {tokens:.2f} tokens on average, 5 minutes to {end:%H:%M} UTC"))
    if view.capacity:
        view.capacity_y = HEIGHT - BOTTOM - view.capacity * scale
    step = max(1, round(tallest / 4))
    view.ticks = [(HEIGHT - BOTTOM - v * scale, str(v)) for v in range(0, int(tallest) + 1, step)]


def _views(store: EventStore, config: TokenConfig, label: Any) -> tuple[list[PoolView], str, PoolShare]:
    usage, source = pools_usage(store, config)
    source = source.replace("the local store", "this server's store")  # where the page was read, not a laptop
    share = pool_share(store, slots=SLOTS)
    views = {p.name: PoolView(p.name, p.capacity, p.rate) for p in usage}
    for claim in pool_claims(store):
        view = views.setdefault(claim.pool, PoolView(claim.pool, config.pool(claim.pool).capacity, None))
        shown = _named(claim, label(claim.tenant))
        (view.holders if claim.holding else view.waiters).append(shown)
    slot_width = (share.end - share.start) / SLOTS
    for i, slot in enumerate(share.slots):
        for pool, tenants in slot.items():
            view = views.setdefault(pool, PoolView(pool, config.pool(pool).capacity, None))
            if not view.slots:
                view.slots = [{} for _ in range(SLOTS)]
            for tenant, seconds in tenants.items():
                shown = label(tenant)
                view.slots[i][shown] = view.slots[i].get(shown, 0.0) + seconds / slot_width
                view.totals[shown] = view.totals.get(shown, 0.0) + seconds
    for view in views.values():
        view.holders.sort(key=lambda c: (c.tenant, c.since))
        view.waiters.sort(key=lambda c: (c.tenant, c.position or 0, c.since))
        view.tenants = sorted(view.totals, key=lambda t: (t == HIDDEN, t))
        if view.slots:
            _plot(view, share)
    return [views[name] for name in sorted(views)], source, share


@router.get("/pools")
def pools(request: Request, user: ConsoleUser) -> Response:
    visible = None if user.admin else {p.name for p in access_store(request).projects(user)}

    def label(tenant: str) -> str:
        return tenant if visible is None or tenant.split("/", 1)[0] in visible else HIDDEN

    views, source, share = _views(request.app.state.store, TokenConfig.load(), label)
    slot_ends = [dt.datetime.fromtimestamp(share.start + (i + 1) * (share.end - share.start) / SLOTS, dt.UTC)
                 for i in range(SLOTS)]
    return render(request, "pools.html", user=user, nav="pools", pools=views, source=source,
                  slot_ends=[f"{t:%H:%M}" for t in slot_ends], fills=FILLS,
                  clock=lambda ts: f"{dt.datetime.fromtimestamp(ts, dt.UTC):%H:%M:%S} UTC",
                  plot={"width": WIDTH, "height": HEIGHT, "left": LEFT, "bottom": BOTTOM, "top": TOP,
                        "slot": (WIDTH - LEFT - 8) / SLOTS})
