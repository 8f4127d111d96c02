"""Imported by train.py: shows that the whole source_dir is shipped with the entry point."""


def weights(epochs: int, scale: float, rows: int) -> str:
    return f"epochs={epochs} scale={scale} rows={rows}\n"
