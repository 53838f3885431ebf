"""ExampleGen for labelled numeric data: validation, counted drops, protocol splits."""
