"""Logging set-up shared by every entry point."""

import logging


def configure_logging(level: str = "INFO") -> None:
    """Plain, timestamped lines on stderr; entry points call this once."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
