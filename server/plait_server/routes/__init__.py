"""The API's routes, one module per part; each module has a ``router`` (see plait_server.app)."""
