"""Refusals as the ``Status`` objects a real API server returns, and the usual ones."""

from __future__ import annotations

from typing import Any

from plait.testing.kubeapi.resources import Obj, ResourceType


class ApiStatusError(Exception):
    """A refusal, carried as the ``Status`` object a real API server returns."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    @property
    def body(self) -> Obj:
        body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                     "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def _qualified(rt: ResourceType) -> str:
    return rt.key


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name}
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.plural
    return d


def _not_found(rt: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(404, "NotFound", f'{_qualified(rt)} "{name}" not found',
                          _details(rt, name))


def _already_exists(rt: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(409, "AlreadyExists", f'{_qualified(rt)} "{name}" already exists',
                          _details(rt, name))


def _conflict(rt: ResourceType, name: str) -> ApiStatusError:
    return ApiStatusError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {_qualified(rt)} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        _details(rt, name))


def _forbidden(rt: ResourceType, name: str, why: str) -> ApiStatusError:
    return ApiStatusError(403, "Forbidden", f'{_qualified(rt)} "{name}" is forbidden: {why}',
                          _details(rt, name))


def _bad_request(message: str) -> ApiStatusError:
    return ApiStatusError(400, "BadRequest", message)


def _no_such_resource() -> ApiStatusError:
    return ApiStatusError(404, "NotFound", "the server could not find the requested resource",
                          {})
