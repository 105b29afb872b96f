"""What the supporters' pages say, in English and Spanish, and how they write a time and a place.

Pure: no request, no clock. ``language(tag)`` picks the page's language from a link's tag
(English for anything we have no words for). Times are written in the action's own zone,
whatever the reader's device says, the way the text message wrote them.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from contracts.events import Location

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "invites": "{partner} invites you",
        "when": "When",
        "where": "Where",
        "question": "Will you be there?",
        "yes": "Yes", "maybe": "Maybe", "no": "No",
        "your_answer": "Your answer: {answer}. You can change it below.",
        "thanks_yes": "Thank you! You're on the list: see you there.",
        "thanks_maybe": "Thanks! We have you down as maybe.",
        "thanks_no": "Thanks for letting us know: you're down as not coming. You can still change your answer.",
        "expired_title": "This RSVP link has expired",
        "expired_body": "{title} started on {when}: it is too late to answer here.",
        "invalid_title": "This link does not work",
        "invalid_body": "Check that you opened the whole link from your message.",
        "forgotten_title": "We no longer hold your details",
        "forgotten_body": "They were removed on request, so this link no longer works. You will get no more messages from us unless a group signs you up again.",
        "later_title": "We can't open this page right now",
        "later_body": "Please try again in a minute.",
        "bad_form_title": "We could not read what you sent",
        "bad_form_body": "Please go back to the page and try again.",
        "unsaved_body": "Your answer was not saved. Please try again in a minute.",
        "bad_answer": "Please choose Yes, Maybe or No.",
        "unsub_title": "Unsubscribe",
        "unsub_intro": "Stop every email from the coalition and its partners? (This one invited you to {title}.)",
        "unsub_already": "This address is already unsubscribed from emails.",
        "stop_texts": "Stop text messages too",
        "unsub_button": "Unsubscribe",
        "unsub_done_email": "You're unsubscribed: you will get no more emails from the coalition.",
        "unsub_done_both": "You're unsubscribed: you will get no more emails or text messages from the coalition.",
        "unsub_texts_note": "To get texts again later, reply START to one of our messages.",
        "unsaved_unsub": "You are not unsubscribed yet: please try again in a minute.",
    },
    "es": {
        "invites": "{partner} te invita",
        "when": "Cuándo",
        "where": "Dónde",
        "question": "¿Vas a ir?",
        "yes": "Sí", "maybe": "Tal vez", "no": "No",
        "your_answer": "Tu respuesta: {answer}. Puedes cambiarla abajo.",
        "thanks_yes": "¡Gracias! Estás en la lista: nos vemos allí.",
        "thanks_maybe": "¡Gracias! Anotamos «tal vez».",
        "thanks_no": "Gracias por avisarnos: anotamos que no vienes. Todavía puedes cambiar tu respuesta.",
        "expired_title": "Este enlace para confirmar ya venció",
        "expired_body": "{title} empezó el {when}: ya no se puede responder aquí.",
        "invalid_title": "Este enlace no funciona",
        "invalid_body": "Revisa que abriste el enlace completo de tu mensaje.",
        "forgotten_title": "Ya no guardamos tus datos",
        "forgotten_body": "Se borraron a pedido, así que este enlace ya no funciona. No recibirás más mensajes nuestros, salvo que un grupo te inscriba de nuevo.",
        "later_title": "No podemos abrir esta página ahora",
        "later_body": "Inténtalo de nuevo en un minuto.",
        "bad_form_title": "No pudimos leer lo que enviaste",
        "bad_form_body": "Vuelve a la página e inténtalo de nuevo.",
        "unsaved_body": "Tu respuesta no se guardó. Inténtalo de nuevo en un minuto.",
        "bad_answer": "Elige Sí, Tal vez o No.",
        "unsub_title": "Cancelar la suscripción",
        "unsub_intro": "¿Dejar de recibir todos los correos de la coalición y sus organizaciones? (Este te invitaba a {title}.)",
        "unsub_already": "Esta dirección ya no recibe nuestros correos.",
        "stop_texts": "Dejar de recibir mensajes de texto también",
        "unsub_button": "Cancelar la suscripción",
        "unsub_done_email": "Listo: ya no recibirás correos de la coalición.",
        "unsub_done_both": "Listo: ya no recibirás correos ni mensajes de texto de la coalición.",
        "unsub_texts_note": "Para volver a recibir mensajes de texto, responde START a uno de nuestros mensajes.",
        "unsaved_unsub": "Todavía no se canceló tu suscripción: inténtalo de nuevo en un minuto.",
    },
}
LANGUAGES = tuple(WORDS)

_DAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}
_MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"),
}


def language(tag: str | None) -> str:
    """The page's language for a person's language tag: ``es`` for ``es``/``es-MX``, else ``en``."""
    primary = (tag or "").split("-")[0].lower()
    return primary if primary in WORDS else "en"


def when(starts_at: datetime, zone: str, lang: str) -> str:
    """``starts_at`` in the action's zone: ``Tuesday, November 24, 2026, 6:00 PM PST`` or
    ``martes, 24 de noviembre de 2026, 6:00 p. m. PST``. Zones tzdata gives no letters (``-03``)
    show as ``UTC-03``."""
    t = starts_at.astimezone(ZoneInfo(zone))
    abbreviation = t.tzname() or ""
    abbreviation = f"UTC{abbreviation}" if abbreviation[:1] in "+-" else abbreviation
    hour = t.hour % 12 or 12
    day, month = _DAYS[lang][t.weekday()], _MONTHS[lang][t.month - 1]
    if lang == "es":
        meridiem = "a. m." if t.hour < 12 else "p. m."
        return f"{day}, {t.day} de {month} de {t.year}, {hour}:{t.minute:02d} {meridiem} {abbreviation}".rstrip()
    meridiem = "AM" if t.hour < 12 else "PM"
    return f"{day}, {month} {t.day}, {t.year}, {hour}:{t.minute:02d} {meridiem} {abbreviation}".rstrip()


def place(location: Location) -> list[str]:
    """The lines of an address as a person reads it: venue, street lines, then town, region and code."""
    town = ", ".join(x for x in (location.locality, " ".join(y for y in (location.region, location.postal_code) if y)) if x)
    return [x for x in (location.venue, *location.address_lines, town) if x]
