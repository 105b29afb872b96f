from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from agents.outreach.quiet_hours import QuietHours, next_allowed, recipient_zone, validity_period

UTC = timezone.utc
NIGHT = QuietHours()  # 21:00-09:00
NY, LA = "America/New_York", "America/Los_Angeles"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(t: datetime, zone: str) -> str:
    return t.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


# --- recipient_zone ----------------------------------------------------------------------

@pytest.mark.parametrize(("postal", "phone", "expected"), [
    ("94607", None, LA),
    ("10001-1234", "+15105550123", NY),  # the ZIP wins over the phone's area code
    ("85001", None, "America/Phoenix"),
    (None, "+15105550123", LA),  # area code 510: one zone
    ("00000", "+442079460000", "Europe/London"),  # no such ZIP: the phone decides
    ("SW1A 1AA", "+18005550123", "Europe/Paris"),  # toll-free lists dozens of zones: the action's
    ("09001", None, "Europe/Paris"),  # military ZIP, no time zone in the data
    # Napakiak, Alaska: the ZIP data names its zone "Napakiak", and area code 907 spans two zones;
    # the action's zone texted it at 08:00 Alaska time (an outside probe).
    ("99634", "+19075550113", "America/Anchorage"),
    (None, "not a phone", "Europe/Paris"),
    (None, None, "Europe/Paris"),
])
def test_recipient_zone(postal, phone, expected):
    assert recipient_zone(postal, phone, "Europe/Paris") == expected


# --- QuietHours ------------------------------------------------------------------------

def test_window_across_midnight_covers_start_but_not_end():
    assert [NIGHT.covers(time(*hm)) for hm in [(20, 59), (21, 0), (0, 0), (8, 59), (9, 0), (12, 0)]] == \
        [False, True, True, True, False, False]


def test_window_within_a_day():
    lunch = QuietHours(time(13), time(14))
    assert [lunch.covers(time(*hm)) for hm in [(12, 59), (13, 0), (13, 59), (14, 0), (2, 0)]] == \
        [False, True, True, False, False]


def test_empty_window_is_refused():
    with pytest.raises(ValueError):
        QuietHours(time(9), time(9))


# --- next_allowed ----------------------------------------------------------------------

def test_daytime_is_allowed_now():
    assert next_allowed(utc(2026, 6, 10, 15), NY, NIGHT) is None  # 11:00 EDT


@pytest.mark.parametrize("now", [
    utc(2026, 6, 11, 1),  # 21:00 EDT, the first quiet minute
    utc(2026, 6, 11, 2),  # 22:00 EDT
    utc(2026, 6, 11, 4, 30),  # 00:30 EDT, after local midnight
    datetime(2026, 6, 11, 8, 59, 59, 500000, tzinfo=ZoneInfo(NY)),
])
def test_evening_and_night_are_deferred_to_nine_local(now):
    assert next_allowed(now, NY, NIGHT) == utc(2026, 6, 11, 13)


def test_nine_local_exactly_is_allowed():
    assert next_allowed(utc(2026, 6, 11, 13), NY, NIGHT) is None


def test_the_same_instant_is_quiet_in_one_zone_and_not_in_another():
    now = utc(2026, 6, 11, 3)  # 23:00 EDT, 20:00 PDT
    assert next_allowed(now, LA, NIGHT) is None
    assert next_allowed(now, NY, NIGHT) == utc(2026, 6, 11, 13)


def test_result_is_utc():
    assert next_allowed(datetime(2026, 6, 10, 22, tzinfo=ZoneInfo(NY)), NY, NIGHT).tzinfo == UTC


def test_spring_forward_night_ends_at_nine_daylight_time():
    allowed = next_allowed(utc(2026, 3, 8, 3), NY, NIGHT)  # 22:00 EST on Mar 7
    assert allowed == utc(2026, 3, 8, 13)  # 09:00 EDT, not 14:00Z (10:00 EDT)
    assert local(allowed, NY) == "2026-03-08 09:00 EDT"


def test_fall_back_night_ends_at_nine_standard_time():
    allowed = next_allowed(utc(2026, 11, 1, 2), NY, NIGHT)  # 22:00 EDT on Oct 31
    assert allowed == utc(2026, 11, 1, 14)  # 09:00 EST, not 13:00Z (08:00 EST)


def test_zone_without_dst_is_unaffected_by_us_dst():
    assert next_allowed(utc(2026, 3, 8, 5), "America/Phoenix", NIGHT) == utc(2026, 3, 8, 16)


def test_midnight_repeated_by_fall_back_in_santiago():
    # 2026-04-05 00:00 -03 becomes 2026-04-04 23:00 -04: the evening is an hour longer.
    for now in (utc(2026, 4, 5, 1), utc(2026, 4, 5, 3, 30)):  # 22:00 -03, then 23:30 -04 (second pass)
        assert next_allowed(now, "America/Santiago", NIGHT) == utc(2026, 4, 5, 13)  # 09:00 -04


