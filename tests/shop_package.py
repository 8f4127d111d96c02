"""A small package to register: a task, a workflow using it, and a scheduled launch plan."""

from __future__ import annotations

from pathlib import Path

PACKAGE = {
    "__init__.py": "from {package}.flows import hourly  # noqa: F401  (found and named where it is defined)\n",
    "tasks.py": '''import plait


@plait.task(retries=1)
def price(amount: int, rate: float = 1.0) -> float:
    return amount * rate
''',
    "flows.py": '''import plait

from {package}.tasks import price


@plait.workflow
def quote(amount: int, when: str = "") -> float:
    return price(amount=amount)


hourly = plait.LaunchPlan(quote, default_inputs={{"amount": 10}},
                          schedule=plait.Cron("0 * * * *", timezone="Europe/Paris", fire_time_input="when"))
''',
}


def write_package(folder: Path, package: str) -> Path:
    """A small package ``package`` (a task, a workflow using it, a scheduled launch plan) under ``folder``."""
    root = folder / package
    root.mkdir(parents=True)
    for name, text in PACKAGE.items():
        (root / name).write_text(text.format(package=package))
    return root


def entity_names(package: str) -> set[tuple[str, str]]:
    """(kind, name) of everything registering the package makes: its launch plan and the workflow's default one."""
    return {("task", f"{package}.tasks.price"), ("workflow", f"{package}.flows.quote"),
            ("launch_plan", f"{package}.flows.hourly"), ("launch_plan", f"{package}.flows.quote")}
