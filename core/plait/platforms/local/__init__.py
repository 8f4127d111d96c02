"""The local platform: a pool of worker processes, and supervised processes."""
