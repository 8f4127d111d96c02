"""Where state lives: the event store and its projection, the blob store."""
