"""Registered tasks, workflows and launch plans over the API: code upload, registration,
versions, archiving and the active launch plan."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Kind = Literal["task", "workflow", "launch_plan"]


class CodeUploaded(BaseModel):
    """A code archive in the server's blob store."""

    digest: str
    uri: str = Field(description="Where workflows registered with this code point (CodeRef.uri)")
    created: bool = Field(description="False when the archive was there already")


class EntityIn(BaseModel):
    """One entity of a registration: its body as :mod:`plait.model.registered` describes it."""

    kind: Kind
    name: str
    body: dict[str, Any]


class RegistrationIn(BaseModel):
    """A set registered under one version, all or nothing."""

    version: str
    entities: list[EntityIn]
    activate: bool = Field(default=False, description="Make the set's launch plans the active versions")


class Registered(BaseModel):
    """What registering one entity did."""

    kind: Kind
    name: str
    version: str
    digest: str
    status: Literal["created", "unchanged"]


class RegistrationOut(BaseModel):
    entities: list[Registered]
    activated: list[str] = Field(default_factory=list, description="Launch plans made active")


class VersionOut(BaseModel):
    """A version of an entity, without its body."""

    kind: Kind
    name: str
    version: str
    digest: str
    created: float
    archived: bool


class EntityOut(VersionOut):
    body: dict[str, Any]


class ActiveIn(BaseModel):
    version: str = Field(description="The launch plan version to make active")
