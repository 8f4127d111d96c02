"""A workflow taking a file it does not read: what the console serves of an input file."""

import plait
from plait import File


@plait.task
def keep(f: File) -> int:
    return 1


@plait.workflow
def kept(f: File) -> int:
    return keep(f=f)
