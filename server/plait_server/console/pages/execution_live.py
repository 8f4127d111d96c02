"""The execution page's one live stream: the API's events, less a map's item events.

The API's stream (``/api/v1/executions/ID/events``) sends every event, and a running map of
100,000 items records hundreds of thousands of them: megabytes a page has no use for, since it
draws a map as one node with counts. This stream is the API's (the same frames, resumed after
``Last-Event-ID``, ended by ``end``) with each item event replaced by at most one ``items``
event per map node every half second (``{"node": PATH}``); the page then asks for that node's
counts, counted by the database.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from plait.storage.events import EventStore
from starlette.responses import Response

from plait_server.console import ConsoleUser
from plait_server.console.execution_data import event_store
from plait_server.routes.executions import follow_events, visible_execution

router = APIRouter(include_in_schema=False)

ITEMS_EVERY_S = 0.5


@router.get("/executions/{execution_id}/live")
def live(request: Request, user: ConsoleUser, execution_id: str,
         after: Annotated[int, Query(ge=0)] = 0,
         last_event_id: Annotated[str | None, Header()] = None) -> Response:
    row = visible_execution(request, user, execution_id)
    if last_event_id and last_event_id.isdigit():
        after = max(after, int(last_event_id))
    return StreamingResponse(_without_items(request, event_store(request), row["id"], after),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _without_items(request: Request, store: EventStore, execution_id: str,
                         after: int) -> AsyncIterator[str]:
    """The API's frames, an item's replaced by an ``items`` frame for its map node at most every
    :data:`ITEMS_EVERY_S` (the node's own end refreshes its counts once more)."""
    sent: dict[str, float] = {}
    async for frame in follow_events(request, store, execution_id, after):
        if "\nevent: item\n" not in frame:
            yield frame
            continue
        seq, _, rest = frame.partition("\n")
        node = str(json.loads(rest.partition("data: ")[2])["data"].get("node", ""))
        now = time.monotonic()
        if now - sent.get(node, -ITEMS_EVERY_S) >= ITEMS_EVERY_S:
            sent[node] = now
            yield f"{seq}\nevent: items\ndata: {json.dumps({'node': node})}\n\n"
