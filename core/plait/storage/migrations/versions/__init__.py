"""Alembic revisions of plait's store, one file each; never edit one that has shipped."""
