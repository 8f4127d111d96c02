"""Quantities (``resource.Quantity``), parsed exactly and printed in their canonical form,
and what a pod charges to a quota."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from plait.testing.kubeapi.resources import Obj

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL: dict[str, Fraction] = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18)}


@dataclass(frozen=True)
class Quantity:
    value: Fraction
    binary: bool = False

    @staticmethod
    def parse(text: Any) -> Quantity:
        s = str(text).strip()
        for suffix, mult in _BINARY.items():
            if s.endswith(suffix):
                return Quantity(Fraction(s[: -len(suffix)]) * mult, True)
        if "e" in s.lower() and not s.endswith("E"):
            return Quantity(Fraction(s.replace("E", "e")))
        for suffix in ("n", "u", "m", "k", "M", "G", "T", "P", "E"):
            if s.endswith(suffix):
                return Quantity(Fraction(s[: -len(suffix)]) * _DECIMAL[suffix])
        return Quantity(Fraction(s))

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.value + other.value, self.binary)

    def __str__(self) -> str:
        v = self.value
        if v == 0:
            return "0"
        if self.binary and v.denominator == 1:
            for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
                if v % _BINARY[suffix] == 0:
                    return f"{v // _BINARY[suffix]}{suffix}"
            if abs(v) < 1024:
                return str(v.numerator)
        for suffix in ("E", "P", "T", "G", "M", "k", "", "m", "u", "n"):
            scaled = v / _DECIMAL[suffix]
            if scaled.denominator == 1:
                return f"{scaled.numerator}{suffix}"
        return f"{(v * 10**9).__ceil__()}n"  # the real Quantity rounds up below nano too


def pod_usage(pod: Obj) -> dict[str, Quantity]:
    """What a pod charges to a quota, as the apiserver's pod evaluator computes it."""
    spec = pod.get("spec") or {}

    def per_container(c: Obj) -> tuple[dict[str, Quantity], dict[str, Quantity]]:
        res = c.get("resources") or {}
        limits = {k: Quantity.parse(v) for k, v in (res.get("limits") or {}).items()}
        requests = {k: Quantity.parse(v) for k, v in (res.get("requests") or {}).items()}
        for k, v in limits.items():  # a limit without a request is also the request
            requests.setdefault(k, v)
        return requests, limits

    def total(cs: list[Obj]) -> tuple[dict[str, Quantity], dict[str, Quantity]]:
        req: dict[str, Quantity] = {}
        lim: dict[str, Quantity] = {}
        for c in cs:
            r, li = per_container(c)
            for k, q in r.items():
                req[k] = req[k] + q if k in req else q
            for k, q in li.items():
                lim[k] = lim[k] + q if k in lim else q
        return req, lim

    req, lim = total(spec.get("containers") or [])
    for c in spec.get("initContainers") or []:  # an init container runs alone: max, not sum
        r, li = per_container(c)
        for src, dst in ((r, req), (li, lim)):
            for k, q in src.items():
                if k not in dst or q.value > dst[k].value:
                    dst[k] = q
    usage: dict[str, Quantity] = {"pods": Quantity(Fraction(1)),
                                   "count/pods": Quantity(Fraction(1))}
    for k, q in req.items():
        usage[f"requests.{k}"] = q
        if k in ("cpu", "memory", "ephemeral-storage"):
            usage[k] = q
    for k, q in lim.items():
        if k in ("cpu", "memory", "ephemeral-storage"):
            usage[f"limits.{k}"] = q
    return usage


def _pretty(resources: dict[str, Quantity]) -> str:
    return ",".join(f"{k}={resources[k]}" for k in sorted(resources))
