"""The HTTP API (docs/api.md): an entry point beside the pages and the CLI, calling the same services.

Modules:
  app         the app factory `create_app()` and `/health`
  auth        bearer-token dependency, permission checks, the route's transaction
  errors      `{"error": message}` handlers and their statuses
  limits      the request body limit (413)
  serialize   service results as JSON values
  sources, batches, fragments, comparison, reports, export, tokens   the routers, one per concern
"""
