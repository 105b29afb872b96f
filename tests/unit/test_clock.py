"""The file clock: standing still where it is set, or running with real time from there."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from streams.clock import file_clock, from_setting, run_file_clock, set_file_clock
from tests.polling import eventually

NOON = datetime(2026, 11, 24, 20, 0, tzinfo=timezone.utc)


def test_a_file_clock_stands_where_it_is_set(tmp_path):
    path = tmp_path / "clock.txt"
    set_file_clock(path, NOON)
    clock = from_setting(f"file:{path}")
    assert clock() == NOON == clock()
    set_file_clock(path, "2026-11-24T13:30:00-07:00")  # read in UTC
    assert clock() == datetime(2026, 11, 24, 20, 30, tzinfo=timezone.utc)


def test_a_running_file_clock_moves_forward_from_where_it_stood_until_stopped(tmp_path):
    path, stopped = tmp_path / "clock.txt", threading.Event()
    set_file_clock(path, NOON)
    thread = run_file_clock(path, stopped, every=0.01)
    moved = eventually(lambda: (now := file_clock(path)()) > NOON and now, timeout=5)
    assert (moved - NOON).total_seconds() < 5
    stopped.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    last = file_clock(path)()
    assert file_clock(path)() == last and last >= moved


def test_a_clock_setting_is_system_or_a_file():
    assert from_setting("system")().tzinfo is not None
    with pytest.raises(ValueError, match="TURNOUT_CLOCK"):
        from_setting("ntp")


def test_a_file_clock_time_without_a_utc_offset_is_refused_not_read_in_the_local_zone(tmp_path, monkeypatch):
    from streams.settings import Settings
    from streams.startup import clock_problem

    path = tmp_path / "clock.txt"
    set_file_clock(path, "2026-11-24T19:00:00")  # each process would read it in its own TZ
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    with pytest.raises(ValueError, match="no UTC offset"):
        file_clock(path)()
    problem = clock_problem(Settings(clock=f"file:{path}"))
    assert problem and "no UTC offset" in problem and "2026-11-24T19:00:00+00:00" in problem
