"""CLI subcommands of the core (each: add_arguments(parser), run(args) -> int)."""
