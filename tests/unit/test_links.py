"""Supporters' signed links (streams/links.py): what a token says, who can make one, when it stops working."""

from datetime import datetime, timedelta, timezone

import pytest

from streams import links
from streams.links import BadLink, Link
from streams.settings import Settings

KEY = b"link key"
PK = "p0123456789abcdef0123456789abcdef"
START = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)


def rsvp_link(**kw) -> Link:
    return Link(**{"action_id": "rally-1", "person_key": PK, "channel": "sms", "language": "es", "expires_at": START + timedelta(hours=3), **kw})


def test_a_token_reads_back_as_the_ask_language_and_expiry_it_was_signed_for():
    token = links.sign(KEY, "rsvp", rsvp_link())
    assert links.read(KEY, "rsvp", "rally-1", token) == rsvp_link()
    assert links.read(KEY, "rsvp", "rally-1", token).ask_id == f"rally-1:{PK}:sms"
    email = links.sign(KEY, "unsubscribe", rsvp_link(channel="email", language="es-MX", expires_at=None))
    assert links.read(KEY, "unsubscribe", "rally-1", email) == rsvp_link(channel="email", language="es", expires_at=None)


def test_a_token_is_short_enough_for_a_text_and_safe_in_a_url():
    token = links.sign(KEY, "rsvp", rsvp_link())
    assert len(token) <= 48 and token.replace("-", "").replace("_", "").isalnum()
    assert links.url("https://x.org/r/", "rally-1", token) == f"https://x.org/r/rally-1/{token}"


def test_person_keys_of_another_shape_still_round_trip():
    odd = rsvp_link(person_key="person-42", language=None)
    assert links.read(KEY, "rsvp", "rally-1", links.sign(KEY, "rsvp", odd)) == odd


@pytest.mark.parametrize("how", ["other key", "other action", "other purpose", "flipped byte", "cut short", "not base64"])
def test_a_token_we_did_not_sign_for_this_is_refused(how):
    token = links.sign(KEY, "rsvp", rsvp_link())
    key, purpose, action = KEY, "rsvp", "rally-1"
    if how == "other key":
        key = b"another coalition"
    elif how == "other action":
        action = "rally-2"  # a valid link moved onto another action's URL
    elif how == "other purpose":
        purpose = "unsubscribe"  # an RSVP link does not unsubscribe anyone
    elif how == "flipped byte":
        token = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    elif how == "cut short":
        token = token[:-4]
    else:
        token = "%%%"
    with pytest.raises(BadLink):
        links.read(key, purpose, action, token)


def test_someone_elses_person_key_cannot_be_swapped_in():
    mine = links.sign(KEY, "rsvp", rsvp_link())
    theirs = links.sign(KEY, "rsvp", rsvp_link(person_key="p" + "f" * 32))
    spliced = theirs[:-16] + mine[-16:]  # their body, my signature
    with pytest.raises(BadLink):
        links.read(KEY, "rsvp", "rally-1", spliced)


def test_only_the_token_as_signed_is_read_not_one_with_padding_or_whitespace_added():
    # "=" or a newline after a token still opened the page and took answers (an outside probe):
    # base64 decoding dropped them. A link changed by one character does not work.
    token = links.sign(KEY, "rsvp", rsvp_link())
    assert links.read(KEY, "rsvp", "rally-1", token).person_key == rsvp_link().person_key
    for changed in (token + "=", token + "==", token + "\n", " " + token, token[:10] + "\n" + token[10:]):
        with pytest.raises(BadLink):
            links.read(KEY, "rsvp", "rally-1", changed)


def test_a_links_expiry_is_kept_to_the_minute():
    link = links.read(KEY, "rsvp", "rally-1", links.sign(KEY, "rsvp", rsvp_link(expires_at=START + timedelta(seconds=30))))
    assert link.expires_at == START + timedelta(minutes=1)  # rounded up


def test_the_link_key_is_its_own_setting_or_derived_from_the_person_key_secret():
    derived = Settings(person_key_secret="secret").link_key_bytes()
    assert derived != b"secret" and derived == Settings(person_key_secret="secret").link_key_bytes()
    assert Settings(person_key_secret="secret", link_secret="links").link_key_bytes() == b"links"


def test_links_point_at_the_web_app_unless_configured():
    s = Settings(public_url="https://turnout.example.org/")
    assert (s.rsvp_links, s.unsubscribe_links) == ("https://turnout.example.org/r", "https://turnout.example.org/unsubscribe")
    s = Settings(rsvp_base_url="https://rsvp.example.org/go/", unsubscribe_url="https://u.example.org/u")
    assert (s.rsvp_links, s.unsubscribe_links) == ("https://rsvp.example.org/go", "https://u.example.org/u")
