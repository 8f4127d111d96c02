"""Writing workflows: the decorators, tracing a workflow body, and the compiler's checks."""
