"""``python -m ucd``: a `train` job goes to the fork server when the workflow runs one
(``UCD_ZYGOTE``, local runs), else (and when it declines) it runs here."""

import sys

from ucd.zygote.client import run

code = run(sys.argv[1:])
if code is None:
    from ucd.cli import main

    code = main()
raise SystemExit(code)
