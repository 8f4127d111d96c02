"""Hunting bigfoot in trail-camera photos: the fan-out story in one file.

A folder of camera photos (synthetic: noisy forest scenes, a few with a tall dark figure) is
split into batches; a detector task runs on every batch through a map task, in parallel
worker processes; a final task combines the sightings into a report.

    plait run examples/bigfoot.py:hunt --photos 2000 --batch-size 100
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import plait
from plait import Directory, File, current_context

SIZE = 64  # pixels per side


@dataclass
class Sighting:
    photo: str
    score: float


@dataclass
class Report:
    photos: int
    positives: int
    planted: int
    found: int
    false_alarms: int
    best: list[Sighting]


def _scene(rng: np.random.Generator, bigfoot: bool) -> np.ndarray:
    """A forest at dusk: bright sky gradient, noise, tree trunks; maybe a tall dark figure."""
    img = np.linspace(200, 120, SIZE)[:, None] + rng.normal(0, 12, (SIZE, SIZE))
    for x in rng.integers(0, SIZE - 3, size=rng.integers(2, 5)):
        img[:, x:x + 2] -= 40  # thin trunks: tall but narrow
    if bigfoot:
        h, w = rng.integers(22, 30), rng.integers(7, 10)
        top, left = rng.integers(8, SIZE - h - 2), rng.integers(2, SIZE - w - 2)
        img[top:top + h, left:left + w] = rng.normal(35, 8, (h, w))
        img[top - 4:top, left + 2:left + w - 2] = rng.normal(35, 8, (4, w - 4))  # a head
    return np.clip(img, 0, 255).astype(np.uint8)


@plait.task(cache=True, cache_version="1")
def take_photos(photos: int, seed: int = 7) -> Directory:
    """Generate the camera's folder of photos, with the truth kept beside them."""
    rng = np.random.default_rng(seed)
    folder = current_context().scratch / "camera"
    folder.mkdir()
    planted = []
    for i in range(photos):
        name = f"IMG_{i:05d}.npy"
        bigfoot = rng.random() < 0.03
        if bigfoot:
            planted.append(name)
        np.save(folder / name, _scene(rng, bigfoot))
    (folder / "truth.json").write_text(json.dumps(planted))
    return Directory(folder)


@plait.task
def split(photos: Directory, batch_size: int) -> list[list[File]]:
    """Split the folder into batches of photos."""
    if batch_size < 1:
        raise plait.PermanentError(f"batch_size must be at least 1, got {batch_size}")
    files = sorted(p for p in photos.files() if p.suffix == ".npy")
    return [[File(p) for p in files[i:i + batch_size]] for i in range(0, len(files), batch_size)]


def _score(img: np.ndarray) -> float:
    """How much the photo looks like a tall, wide, dark figure (0 to 1)."""
    dark = img < 70
    best = 0.0
    for left in range(0, SIZE - 6):
        cols = dark[:, left:left + 6]
        rows = cols.all(axis=1)  # rows where a 6-pixel-wide band is dark: trunks are too thin
        if not rows.any():
            continue
        # the longest vertical run of such rows
        run = longest = 0
        for r in rows:
            run = run + 1 if r else 0
            longest = max(longest, run)
        best = max(best, min(1.0, longest / 24))
    return best


@plait.task(retries=2)
def detect(batch: list[File], threshold: float = 0.8) -> list[Sighting]:
    """Score every photo of a batch; keep those above the threshold."""
    sightings = []
    for photo in batch:
        score = _score(np.load(photo.path))
        if score >= threshold:
            sightings.append(Sighting(photo.name, round(score, 3)))
    return sightings


@plait.task
def report(results: list[list[Sighting]], photos: Directory) -> Report:
    """Combine the batches' sightings and check them against the truth."""
    sightings = [s for batch in results for s in batch]
    truth = set(json.loads((photos.path / "truth.json").read_text()))
    names = {s.photo.split("/")[-1] for s in sightings}
    found = len(names & truth)
    total = len([p for p in photos.files() if p.suffix == ".npy"])
    best = sorted(sightings, key=lambda s: -s.score)[:5]
    return Report(total, len(sightings), len(truth), found, len(names - truth), best)


@plait.workflow
def hunt(photos: int = 2000, batch_size: int = 100, threshold: float = 0.8) -> Report:
    folder = take_photos(photos=photos)
    batches = split(photos=folder, batch_size=batch_size)
    sightings = plait.map(detect, over=batches, threshold=threshold)
    return report(results=sightings, photos=folder)
