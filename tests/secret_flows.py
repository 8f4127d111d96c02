"""Tasks that are given a secret, for tests/test_secret_nowhere.py (a module: worker processes import it).

Each returns and prints a digest of what it was given, never the value, so a test can tell the
secret arrived and then look for the value everywhere the run left a trace.
"""

from __future__ import annotations

import hashlib
import os

import plait
from plait import current_context


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@plait.task(secrets=["nowhere-token"])
def token_digest(name: str) -> str:
    seen = digest(current_context().secret("nowhere-token"))
    print(f"{name}: the token's digest is {seen}")  # stdout is kept: the logs are checked too
    print(f"engine secrets seen: {sum(k.startswith('PLAIT_SECRET_') for k in os.environ)}")
    return seen


@plait.workflow
def python_reads_token(name: str) -> str:
    return token_digest(name=name)


token_container = plait.container_task(
    "token-container", image="debian:bookworm-slim", secrets=["nowhere-token"],
    command=["sh", "-c", "echo container {{inputs.name}} ran; "
             "printf '%s' \"$NOWHERE_TOKEN\" | sha256sum | cut -c1-64; "
             "echo engine secrets seen: $(env | grep -c '^PLAIT_SECRET_'); echo done > {{outputs}}/status"],
    inputs={"name": str}, outputs={"status": str},
)


@plait.workflow
def container_with_token(name: str) -> str:
    return token_container(name=name)
