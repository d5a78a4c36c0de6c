"""The larger subcommands of the `scratchnet` command, one module each.

Each module has `add_parser(commands)`, which registers its subcommand on the
argparse sub-parsers of scratchnet.cli, and the function that runs it.
"""


class InputError(Exception):
    """Bad input from the command line (a missing file, an unusable value).

    The subcommand prints it in one line and exits with status 2, as argparse
    does for a bad option.
    """
