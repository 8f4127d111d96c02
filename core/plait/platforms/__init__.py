"""Where compute runs: ``local`` (this machine) now, ``kubernetes`` next."""
