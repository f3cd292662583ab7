"""Command-line options of this subcommand (argparse only: imported when the parser is built)."""

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    pass
