"""Strict JSON bodies: limits that refuse before anything recurses, and what is marked for the
per-event checks (duplicate keys, strings that are not valid Unicode)."""

import json

import pytest

from connectors.web.body import MAX_DEPTH, MAX_NUMBER_CHARS, BadBody, depth, load_json, problems


def test_nesting_is_measured_on_the_bytes_with_strings_and_escapes_skipped():
    assert depth(b'[{"a": "[[[{{{", "b": "\\"[[["}, [1]]') == 2
    assert depth(b"[]") == 1 and depth(b"42") == 0


def test_nesting_up_to_the_limit_is_read_and_deeper_is_refused_without_recursing():
    assert load_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(BadBody, match="nested deeper"):
        load_json(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    with pytest.raises(BadBody, match="nested deeper"):  # far past Python's recursion limit
        load_json(b"[" * 100_000 + b"]" * 100_000)


def test_numbers_longer_than_any_count_are_kept_as_text_for_their_event_to_be_refused():
    assert load_json(b'{"count": 9223372036854775807}') == {"count": 2**63 - 1}
    value = load_json(b'[{"count": 1' + b"0" * 5000 + b'}, {"x": [1e999, 0.' + b"1" * MAX_NUMBER_CHARS + b"]}]")
    assert [list(problems(item)) for item in value] == [
        [("count", "a number 5001 characters long (at most 24)")],
        [("x.0", "a number out of range"), ("x.1", f"a number {MAX_NUMBER_CHARS + 2} characters long (at most 24)")],
    ]


@pytest.mark.parametrize("body", [b"[NaN]", b"[Infinity]", b"[-Infinity]"])
def test_nan_and_infinity_are_not_json(body):
    with pytest.raises(BadBody):
        load_json(body)


@pytest.mark.parametrize("body", ['[{"a": 1}]'.encode("utf-16"), '[{"a": 1}]'.encode("utf-32"), b'["\xff"]', b"\xef\xbb\xbf[1]"])
def test_only_utf8_without_a_byte_order_mark_is_read(body):
    with pytest.raises(BadBody):
        load_json(body)


def test_duplicate_keys_are_kept_for_the_event_to_be_refused_by_path():
    value = load_json(b'[{"type": "pledge", "person": {"phone": "1", "phone": "2"}, "type": "pledge"}]')
    assert sorted(problems(value[0])) == [("person.phone", "key appears more than once in the object"),
                                           ("type", "key appears more than once in the object")]
    assert list(problems(load_json(b'{"a": {"b": 1}, "c": {"b": 2}}'))) == []


def test_lone_surrogates_in_values_and_keys_are_found_by_path():
    value = load_json(b'{"event_id": "bad\\ud800", "person": {"names": ["ok", "\\udfff"]}, "\\ud800": 1}')
    assert sorted(f for f, _ in problems(value)) == ["(event)", "event_id", "person.names.1"]
    assert list(problems(load_json('{"name": "Zoë \\ud83d\\ude00"}'.encode()))) == []  # a proper pair is fine


def test_a_valid_body_reads_as_the_stdlib_would():
    body = json.dumps([{"a": [1, 2.5, None, True, "ü"]}]).encode()
    assert load_json(body) == json.loads(body)
