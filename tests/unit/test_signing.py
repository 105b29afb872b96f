import re

import pytest

from connectors.signing import SignatureError, headers, signature, verify

SECRET = "s3cret"
BODY = b'{"type":"pledge"}'
NOW = 1_790_000_000


def test_a_valid_signature_verifies():
    h = headers("union-a", SECRET, BODY, NOW)
    verify(SECRET, h["X-Turnout-Timestamp"], h["X-Turnout-Signature"], BODY, NOW + 10, 300)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1790000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, NOW, BODY) == f"v1={expected}"


@pytest.mark.parametrize(
    "secret, ts, body, now, reason",
    [
        ("wrong", NOW, BODY, NOW, "does not match"),
        (SECRET, NOW, BODY + b" ", NOW, "does not match"),
        (SECRET, NOW, BODY, NOW + 301, "from now"),
        (SECRET, NOW, BODY, NOW - 301, "from now"),
    ],
    ids=["wrong secret", "tampered body", "stale timestamp", "future timestamp"],
)
def test_bad_signatures_are_refused(secret, ts, body, now, reason):
    sig = signature(secret, ts, BODY)
    with pytest.raises(SignatureError, match=reason):
        verify(SECRET, str(ts), sig, body, now, 300)


def test_missing_or_malformed_headers_are_refused():
    with pytest.raises(SignatureError, match="missing"):
        verify(SECRET, None, "v1=00", BODY, NOW, 300)
    with pytest.raises(SignatureError, match="unix seconds"):
        verify(SECRET, "yesterday", "v1=00", BODY, NOW, 300)


@pytest.mark.parametrize("ts", ["9" * 400, "1_790000000", " 1790000000", "1790000000 ", "+1790000000", "\u0661\u0667\u0669\u0660\u0660\u0660\u0660\u0660\u0660\u0660"],
                         ids=["400 digits", "underscore", "leading space", "trailing space", "plus sign", "arabic-indic digits"])
def test_a_timestamp_is_taken_only_as_ascii_digits(ts):
    with pytest.raises(SignatureError, match="unix seconds"):
        verify(SECRET, ts, signature(SECRET, ts, BODY), BODY, NOW, 300)


def test_a_timestamp_swapped_under_a_valid_signature_is_refused():
    sig = signature(SECRET, NOW, BODY)
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, str(NOW + 1), sig, BODY, NOW, 300)


def test_the_timestamp_is_signed_as_it_is_written():
    # An outside probe: a partner that wrote "01790000000" and signed that text was told the
    # signature did not match; the recipe signs "<X-Turnout-Timestamp>.<raw body>".
    ts = "0" + str(NOW)
    verify(SECRET, ts, signature(SECRET, ts, BODY), BODY, NOW, 300)
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, ts, signature(SECRET, NOW, BODY), BODY, NOW, 300)


def test_the_readmes_worked_example_signs_as_it_says():
    # A newcomer wrote a signer from the README alone: a known answer to check it against.
    from pathlib import Path

    readme = Path(__file__).parents[2].joinpath("README.md").read_text()
    secret, ts, body, sig = re.search(r"A worked example: secret\s+`([^`]+)`, timestamp `(\d+)` and the body\s+`([^`]+)`\s+sign to\s+`([^`]+)`", readme).groups()
    assert signature(secret, ts, body.encode()) == sig


@pytest.mark.parametrize("sig, says", [("3742c75257f861263c8ed61e939b3cad4bcd9494b107ab92324b66c2d5213c02", "not v1= and 64 lowercase hex"),
                                       ("v1=3742C75257F861263C8ED61E939B3CAD4BCD9494B107AB92324B66C2D5213C02", "not v1= and 64 lowercase hex"),
                                       ("v1=" + "0" * 64, "of the timestamp, a dot and the 17 bytes of the body received")])
def test_a_signature_refused_says_what_is_expected(sig, says):
    # Every mistake (no "v1=", uppercase hex, a body curl -d had changed) got "signature does not match" alone.
    with pytest.raises(SignatureError, match=re.escape(says)):
        verify(SECRET, str(NOW), sig, BODY, NOW, 300)
