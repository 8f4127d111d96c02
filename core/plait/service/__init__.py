"""Register, launch, abort, query and logs: what the CLI and the server call."""
