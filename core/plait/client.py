"""Talking to a plait server: what the command line uses when ``PLAIT_SERVER`` is set.

:class:`Client` sends the API key (``PLAIT_API_KEY``) with every request and turns an error
answer into a :class:`ServerError` carrying the server's own message, so the command line
prints "no project 'x'" rather than a status code. Typed answers are parsed into the models of
:mod:`plait.model.api`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter

from plait.model.errors import PlaitError

API = "/api/v1"
T = TypeVar("T")


class ServerError(PlaitError):
    """The server answered with an error (``status``); the message is the server's."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def server_from_env() -> str | None:
    """The server the command line talks to (``PLAIT_SERVER``), or None to use the local store."""
    return os.environ.get("PLAIT_SERVER") or None


_hinted = False


def server_or_local(url: str | None = None) -> str | None:
    """``url`` or ``PLAIT_SERVER``; None for the local store. A key (``PLAIT_API_KEY``) without a
    server is most likely a forgotten ``PLAIT_SERVER``: say once, on stderr, which store is read."""
    global _hinted
    url = url or server_from_env()
    if url is None and os.environ.get("PLAIT_API_KEY") and not _hinted:
        _hinted = True
        print("note: PLAIT_API_KEY is set but PLAIT_SERVER is not: using the local store "
              "(set PLAIT_SERVER to use a server)", file=sys.stderr)
    return url


class Client:
    """A connection to the server at ``url`` as the holder of ``key``."""

    def __init__(self, url: str, key: str | None = None, timeout_s: float = 30.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        key = key if key is not None else os.environ.get("PLAIT_API_KEY")
        self.keyless = not key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    @classmethod
    def from_env(cls, url: str | None = None) -> Client:
        url = url or server_from_env()
        if not url:
            raise PlaitError("no server given: set PLAIT_SERVER (and PLAIT_API_KEY), or pass --server")
        return cls(url)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                content: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
        """Send a request to ``/api/v1`` + ``path``; the answer's JSON (None when it has none)."""
        import httpx

        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            answer = self._http.request(method, API + path, json=json, params=params, content=content,
                                        headers=headers)
        except httpx.HTTPError as exc:
            raise PlaitError(f"cannot reach the plait server at {self.url}: {exc}") from None
        _raise_for(answer, self.url, self.keyless)
        if answer.status_code == 204 or not answer.content:
            return None
        return answer.json()

    def get(self, path: str, model: type[T] | Any = None, **params: Any) -> Any:
        data = self.request("GET", path, params=params)
        return data if model is None else parse(model, data)

    def post(self, path: str, body: BaseModel | dict[str, Any] | None = None, model: type[T] | Any = None) -> Any:
        payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
        data = self.request("POST", path, json=payload)
        return data if model is None or data is None else parse(model, data)

    def put(self, path: str, body: BaseModel | dict[str, Any] | None = None, model: type[T] | Any = None) -> Any:
        payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
        data = self.request("PUT", path, json=payload)
        return data if model is None or data is None else parse(model, data)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def stream(self, path: str, **params: Any) -> Iterator[tuple[str, str]]:
        """Server-sent events from ``path``: (event name, data) pairs as they arrive."""
        import httpx

        params = {k: v for k, v in params.items() if v is not None}
        try:
            with self._http.stream("GET", API + path, params=params, timeout=None) as answer:
                if answer.status_code >= 400:
                    answer.read()
                    _raise_for(answer, self.url, self.keyless)
                event, data = "message", list[str]()
                for line in answer.iter_lines():
                    if not line:
                        if data:
                            yield event, "\n".join(data)
                        event, data = "message", list[str]()
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].removeprefix(" "))
        except httpx.HTTPError as exc:
            raise PlaitError(f"lost the plait server at {self.url}: {exc}") from None


def parse(model: Any, data: Any) -> Any:
    """``data`` (JSON) as ``model``: a pydantic model, or any type such as ``list[Model]``."""
    return TypeAdapter(model).validate_python(data)


def _raise_for(answer: Any, url: str, keyless: bool = False) -> None:
    if answer.status_code < 400:
        return
    try:
        detail = answer.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, list):  # FastAPI's validation errors: say which field and why
        detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    if answer.status_code == 401 and keyless:
        # The server's message would say a key is needed; say why none was sent.
        detail = f"PLAIT_API_KEY is not set: the plait server at {url} needs an API key (set PLAIT_API_KEY=plait_...)"
    elif answer.status_code == 401:
        detail = f"{detail or 'not authenticated'} (server {url})"
    raise ServerError(answer.status_code, str(detail or f"the server answered {answer.status_code}"))
