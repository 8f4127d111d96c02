"""The server's HTTP API, typed: what a request sends and a response returns.

Both sides import these: the server (``plait_server``) to validate and describe its routes, the
command line's client (:mod:`plait.client`) to read answers. One module per part of the API.
"""
