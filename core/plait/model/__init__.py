"""Pure data: the compiled spec, type specs, statuses, errors, settings and the wire types."""
