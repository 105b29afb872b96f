"""Ask texts: placeholder validation, safe rendering, the SMS footer and segment counting.

Templates use ``str.format``-style placeholders, limited to ``PLACEHOLDERS``; a literal
brace is written doubled (``{{``). Conversions (``!r``), format specs (``:>10``), attribute
and index access (``{given_name.__class__}``, ``{0}``) are refused: templates come from
partners, and ``str.format`` on untrusted text can reach into the objects it is given.
``render`` therefore never calls ``str.format``; it splices strings itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from string import Formatter

from contracts.events import template_problems as validate_template  # noqa: F401 - re-exported
from contracts.zones import local_time  # noqa: F401 - re-exported

NAME_FALLBACK = "friend"
SMS_FOOTER = "Reply YES to RSVP, STOP to opt out"
#: The footer of a text to a Spanish speaker: GSM-7 only ("SI", not "SÍ"), so that it never
#: makes a text UCS-2 (70 characters a segment instead of 160).
SMS_FOOTER_ES = "Responde SI para confirmar, STOP para no recibir mensajes"

# GSM 03.38: the basic character set (1 septet each; ESC excluded, it only prefixes the
# extension table) and the extension table (2 septets each: ESC + the character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
#: A character outside the basic set (a regular expression finds one faster than a set of the body).
_NOT_BASIC = re.compile("[^%s]" % "".join(re.escape(c) for c in sorted(GSM7_BASIC)))
#: (encoding, units in a single-segment message, units per segment of a concatenated one)
_LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


def render(text: str, values: Mapping[str, str], name_fallback: str = NAME_FALLBACK) -> str:
    """``text`` with each placeholder replaced by its value.

    A missing or blank ``given_name`` renders as ``name_fallback`` ("friend"; pass the word
    for the template's language): people sign up without names, and "Hi ," reads as a bug.
    Any other placeholder without a value, or an invalid template, raises ``ValueError``:
    a message with a hole in it is worse than none.
    """
    out = []
    for literal, field in _parsed(text):
        out.append(literal)
        if field is not None:
            out.append(_value(field, values, name_fallback))
    return "".join(out)


@lru_cache(maxsize=256)
def _parsed(text: str) -> tuple[tuple[str, str | None], ...]:
    """A valid template's literals and placeholders, worked out once: a fan-out renders the
    same few templates for every person."""
    problems = validate_template(text)
    if problems:
        raise ValueError("; ".join(problems))
    return tuple((literal, field) for literal, field, _, _ in Formatter().parse(text))


def _value(field: str, values: Mapping[str, str], name_fallback: str) -> str:
    value = values.get(field)
    if field == "given_name" and not (value or "").strip():
        return name_fallback
    if value is None:
        raise ValueError(f"no value for {{{field}}}")
    return str(value)




def sms_body(text: str, footer: str = SMS_FOOTER) -> str:
    """``text`` with ``footer`` on its own last line, unless the text already contains it.

    A newline costs one character like a space does (it is in GSM-7), and keeps the footer
    visibly apart from the ask. "Already contains" ignores case.
    """
    text = text.rstrip()
    if not footer or footer.casefold() in text.casefold():
        return text
    return f"{text}\n{footer}"


#: The last lines of every email: a visible way out, in the person's language (English otherwise).
ON_BEHALF_OF = {"en": "Sent on behalf of {sponsor}.", "es": "Enviado en nombre de {sponsor}."}
EMAIL_FOOTER = {
    "en": "You get this email because you signed up with a partner of the coalition.\nUnsubscribe: {link}",
    "es": "Recibes este correo porque te inscribiste con una organización de la coalición.\nCancelar la suscripción: {link}",
}


def email_body(text: str, unsubscribe_link: str, language: str | None = None, on_behalf_of: str | None = None) -> str:
    """``text`` with the unsubscribe footer below a signature separator ("-- "), so every email
    says in its body, not only in a header mail clients may hide, how to stop them; first, when
    the text does not name it, the sponsor it is sent on behalf of."""
    lang = (language or "en").split("-")[0].lower()
    footer = EMAIL_FOOTER.get(lang, EMAIL_FOOTER["en"]).format(link=unsubscribe_link)
    if on_behalf_of:
        footer = ON_BEHALF_OF.get(lang, ON_BEHALF_OF["en"]).format(sponsor=on_behalf_of) + "\n" + footer
    return f"{text.rstrip()}\n\n-- \n{footer}"


@lru_cache(maxsize=256)  # an action's few templates, asked for every person
def names_sponsor(template: str) -> bool:
    """Whether ``template`` (valid) says itself whom it is sent on behalf of: ``{sponsor}``."""
    return any(field == "sponsor" for _, field, _, _ in Formatter().parse(template))


def segments(body: str) -> tuple[str, int]:
    """The encoding (``GSM-7`` or ``UCS-2``) and number of SMS segments ``body`` is sent as.

    GSM-7 when every character is in the GSM 03.38 basic set or extension table (extension
    characters count 2 septets), else UCS-2 counted in UTF-16 code units (an emoji is 2).
    One segment holds 160 septets / 70 units; a longer message is split into segments of
    153 / 67, and an escape pair or a surrogate pair is never split across two segments.
    An empty body is 0 segments.
    """
    if _NOT_BASIC.search(body) is None:  # the common case, one septet per character: counted without a walk
        single, per_segment = _LIMITS["GSM-7"]
        return "GSM-7", 0 if not body else 1 if len(body) <= single else -(-len(body) // per_segment)
    gsm = set(body) <= GSM7_BASIC | GSM7_EXTENSION
    encoding = "GSM-7" if gsm else "UCS-2"
    units = [_units(c, gsm) for c in body]
    single, per_segment = _LIMITS[encoding]
    if sum(units) <= single:
        return encoding, 1 if units else 0
    count, used = 1, 0
    for n in units:
        if used + n > per_segment:
            count, used = count + 1, 0
        used += n
    return encoding, count


def _units(char: str, gsm: bool) -> int:
    if gsm:
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1
