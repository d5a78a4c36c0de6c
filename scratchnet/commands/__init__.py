"""The larger subcommands of the `scratchnet` command, one module each.

Each module has `add_parser(commands)`, which registers its subcommand on the
argparse sub-parsers of scratchnet.cli, and the function that runs it.
"""

import sys


class InputError(Exception):
    """Bad input from the command line (a missing file, an unusable value).

    The subcommand prints it in one line and exits with status 2, as argparse
    does for a bad option.
    """


def guarded(action):
    """action(args), with an InputError printed in one line and exit status 2.

    The line names the command as typed: "scratchnet face enroll: error: ...".
    """
    def run(args):
        try:
            return action(args)
        except InputError as error:
            words = ["scratchnet", args.command] + ([args.action] if getattr(args, "action", None)
                                                    else [])
            print(f"{' '.join(words)}: error: {error}", file=sys.stderr)
            return 2
    return run
