"""The `kadr` command: one subcommand per process kind, plus ops commands."""
