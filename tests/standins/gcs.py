"""A Google Cloud Storage stand-in: gcp-storage-emulator (PyPI), run in a process of its own.

Run as ``python tests/standins/gcs.py PORT``; it serves the GCS JSON API on 127.0.0.1:PORT,
in memory, until it is terminated. Clients find it through ``STORAGE_EMULATOR_HOST``.

One quirk is mended here: the emulator has no "Objects: move" route
(``POST /b/{bucket}/o/{object}/moveTo/o/{destination}``), which gcsfs calls for every
rename; it answers 501, which gcsfs retries with backoff for about 30 seconds before it falls
back to copy and delete. The route added below copies and deletes with the emulator's own
handlers, as the real service's move does in one step.
"""

from __future__ import annotations

import sys
from http import HTTPStatus
from typing import Any

from gcp_storage_emulator import server, settings
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects


def move(request: Any, response: Any, storage: Any, *args: Any, **kwargs: Any) -> None:
    bucket, source, target = (request.params[k] for k in ("bucket_name", "object_id", "dest_object_id"))
    try:
        moved = objects._copy(request.base_url, storage, bucket, source, bucket, target)
    except NotFound:
        response.status = HTTPStatus.NOT_FOUND
        return
    objects._delete(storage, bucket, source)
    response.json(moved)


def add_move_route() -> None:
    routes = tuple(
        (rf"^{prefix}/b/(?P<bucket_name>[-.\w]+)/o/(?P<object_id>.*[^/]+)/moveTo/o/(?P<dest_object_id>.*[^/]+)$",
         {server.POST: move})
        for prefix in (settings.API_ENDPOINT, "")
    )
    server.HANDLERS = routes + tuple(server.HANDLERS)  # before the generic object route


def main(port: int) -> None:
    add_move_route()
    server.create_server("127.0.0.1", port, in_memory=True).run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
