"""The edge: HTTP API, the room socket, auth and roles, config, persistence, CLI."""
