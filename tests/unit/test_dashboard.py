"""The dashboard's access rules, read model and exports, over HTTP with an in-memory tally book."""

import csv
import io
import json
import re
import time
from datetime import datetime, timedelta, timezone
from html import unescape

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.web import dashboard, exports
from connectors.web.app import create_app
from connectors.web.dashboard.view import REST_STYLE, Viewer, build_view, trend
from connectors.accounts.store import MemoryAccountLog
from connectors.web.publisher import ListPublisher
from contracts.asks import AskFact
from contracts.events import ActionEvent
from contracts.facts import ActionRecord, Attendance, Membership, Pledge
from contracts.tallies import TallyBook
from streams.coalition import add_partner, rotate_secret, set_enabled
from streams.settings import Settings
from tests.accounts import PASSWORD, account, add, sign_in, started_store
from tests.factories import action

TOKEN = "organizer-token"
NOW = datetime.now(timezone.utc).replace(second=0, microsecond=0)
PARTNERS = {"union-a": "Union Local A", "faith-b": "Faith Group B", "seniors-c": "Seniors C"}


def action_record(action_id: str, starts_at: datetime, title: str = "Rally for fair funding") -> ActionRecord:
    raw = {**action(action_id), "title": title, "starts_at": starts_at.isoformat()}
    return ActionRecord(partner="union-a", action=ActionEvent.model_validate(raw))


def seeded_book() -> TallyBook:
    """rally-1 started an hour ago: union-a pledged 40 and turned out 12; faith-b pledged 8 and
    turned out 3; seniors-c pledged 20 and nobody came. march-0 happened a week earlier."""
    book = TallyBook()
    book.apply("action", "rally-1", action_record("rally-1", NOW - timedelta(hours=1)))
    book.apply("action", "march-0", action_record("march-0", NOW - timedelta(days=7), title="March"))
    for partner, count in (("union-a", 40), ("faith-b", 8), ("seniors-c", 20)):
        book.apply("pledge", f"rally-1|{partner}", Pledge(action_id="rally-1", partner=partner, count=count, occurred_at=NOW, event_id=f"p-{partner}"))
    book.apply("pledge", "march-0|union-a", Pledge(action_id="march-0", partner="union-a", count=10, occurred_at=NOW, event_id="p0"))
    people = [("union-a", 12), ("faith-b", 3)]
    for partner, n in people:
        for i in range(n):
            at = NOW - timedelta(minutes=30 - i % 3)
            book.apply("attendance", f"rally-1|{partner}-pk{i}", Attendance(action_id="rally-1", person_key=f"{partner}-pk{i}", rsvp="yes", rsvp_at=at, rsvp_by=partner, attended_at=at, attended_by=partner))
    for i in range(4):
        book.apply("attendance", f"march-0|old-pk{i}", Attendance(action_id="march-0", person_key=f"old-pk{i}", attended_at=NOW - timedelta(days=7), attended_by="union-a"))
    for i, status in enumerate(("delivered", "delivered", "failed", "sending", "in_doubt", "deferred", "deferred", "expired", "cancelled")):
        book.apply("ask", f"rally-1:ask{i}:sms", AskFact(ask_id=f"rally-1:ask{i}:sms", action_id="rally-1", person_key=f"ask-pk{i}", channel="sms", partner="faith-b", status=status, updated_at=NOW))
    return book


ORGANIZER, VIEWER_B, VIEWER_A = "org@example.org", "staff@faith-b.example.org", "staff@union-a.example.org"


