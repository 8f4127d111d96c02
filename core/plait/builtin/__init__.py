"""Built-in plugins: registered through the ``plait`` entry points like any other."""
