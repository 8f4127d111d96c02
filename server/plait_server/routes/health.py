"""``GET /health``: the one route that needs no key (for load balancers and probes)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request

router = APIRouter(tags=["health"])
ORDER = 0


@router.get("/health")
def health(request: Request) -> dict[str, str]:
    """``ok`` when the store answers."""
    with request.app.state.store.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return {"status": "ok"}
