"""The ``plait`` command: click commands and rich output only."""
