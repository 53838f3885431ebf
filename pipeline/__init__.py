"""The pipeline definition, its config, the local runner and the CLI."""
