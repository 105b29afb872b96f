"""`turnout import` posts a sign-in sheet through the real signed ingress into real workers."""

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.keys import person_key
from streams.stack import child_env
from streams.topology import PEOPLE
from tests.integration.test_outreach import latest
from tests.polling import eventually

pytestmark = pytest.mark.integration

SHEET = "First Name,Last Name,Phone,Email,ZIP\n" \
        "Ana,Diaz,(510) 555-0123,ana@example.org,94607\n" \
        "Ben,Okafor,,ben@example.org,94612\n" \
        "Carla,Nguyen,not a phone,,94606\n" \
        "Dev,Patel,510-555-0124,dev@@example,94607\n" \
        "Fay,Kim,510.555.0126,,94601\n"
RSVPS = "phone,email,status\n(510) 555-0123,,yes\n,ben@example.org,yes\n510 555 0126,,no\n"


def signups(stack) -> dict[str, int]:
    return {p["partner"]: p["signups"] for p in stack.get("/v1/tallies").json()["partners"]}


def test_a_sheet_imports_its_good_rows_reports_bad_ones_by_line_and_counts_once(make_stack, tmp_path):
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    stack.announce('rally-9')
    sheet, rsvps = tmp_path / "sheet.csv", tmp_path / "rsvps.csv"
    sheet.write_text(SHEET)
    rsvps.write_text(RSVPS)
    runner, env = CliRunner(), child_env(stack.settings)

    dry = runner.invoke(main, ["import", "union-a", str(sheet), "--type", "signup", "--consent", "sms", "--dry-run", "--url", stack.url], env=env)
    assert dry.exit_code == 1, dry.output
    assert "3 rows would be imported, 2 bad" in dry.output
    assert "line 4" in dry.output and "line 5" in dry.output
    assert "555-0123" not in dry.output
    # RSVPs for an action nobody posted: accepted, but said plainly that they do not count yet.
    dry = runner.invoke(main, ["import", "union-a", str(rsvps), "--type", "rsvp", "--action", "rally-typo", "--dry-run", "--url", stack.url], env=env)
    assert dry.exit_code == 0 and "no partner has posted action 'rally-typo'" in dry.output, dry.output

    for _ in range(2):  # the same file twice counts once
        r = runner.invoke(main, ["import", "union-a", str(sheet), "--type", "signup", "--consent", "sms", "--url", stack.url], env=env)
        assert r.exit_code == 1 and "imported 3 rows" in r.output and "2 bad rows" in r.output, r.output
    r = runner.invoke(main, ["import", "union-a", str(rsvps), "--type", "rsvp", "--action", "rally-9", "--url", stack.url], env=env)
    assert r.exit_code == 0 and "imported 3 rows" in r.output and r.output.rstrip().endswith("; no bad rows"), r.output

    eventually(lambda: stack.action_rows("rally-9") == {"union-a": {"pledged": 0, "rsvp_yes": 2, "attended": 0}})
    eventually(lambda: signups(stack) == {"union-a": 3})
    r = runner.invoke(main, ["import", "union-a", str(rsvps), "--type", "rsvp", "--action", "rally-9", "--url", stack.url], env=env)
    assert r.exit_code == 0 and "posted" not in r.output, r.output  # rally-9 is posted: no warning
    eventually(lambda: stack.action_rows("rally-9") == {"union-a": {"pledged": 0, "rsvp_yes": 2, "attended": 0}})
    assert signups(stack) == {"union-a": 3}

    # The partner's do-not-contact list: Ana (by phone) and Ben (by email) stop both channels.
    stop = tmp_path / "do-not-contact.csv"
    stop.write_text("Name,Phone,Email\nAna,510 555 0123,\nBen,,ben@example.org\n")
    r = runner.invoke(main, ["import", "union-a", str(stop), "--type", "opt_out", "--stop", "sms", "--stop", "email", "--url", stack.url], env=env)
    assert r.exit_code == 0 and "imported 2 rows" in r.output, r.output
    secret = stack.settings.person_key_bytes()
    for key in (person_key(secret, "+15105550123", None), person_key(secret, None, "ben@example.org")):
        eventually(lambda key=key: set(latest(stack, PEOPLE).get(key, {}).get("opted_out", {})) == {"sms", "email"})


def test_a_sheet_whose_rows_pass_the_dry_run_is_posted_in_requests_the_web_app_takes(make_stack, tmp_path):
    # An outside probe: 600 rows of names in emoji and addresses with accents passed --dry-run, and
    # the import stopped at "the web app refused (413)": 500 events a request, each written with
    # \u escapes, were 1.4 MB, over the 1 MiB the web app takes. Nothing was imported.
    stack = make_stack()
    stack.start_web()  # the ingress's 202 needs the broker only
    rows = [f"{'😀' * 100},{'𝔘' * 100},+1510555{i:04d},{'ü' * 25}{i}@example.org,94607" for i in range(600)]
    sheet = tmp_path / "emoji.csv"
    sheet.write_text("First Name,Last Name,Phone,Email,ZIP\n" + "\n".join(rows) + "\n")
    r = CliRunner().invoke(main, ["import", "union-a", str(sheet), "--type", "signup", "--url", stack.url], env=child_env(stack.settings))
    assert r.exit_code == 0, r.output
    assert "imported 600 rows" in r.output
