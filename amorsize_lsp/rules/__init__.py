"""The AMZ rule catalogue: one module per rule, shared by the CLI and the server."""
