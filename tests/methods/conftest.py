"""Method tests run torch on one thread: tiny models gain nothing from more, and on a shared
2-core machine intra-op threads competing with other processes slow them down 10-100x."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