def test_midnight_skipped_by_spring_forward_in_santiago():
    # 2026-09-06 00:00 -04 becomes 01:00 -03.
    assert next_allowed(utc(2026, 9, 6, 1), "America/Santiago", NIGHT) == utc(2026, 9, 6, 12)  # 09:00 -03


def test_end_inside_a_dst_gap_allows_sending_when_the_gap_ends():
    # Havana skips 00:00-01:00 on 2026-03-08; a window ending 00:30 ends at the jump (01:00 CDT).
    late = QuietHours(time(23), time(0, 30))
    assert next_allowed(utc(2026, 3, 8, 4, 30), "America/Havana", late) == utc(2026, 3, 8, 5)
    # New York skips 02:00-03:00 on 2026-03-08.
    early = QuietHours(time(1), time(2, 30))
    assert next_allowed(utc(2026, 3, 8, 6, 30), NY, early) == utc(2026, 3, 8, 7)  # 03:00 EDT


def test_repeated_hour_is_quiet_on_both_passes():
    # New York repeats 01:00-02:00 on 2026-11-01; quiet 00:00-01:30 applies to both 01:15s.
    window = QuietHours(time(0), time(1, 30))
    assert next_allowed(utc(2026, 11, 1, 4, 30), NY, window) == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert next_allowed(utc(2026, 11, 1, 5, 45), NY, window) is None  # 01:45 EDT
    assert next_allowed(utc(2026, 11, 1, 6, 15), NY, window) == utc(2026, 11, 1, 6, 30)  # 01:15 -> 01:30 EST


def test_window_that_does_not_cross_midnight():
    lunch = QuietHours(time(13), time(14))
    kolkata = "Asia/Kolkata"  # UTC+05:30
    assert next_allowed(utc(2026, 6, 10, 8), kolkata, lunch) == utc(2026, 6, 10, 8, 30)  # 13:30 -> 14:00 IST
    assert next_allowed(utc(2026, 6, 10, 7, 29), kolkata, lunch) is None  # 12:59
    assert next_allowed(utc(2026, 6, 10, 8, 30), kolkata, lunch) is None  # 14:00


def test_end_with_seconds_is_rounded_up_to_the_minute():
    window = QuietHours(time(21), time(9, 0, 30))
    assert next_allowed(utc(2026, 6, 10, 12), NY, window) == utc(2026, 6, 10, 13, 1)


def test_naive_now_is_refused():
    with pytest.raises(ValueError):
        next_allowed(datetime(2026, 6, 10, 12), NY, NIGHT)


# --- validity_period -------------------------------------------------------------------

def test_validity_lasts_until_quiet_hours_start():
    assert validity_period(utc(2026, 6, 10, 16), NY, NIGHT) == 9 * 3600  # 12:00 -> 21:00 EDT


def test_validity_is_clipped_to_twilios_maximum():
    assert validity_period(utc(2026, 6, 10, 13), NY, NIGHT) == 36000  # 12 h to go
    assert validity_period(utc(2026, 6, 10, 13), NY, NIGHT, max_seconds=50000) == 12 * 3600


def test_validity_is_at_least_one_second():
    assert validity_period(utc(2026, 6, 11, 0, 59, 59), NY, NIGHT) == 1
    assert validity_period(datetime(2026, 6, 11, 0, 59, 59, 600000, tzinfo=UTC), NY, NIGHT) == 1


def test_validity_counts_whole_seconds_down():
    assert validity_period(datetime(2026, 6, 11, 0, 58, 0, 500000, tzinfo=UTC), NY, NIGHT) == 119


def test_validity_inside_quiet_hours_is_refused():
    with pytest.raises(ValueError, match="next_allowed"):
        validity_period(utc(2026, 6, 11, 2), NY, NIGHT)


def test_validity_across_a_midnight_dst_change():
    # Santiago 2026-04-04 22:00 -03; quiet from 01:00, which comes 4 h later (23:00-24:00 repeats).
    window = QuietHours(time(1), time(7))
    assert validity_period(utc(2026, 4, 5, 1), "America/Santiago", window) == 4 * 3600


def test_validity_when_quiet_hours_start_inside_a_dst_gap():
    # New York 01:50 EST on 2026-03-08; quiet from 02:30, which does not exist: quiet from 03:00 EDT.
    window = QuietHours(time(2, 30), time(6))
    assert validity_period(utc(2026, 3, 8, 6, 50), NY, window) == 600


def test_validity_when_fall_back_brings_quiet_hours_back():
    # 01:45 EDT on 2026-11-01, quiet 01:00-01:30: at 06:00Z the clock reads 01:00 EST again.
    window = QuietHours(time(1), time(1, 30))
    assert validity_period(utc(2026, 11, 1, 5, 45), NY, window) == 15 * 60
