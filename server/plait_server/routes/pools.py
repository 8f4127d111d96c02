"""Rate-limited pools: capacity, and tokens held and requests waiting per tenant.

Every authenticated caller sees each pool's capacity; a tenant's holders and waiters only for
projects the caller has a role in (a server admin sees all).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from plait.model.api.executions import Pools
from plait.service.summary import pools_usage
from plait.tokens.config import TokenConfig

from plait_server.app import API
from plait_server.auth import CurrentUser, access_store

router = APIRouter(prefix=API, tags=["pools"])
ORDER = 40


@router.get("/pools")
def get_pools(request: Request, user: CurrentUser) -> Pools:
    """Each pool's capacity and rate, and its holders and waiters by ``project/domain``."""
    store = access_store(request)
    visible = None if user.admin else {p.name for p in store.projects(user)}

    def may_see(tenant: str) -> bool:
        return visible is None or tenant.split("/", 1)[0] in visible

    found, source = pools_usage(request.app.state.store, TokenConfig.load(), may_see)
    return Pools(pools=found, source=source)
