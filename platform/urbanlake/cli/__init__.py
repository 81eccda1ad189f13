"""``urbanlake <verb>``: the command line for publishers, analysts and operators, one module per
group of verbs; importing the package registers them all on ``app``."""

# isort: skip_file
# The order of these imports is the order of the verbs in `urbanlake --help`: the project first,
# then data in, reading the lake, serving it, and keys.
from urbanlake.cli import project, ingest, query, serve, keys
from urbanlake.cli.app import app, main

__all__ = ["app", "ingest", "keys", "main", "project", "query", "serve"]