@pytest.fixture
def env(tmp_path):
    path = tmp_path / "coalition.toml"
    secrets = {pid: add_partner(path, pid, name, "union").secret.get_secret_value() for pid, name in PARTNERS.items()}
    s = Settings(coalition=path, organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    book, log = seeded_book(), MemoryAccountLog()
    add(log, account(ORGANIZER, "organizer"), account(VIEWER_B, "viewer", "faith-b"), account(VIEWER_A, "viewer", "union-a"))
    return TestClient(create_app(s, publisher=ListPublisher(), book=book, accounts=started_store(log))), secrets, book


def test_nothing_is_shown_without_signing_in(env):
    client, _, _ = env
    for path in ("/dashboard/view", "/dashboard/events", "/v1/exports/tallies.csv", "/v1/exports/aggregate.csv"):
        assert client.get(path).status_code == 401, path
    page = client.get("/dashboard", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/dashboard/login"


def test_webhook_secrets_and_the_organizer_token_do_not_sign_in_to_the_dashboard(env):
    client, secrets, _ = env
    for form in ({"partner": "faith-b", "secret": secrets["faith-b"]}, {"token": TOKEN},
                 {"email": "faith-b", "password": secrets["faith-b"]}, {"email": VIEWER_B, "password": secrets["faith-b"]}):
        r = client.post("/dashboard/login", data=form, follow_redirects=False)
        assert r.status_code == 401 and "not accepted" in r.text, form
        assert client.get("/dashboard/view").status_code == 401
    assert sign_in(client, VIEWER_B).status_code == 303  # the same client signs in with the account


def test_wrong_credentials_are_refused_and_sign_nobody_in(env):
    client, _, _ = env
    for email, password in ((VIEWER_B, "wrong password!"), ("nobody@example.org", PASSWORD), (VIEWER_B, "")):
        r = sign_in(client, email, password)
        assert r.status_code == 401 and "turnout_session" not in r.cookies, email
    assert client.get("/dashboard/view").status_code == 401


def test_an_organizer_sees_every_partner_and_who_pledged_and_produced_nothing(env):
    client, _, _ = env
    r = sign_in(client, ORGANIZER)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    page = client.get("/dashboard")
    assert page.status_code == 200
    # Without JavaScript the page's placeholder zeros would read as real figures: hidden, and said why.
    assert "<noscript><style>main > section, #status, #projector-toggle { display: none; }</style></noscript>" in page.text
    assert "The live tallies need JavaScript" in page.text.split("<main>", 1)[1]
    view = client.get("/dashboard/view").json()
    assert [a["action_id"] for a in view["actions"]] == ["rally-1", "march-0"]  # newest first
    rows = {r["partner"]: r for r in view["action"]["rows"]}
    assert set(rows) == set(PARTNERS)
    assert (rows["union-a"]["name"], rows["union-a"]["pledged"], rows["union-a"]["attended"], rows["union-a"]["production_ratio"]) == ("Union Local A", 40, 12, 0.3)
    assert rows["seniors-c"]["no_show"] and not rows["union-a"]["no_show"]
    assert (rows["faith-b"]["sent"], rows["faith-b"]["delivered"], rows["faith-b"]["failed"]) == (5, 2, 1)
    assert (rows["faith-b"]["sending"], rows["faith-b"]["in_doubt"]) == (1, 1)  # of those sent: no answer yet, and none to come
    assert rows["faith-b"]["deferred"] == 2  # not sent yet: waiting for the morning (quiet hours)
    assert (rows["faith-b"]["expired"], rows["faith-b"]["cancelled"]) == (1, 1)  # never sent: no allowed hour left; decided against
    assert view["action"]["totals"]["attended"] == 15
    assert view["header"] == {"active_actions": 2, "pledged": 78, "rsvp_yes": 15, "attended": 19, "sent": 5, "delivered": 2, "note": None}
    series = {s["partner"]: s["points"] for s in view["action"]["checkins"]}
    assert series["union-a"][-1][1] == 12 and series["faith-b"][-1][1] == 3
    assert [p[1] for p in series["union-a"]] == sorted(p[1] for p in series["union-a"])  # cumulative
    capacity = {c["partner"]: c for c in view["capacity"]}
    assert (capacity["union-a"]["pledged"], capacity["union-a"]["attended"], capacity["union-a"]["actions"]) == (50, 16, 2)
    assert capacity["union-a"]["recent"] == [0.4, 0.3] and capacity["union-a"]["trend"] == "falling"


def test_a_partner_sees_its_own_row_and_the_rest_only_as_an_aggregate(env):
    client, secrets, _ = env
    assert sign_in(client, VIEWER_B).status_code == 303
    r = client.get("/dashboard/view")
    view = r.json()
    rows = view["action"]["rows"]
    assert [row["partner"] for row in rows] == ["faith-b", None]
    own, rest = rows
    assert own["own"] and (own["pledged"], own["attended"], own["delivered"]) == (8, 3, 2)
    # Two other partners: their sum is withheld (tests/unit/test_disclosure.py has the rule).
    assert (rest["name"], rest["partners"], rest["pledged"], rest["attended"], rest["note"]) == ("Rest of the coalition", None, None, None, "not shown: fewer than 3 partners")
    assert [c["partner"] for c in view["capacity"]] == ["faith-b", None]
    # Across actions too: withheld whole, how many partners it covers included (an outside probe: "(2 partners)").
    assert (view["capacity"][1]["partners"], view["capacity"][1]["pledged"], view["capacity"][1]["note"]) == (None, None, "not shown: fewer than 3 partners")
    assert [(s["partner"], s["points"]) for s in view["action"]["checkins"]][1:] == [(None, None)]  # the rest's line: not shown
    for other in ("union-a", "seniors-c", "Union Local A", "Seniors C"):
        assert other not in r.text
    assert "pk" not in r.text  # no person keys either
    assert client.get("/v1/exports/tallies.csv").status_code == 403
    assert client.get("/v1/tallies").status_code == 403


def rotate(path, partner_id):
    rotate_secret(path, partner_id)


def disable(path, partner_id):
    set_enabled(path, partner_id, False)


def messages(lines):
    """(event, data) of each Server-Sent Event as it arrives, (None, "") for a keep-alive comment."""
    event, data, seen = None, [], False
    for line in lines:
        if not line:
            if seen:
                yield event, "\n".join(data)
            event, data, seen = None, [], False
            continue
        seen = True
        field, _, value = line.partition(":")
        if field == "event":
            event = value.strip()
        elif field == "data":
            data.append(value.strip())


def next_view(stream, deadline):
    for event, data in stream:
        if event == "view":
            return json.loads(data)
        assert time.monotonic() < deadline, "no view in time"
    raise AssertionError("the stream ended")


def pledged(book, partner, count):
    book.apply("pledge", f"rally-1|{partner}", Pledge(action_id="rally-1", partner=partner, count=count, occurred_at=NOW, event_id=f"p-{partner}-{count}"))


@pytest.mark.parametrize("change", [rotate, disable])
def test_a_rotated_or_disabled_partner_is_signed_out(env, tmp_path, change):
    client, secrets, _ = env
    sign_in(client, VIEWER_A)
    assert client.get("/dashboard/view").status_code == 200
    change(tmp_path / "coalition.toml", "union-a")
    assert client.get("/dashboard/view").status_code == 401
    assert client.get("/dashboard/events").status_code == 401


@pytest.mark.parametrize("change", [rotate, disable])
def test_an_open_event_stream_ends_once_its_partner_is_rotated_or_disabled(env, tmp_path, monkeypatch, change):
    client, secrets, book = env
    monkeypatch.setattr(dashboard, "HEARTBEAT", 0.05)  # nothing notifies changes here: the stream looks this often
    sign_in(client, VIEWER_A)
    with client.stream("GET", "/dashboard/events") as r:
        assert r.status_code == 200
        stream = messages(r.iter_lines())
        first = next_view(stream, time.monotonic() + 5)
        pledged(book, "union-a", 41)
        live = next_view(stream, time.monotonic() + 5)  # signed in: new figures keep coming
        assert live["version"] > first["version"] and live["action"]["rows"][0]["pledged"] == 41
        change(tmp_path / "coalition.toml", "union-a")
        pledged(book, "union-a", 42)
        deadline = time.monotonic() + 5
        for event, data in stream:  # the loop ends when the stream does
            assert event != "view", f"figures sent after sign-out: {data[:200]}"
            assert time.monotonic() < deadline, "the stream is still open after sign-out"


def test_the_tallies_export_has_every_figure_per_action_and_partner_for_organizers(env):
    client, _, _ = env
    r = client.get("/v1/exports/tallies.csv", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    by = {(row["action_id"], row["partner"]): row for row in rows}
    assert set(by) == {("rally-1", p) for p in PARTNERS} | {("march-0", "union-a")}
    assert (by[("rally-1", "union-a")]["attended"], by[("rally-1", "union-a")]["production_ratio"]) == ("12", "0.3")
    assert by[("rally-1", "faith-b")]["partner_name"] == "Faith Group B"


def test_exports_for_excel_start_with_a_byte_order_mark_and_the_dashboard_links_ask_for_it(env):
    # Excel opens a UTF-8 CSV without a BOM as the system's code page: "José" shows as "JosÃ©".
    client, _, book = env
    book.apply("action", "vigil-2", action_record("vigil-2", NOW - timedelta(hours=2), title="Vigilia de José"))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/v1/exports/tallies.csv", "/v1/exports/unique.csv", "/v1/exports/aggregate.csv"):
        plain, excel = client.get(path, headers=auth), client.get(path + "?bom=true", headers=auth)
        assert plain.content.startswith(b"action_id,"), path
        assert excel.content == b"\xef\xbb\xbf" + plain.content, path
        assert excel.headers["content-disposition"] == plain.headers["content-disposition"]
    assert "Vigilia de José" in client.get("/v1/exports/unique.csv?bom=true", headers=auth).content.decode("utf-8-sig")
    with_line = client.get("/v1/exports/aggregate.csv?note=line&bom=true", headers=auth).content
    assert with_line.startswith(b"\xef\xbb\xbf# ")
    sign_in(client, ORGANIZER)
    page = client.get("/dashboard").text
    links = [f"/v1/exports/{name}.csv?bom=true" for name in ("tallies", "unique", "aggregate")]
    assert all(f'href="{link}"' in page for link in links)
    assert all(client.get(link).content.startswith(b"\xef\xbb\xbfaction_id,") for link in links)


def test_the_aggregate_export_suppresses_every_count_from_1_to_10_and_names_nobody(env):
    client, _, book = env
    book.apply("action", "vigil-2", action_record("vigil-2", NOW - timedelta(hours=2), title="=HYPERLINK(\"x\")"))
    book.apply("action", "rally-5", action_record("rally-5", NOW - timedelta(hours=2), title="Rally #5 for care"))
    r = client.get("/v1/exports/aggregate.csv", headers={"Authorization": f"Bearer {TOKEN}"})
    # The note is beside the data, so the file loads as is in pandas and spreadsheets.
    assert "1 to 10" in r.headers["x-turnout-note"] and r.text.startswith("action_id,")
    with_line = client.get("/v1/exports/aggregate.csv?note=line", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert with_line == f"# {r.headers['x-turnout-note']}\n{r.text}"
    # pandas.read_csv(comment="#") cut an unquoted title at its "#" (an outside probe): text is quoted.
    assert '"rally-5","Rally #5 for care",' in with_line
    rows = {row["action_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    rally = rows["rally-1"]
    # pledged 68, RSVP yes 15, attended 15 are shown; 3 partners, 3 asks, 2 delivered are not.
    assert (rally["pledged"], rally["rsvp_yes"], rally["attended"]) == ("68", "15", "15")
    assert (rally["partners"], rally["asks_sent"], rally["delivered"], rally["opted_out"]) == ("<11", "<11", "<11", "0")
    assert rally["production_ratio"] == "0.2206"
    march = rows["march-0"]
    assert (march["pledged"], march["attended"], march["production_ratio"]) == ("<11", "<11", "")
    assert rows["vigil-2"]["title"].startswith("'=")  # no spreadsheet formula
    for name in (*PARTNERS, *PARTNERS.values()):
        assert name not in r.text


def test_trend_compares_the_latest_action_with_the_ones_before():
    assert trend([0.5]) == "too few actions"
    assert trend([0.2, 0.3, 0.8]) == "rising"
    assert trend([0.9, 0.8, 0.4]) == "falling"
    assert trend([0.5, 0.55]) == "steady"


def test_the_selected_action_falls_back_to_the_newest_and_unknown_partners_keep_their_id():
    book = seeded_book()
    view = build_view(book, {}, Viewer(role="organizer"), "no-such-action", NOW, 14)
    assert view.action.action_id == "rally-1"
    assert {r.name for r in view.action.rows} == set(PARTNERS)
    assert build_view(book, {}, Viewer(role="organizer"), "march-0", NOW, 3).header.active_actions == 1


def test_a_check_in_moved_to_another_minute_moves_in_the_chart():
    book = TallyBook()
    first = Attendance(action_id="a", person_key="pk", attended_at=NOW, attended_by="union-a")
    book.apply("attendance", "a|pk", first)
    book.apply("attendance", "a|pk", first.model_copy(update={"attended_at": NOW + timedelta(minutes=5)}))
    assert book.checkins("a") == {"union-a": {NOW + timedelta(minutes=5): 1}}


def test_organizers_see_people_once_each_overlap_and_merges_and_partners_only_their_own_show_rate(env):
    """The seeded rally: union-a's 12 and faith-b's 3 all said yes and came; march-0's 4 came.
    One person is known to two partners, one record was merged into someone known, and one of
    union-a's yeses for rally-1 was of someone who then did not come."""
    from contracts.identity import Merge

    client, _, book = env
    book.apply("membership", "union-a|union-a-pk0", Membership(partner="union-a", person_key="union-a-pk0", joined_at=NOW))
    book.apply("membership", "faith-b|union-a-pk0", Membership(partner="faith-b", person_key="union-a-pk0", joined_at=NOW))
    book.apply("merge", "old-key", Merge(person="old-key", into="union-a-pk0", at=NOW))
    book.apply("attendance", "rally-1|no-show", Attendance(action_id="rally-1", person_key="no-show", rsvp="yes", rsvp_at=NOW, rsvp_by="union-a"))
    sign_in(client, ORGANIZER)
    view = client.get("/dashboard/view").json()
    assert view["people"] == {"rsvp_yes": 16, "attended": 19, "rsvp_yes_all": 16, "attended_all": 19, "merges": 1, "overlap": 1}
    rows = {r["partner"]: r for r in view["action"]["rows"]}
    assert (rows["union-a"]["show_rate"], rows["faith-b"]["show_rate"], rows["seniors-c"]["show_rate"]) == (0.9231, 1.0, None)
    assert view["action"]["totals"]["show_rate"] == 0.9375
    r = client.get("/v1/exports/unique.csv")
    rows = {row["action_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert [(rows[a]["unique_rsvp_yes"], rows[a]["unique_attended"], rows[a]["show_rate"]) for a in ("rally-1", "march-0", "(coalition)")] == [
        ("16", "15", "0.9375"), ("0", "4", ""), ("16", "19", "0.9375")]
    client.post("/dashboard/logout")
    sign_in(client, VIEWER_B)
    view = client.get("/dashboard/view").json()
    assert view["people"] is None
    own, rest = view["action"]["rows"]
    assert (own["show_rate"], rest["show_rate"], view["action"]["totals"]["show_rate"]) == (1.0, None, None)
    assert client.get("/v1/exports/unique.csv").status_code == 403


# --- Issue 15, item 5: times, chart styles, pledges, "so far", the rest's actions ---------------


def test_an_action_start_is_written_in_the_action_zone_whatever_the_server_zone():
    book = TallyBook()
    at = datetime(2026, 12, 2, 23, 47, tzinfo=timezone.utc)  # 3:47 PM in Los Angeles
    raw = {**action("rr-1"), "starts_at": at.isoformat(), "time_zone": "America/Los_Angeles"}
    book.apply("action", "rr-1", ActionRecord(partner="union-a", action=ActionEvent.model_validate(raw)))
    view = build_view(book, {}, Viewer(role="organizer"), None, at - timedelta(days=1), 14)
    assert view.action.starts_local == "Wednesday, December 2, 2026, 3:47 PM PST"
    assert view.actions[0].starts_local == view.action.starts_local and view.actions[0].time_zone == "America/Los_Angeles"


def test_every_export_writes_an_action_start_in_its_zone_to_the_second():
    book = TallyBook()
    at = datetime(2026, 12, 2, 23, 47, 5, 123456, tzinfo=timezone.utc)  # posted as UTC, with microseconds
    raw = {**action("rr-1"), "starts_at": at.isoformat(), "time_zone": "America/Los_Angeles"}
    book.apply("action", "rr-1", ActionRecord(partner="union-a", action=ActionEvent.model_validate(raw)))
    book.apply("pledge", "rr-1|union-a", Pledge(action_id="rr-1", partner="union-a", count=5, occurred_at=at, event_id="p"))
    for rows in (exports.tallies_rows(book, {}), exports.unique_rows(book), exports.aggregate_rows(book)):
        assert next(rows)[2] == "2026-12-02T15:47:05-08:00"


def test_an_action_not_started_says_so_and_one_without_pledges_has_nothing_to_measure_against():
    book = TallyBook()
    book.apply("action", "later", action_record("later", NOW + timedelta(days=7)))
    book.apply("attendance", "later|pk", Attendance(action_id="later", person_key="pk", attended_at=NOW, attended_by="union-a"))
    view = build_view(book, {}, Viewer(role="organizer"), "later", NOW, 14).action
    assert (view.started, view.has_pledges) == (False, False)
    book.apply("pledge", "later|union-a", Pledge(action_id="later", partner="union-a", count=5, occurred_at=NOW, event_id="p"))
    assert build_view(book, {}, Viewer(role="organizer"), "later", NOW + timedelta(days=8), 14).action.started is True
    assert build_view(book, {}, Viewer(role="organizer"), "later", NOW, 14).action.has_pledges is True


def test_a_partner_line_keeps_its_style_when_another_partner_gets_its_first_check_in():
    book = seeded_book()
    names = {p: n for p, n in PARTNERS.items()} | {f"extra-{i:02d}": f"Extra {i}" for i in range(27)}  # 30 partners
    styles = lambda: {s.partner: s.style for s in build_view(book, names, Viewer(role="organizer"), "rally-1", NOW, 14).action.checkins}
    before = styles()
    book.apply("attendance", "rally-1|new", Attendance(action_id="rally-1", person_key="new", attended_at=NOW, attended_by="extra-00"))
    after = styles()
    assert before.items() <= after.items() and set(after) == {"union-a", "faith-b", "extra-00"}
    every = {p: i for p, i in zip(names, range(30))}  # the coalition file's order
    assert after == {p: every[p] for p in after}
    # 10 colours x 3 dashes: 30 partners, 30 different looks (the page's lineStyle)
    assert len({(i % 10, i // 10 % 3) for i in every.values()}) == 30


def test_a_partner_line_keeps_its_style_when_a_partner_joins_at_the_end_of_the_coalition_file():
    """An outside probe: styles followed the ids' sort order, so a new partner whose id sorts first
    moved every line's colour."""
    book = seeded_book()
    styles = lambda names: {s.partner: s.style for s in build_view(book, names, Viewer(role="organizer"), "rally-1", NOW, 14).action.checkins}
    before = styles(dict(PARTNERS))
    assert styles({**PARTNERS, "aaa-first-by-id": "A"}) == before
    assert before == {p: list(PARTNERS).index(p) for p in before}


def test_who_produces_counts_the_turnout_of_the_actions_a_partner_pledged_to():
    book = seeded_book()
    book.apply("action", "walk-9", action_record("walk-9", NOW - timedelta(days=2), title="Walk"))
    book.apply("attendance", "walk-9|w0", Attendance(action_id="walk-9", person_key="w0", attended_at=NOW, attended_by="faith-b"))
    faith = {c.partner: c for c in build_view(book, PARTNERS, Viewer(role="organizer"), None, NOW, 14).capacity}["faith-b"]
    assert (faith.pledged, faith.attended, faith.production_ratio) == (8, 4, 0.375)  # 3 of 8 at rally-1; walk-9 had no pledge


def test_a_partner_sees_its_own_line_as_the_first_style_and_no_place_in_the_coalition():
    view = build_view(seeded_book(), PARTNERS, Viewer(role="partner", partner="union-a"), "rally-1", NOW, 14)
    assert [(s.partner, s.style) for s in view.action.checkins] == [("union-a", 0), (None, REST_STYLE)]


def test_the_rest_of_the_coalition_counts_the_actions_its_shown_pledges_come_from():
    """Partner view of a coalition where three other partners pledged for rally-1 and one for
    march-0: the rest's 'actions pledged' counts rally-1 only, as its pledged figure does."""
    book = seeded_book()
    book.apply("pledge", "rally-1|tenants-d", Pledge(action_id="rally-1", partner="tenants-d", count=7, occurred_at=NOW, event_id="p-d"))
    for i in range(3):
        book.apply("attendance", f"rally-1|d{i}", Attendance(action_id="rally-1", person_key=f"d{i}", attended_at=NOW, attended_by="tenants-d"))
    view = build_view(book, PARTNERS, Viewer(role="partner", partner="faith-b"), None, NOW, 14)
    rest = view.capacity[-1]
    assert (rest.partner, rest.pledged, rest.actions) == (None, 67, 1)
    own = view.capacity[0]
    assert (own.partner, own.actions, own.pledged, own.show_rate) == ("faith-b", 1, 8, 1.0)


def noscript_links(html: str) -> list[tuple[str, str]]:
    return [(href, unescape(text)) for block in re.findall(r"<noscript>(.*?)</noscript>", html, re.S)
            for href, text in re.findall(r'<a [^>]*href="([^"]+)"[^>]*>([^<]+)</a>', block)]


def test_without_javascript_the_dashboard_says_what_was_posted_and_leads_on(env):
    """An outside probe: without JavaScript the console's last step landed on a page that said
    only that the tallies need JavaScript, not "Action posted.", and partner staff could not
    reach the door check-in page from it."""
    client, _, _ = env
    sign_in(client, ORGANIZER)
    page = client.get("/dashboard?action=rally-1&posted=action").text
    assert re.search(r'<p id="posted" class="notice" role="status">Action posted\.</p>', page)
    assert noscript_links(page) == [("/dashboard/console?action=rally-1", "Edit in the organizer console"),
                                    ("/dashboard/console", "New action or alert")]
    assert 'id="posted" class="notice" role="status" hidden' in client.get("/dashboard?posted=<script>").text  # nothing else is said
    client.cookies.clear()
    sign_in(client, VIEWER_B)
    page = client.get("/dashboard").text  # the newest action, as the page's script shows it
    assert noscript_links(page) == [("/dashboard/checkin/rally-1", "Door check-in for this action")]
