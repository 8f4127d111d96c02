"""plait's control plane: the HTTP API server, its authentication, engine workers and scheduler."""
