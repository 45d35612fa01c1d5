"""How ``python -m ucd`` runs a command: a `train` job goes to the fork server when the
workflow runs one (``UCD_ZYGOTE``, local runs only; ucd.zygote), else it runs here.

A `train` job that ran here exits without the interpreter's teardown of its ~1,300 modules
(about 0.5 CPU-s and 1-3 s of wall time on a busy 2-core machine): the atexit handlers run and
the streams are flushed, then the process ends (``ucd.zygote.child.finish``), as a job of the
fork server does. Standard library only until the command itself runs.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from ucd.zygote.client import run


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the command ``argv`` (default: this process's arguments) and exit with its status."""
    argv = sys.argv[1:] if argv is None else argv
    code = run(argv)
    if code is None:
        from ucd.cli import main as run_here

        code = run_here(argv)
        if argv[:1] == ["train"]:
            from ucd.zygote.child import finish

            finish(code)
    raise SystemExit(code)
