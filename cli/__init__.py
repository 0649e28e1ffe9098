"""The `cinerec` command line: the one entry point people need. May import every component."""
