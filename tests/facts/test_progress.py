"""Progress in log files: plain lines, no carriage returns; a bar only on a terminal."""

from __future__ import annotations

import logging

from ucd.facts.progress import Progress


def test_off_a_terminal_progress_is_plain_log_lines(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="ucd.facts.progress"):
        bar = Progress(range(5), desc="step 1 epoch 1/2", every_s=0.0, terminal=False)
        for i in bar:
            bar.set(loss=f"{i / 10:.1f}")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "step 1 epoch 1/2: 1/5 loss 0.0"
    assert lines[-1] == "step 1 epoch 1/2: 5/5 loss 0.4"
    out = capsys.readouterr()
    assert "\r" not in out.err + out.out + "".join(lines)


def test_lines_are_spaced_by_the_interval_and_the_last_is_always_written(caplog):
    with caplog.at_level(logging.INFO, logger="ucd.facts.progress"):
        assert list(Progress(range(100), desc="x", every_s=3600.0, terminal=False)) == list(
            range(100)
        )
    assert [r.getMessage() for r in caplog.records] == ["x: 100/100"]


def test_a_resumed_loop_counts_from_where_it_was(caplog):
    with caplog.at_level(logging.INFO, logger="ucd.facts.progress"):
        list(Progress(range(3), desc="e", total=10, initial=7, every_s=3600.0, terminal=False))
    assert [r.getMessage() for r in caplog.records] == ["e: 10/10"]


def test_disabled_progress_says_nothing(caplog):
    with caplog.at_level(logging.INFO, logger="ucd.facts.progress"):
        list(Progress(range(3), desc="e", every_s=0.0, terminal=False, enabled=False))
    assert caplog.records == []
