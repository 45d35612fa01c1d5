"""Progress of long loops: a bar on a terminal, plain log lines every few seconds elsewhere.

Jobs of the workflow write to log files, where a progress bar's carriage returns pile up into
one unreadable line (135 KB for one training job); there, one line every ``every_s`` seconds
says where the loop is.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")
log = logging.getLogger("ucd.facts.progress")


class Progress:
    """Iterate over ``items`` showing ``desc`` and a count out of ``total``.

    ``set(**values)`` attaches values (loss, images/s) shown with the next update.
    ``terminal=None`` decides from whether stderr is a terminal.
    """

    def __init__(self, items: Iterable[T], *, desc: str, total: int | None = None,
                 initial: int = 0, every_s: float = 10.0, terminal: bool | None = None,
                 enabled: bool = True) -> None:
        self.items, self.desc, self.every_s = items, desc, every_s
        self.total = total if total is not None else _length(items)
        self.count, self.values = initial, {}
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.enabled = enabled
        self._bar = None
        self._last = time.monotonic()

    def __iter__(self) -> Iterator[T]:
        if self.enabled and self.terminal:
            self._bar = tqdm(self.items, desc=self.desc, total=self.total, initial=self.count,
                             mininterval=1.0, dynamic_ncols=True, file=sys.stderr)
            yield from self._bar
            return
        for item in self.items:
            yield item
            self.count += 1
            now = time.monotonic()
            if self.enabled and (now - self._last >= self.every_s or self.count == self.total):
                self._last = now
                log.info("%s", self.line())

    def line(self) -> str:
        """The plain progress line: description, count/total and the attached values."""
        total = f"/{self.total}" if self.total is not None else ""
        extra = " ".join(f"{k} {v}" for k, v in self.values.items())
        return f"{self.desc}: {self.count}{total}" + (f" {extra}" if extra else "")

    def set(self, **values: Any) -> None:
        self.values = values
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)


def _length(items: Iterable[Any]) -> int | None:
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None
