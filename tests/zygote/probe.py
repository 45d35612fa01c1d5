"""A job for the fork-server tests, run where ``ucd.cli.main`` would run (the server's
``--entry``) or in a fresh interpreter (``python -m tests.zygote.probe``): it reports the
process state a job could inherit from another, sets all of it, crashes, exits, or waits."""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time


def state() -> dict:
    """What a job could see of another job that ran before it in the same process."""
    import logging

    import numpy as np
    import torch

    import ucd.data.decoded
    import ucd.data.tasks
    import ucd.models.deeplab

    return {
        "torch_initial_seed": torch.initial_seed(),
        "torch_rand": torch.rand(3).tolist(),
        "torch_threads": torch.get_num_threads(),
        "torch_dtype": str(torch.get_default_dtype()),
        "grad_enabled": torch.is_grad_enabled(),
        "numpy_random": np.random.random(3).tolist(),
        "python_random": random.random(),
        "module_global": getattr(ucd.data.tasks, "PROBE_MARK", None),
        "task_cache": ucd.data.tasks._registry.cache_info().currsize,
        "weights_cache": ucd.models.deeplab._parse_listing.cache_info().currsize,
        "decoded_used": len(ucd.data.decoded._USED),
        "imported_minidom": "xml.dom.minidom" in sys.modules,
        "env_dirty": os.environ.get("PROBE_DIRTY"),
        "root_handlers": len(logging.getLogger().handlers),
        "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "sigint_default": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
        "cwd": os.getcwd(),
        "argv": sys.argv[1:],
        "pid": os.getpid(),
    }


def dirty() -> None:
    """Change everything ``state`` reports (the next job must see none of it)."""
    import logging
    import xml.dom.minidom  # noqa: F401

    import numpy as np
    import torch

    import ucd.data.decoded
    import ucd.data.tasks
    import ucd.models.deeplab

    torch.manual_seed(123)
    np.random.seed(5)
    random.seed(7)
    torch.set_num_threads(2)
    torch.set_default_dtype(torch.float64)
    torch.set_grad_enabled(False)
    ucd.data.tasks.PROBE_MARK = "set by the first job"
    ucd.data.tasks.get_task("digits", "5-5")
    ucd.models.deeplab.packaged_weights()
    ucd.data.decoded._USED["/a/data/root"] = "/its/decoded/images"
    os.environ["PROBE_DIRTY"] = "1"
    logging.basicConfig()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main(argv: list[str]) -> int:
    """``train ACTION [ARG]``: state OUT | dirty OUT | crash | exit N | wait PIDFILE |
    print TEXT."""
    action, arg = argv[1], (argv[2] if len(argv) > 2 else None)
    if action in ("state", "dirty"):
        if action == "dirty":
            dirty()
        with open(arg, "w") as f:
            json.dump(state(), f)
    elif action == "crash":
        raise RuntimeError("the probe job crashed on purpose")
    elif action == "exit":
        sys.exit(int(arg))
    elif action == "wait":  # until a signal ends it (SIGTERM: exit 3, after a note)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
        with open(arg, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
        return 4
    elif action == "print":
        print(arg)
        print(f"to stderr: {arg}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
