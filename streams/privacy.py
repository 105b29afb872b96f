"""Where personal data lives, for how long, and how erasure reaches it: the inventory behind
`turnout privacy report` and docs/privacy.md. Built from the topic declarations and settings,
so the report says what this deployment actually does.

"Personal data" here: a supporter's name, phone, email, postal code, language, consent record
and opt-outs, and the text of messages sent to them. Names, phones, emails, postal codes and
message texts are sealed with a per-person data key wherever turnout writes them
(``streams.crypto``), so deleting the person's keys makes every copy unreadable. Person keys are keyed hashes (HMAC with
the coalition's secret): pseudonymous, not anonymous, and they stay in facts so tallies survive
erasure.
"""

from __future__ import annotations

from dataclasses import dataclass

from .settings import Settings
from .topology import (
    ACTIONS, ASKS, ATTENDANCE, DEFERRED, ERASURES, IDENTITIES, MEMBERSHIPS, MERGES, PEOPLE, PLEDGES, RECENT_ASKS, accounts_topic, asks_topic,
    changelog_topic, data_keys_topic, dead_letter_topic, events_topic, identity_topic, mobilize_cursor_topic, previews_topic, provider_topic,
    targeting_topic,
)


@dataclass(frozen=True)
class Place:
    where: str
    kind: str
    holds: str
    retention: str
    erasure: str


#: What erasure does to a sealed copy that is not deleted (``streams.crypto``).
SHREDDED = "unreadable at once: the person's data keys are deleted"


def inventory(s: Settings) -> list[Place]:
    days = lambda n: f"{n:g} {'day' if n == 1 else 'days'} (retention.ms, `turnout topics ensure`)"  # noqa: E731
    compacted = "latest value per key (compacted); older versions until compaction runs"
    sealed = "sealed with the person's data key:"
    return [
        Place(events_topic(s), "Kafka topic", f"accepted partner events: {sealed} names, phones, emails, postal codes; in clear: language, consent",
              days(s.events_retention_days), f"{SHREDDED}; the records go when retention deletes the segment"),
        Place(targeting_topic(s), "Kafka topic", "actions to fan out and the console's dry runs (no supporter data; a test send holds the phone or email the organizer typed for themselves)",
              days(s.outreach_retention_days), "nothing to erase"),
        Place(previews_topic(s), "Kafka topic", "the workers' answers to the console's dry runs: counts, and whether a test was sent (no addresses)", days(1), "nothing to erase"),
        Place(asks_topic(s), "Kafka topic", f"deferred asks, once they fall due: {sealed} phone or email and the rendered text", days(s.outreach_retention_days),
              f"{SHREDDED}; unsent asks are cancelled at once"),
        Place(identity_topic(s), "Kafka topic", "partner events on their way to their person, and merged people's records (as in the events topic "
              "and the people table)", days(s.events_retention_days), f"{SHREDDED}; the records go when retention deletes the segment"),
        Place(provider_topic(s), "Kafka topic", "provider callbacks and replies by person key (reply keyword only; of a bounce, its SMTP codes only)", days(s.outreach_retention_days), "nothing to erase"),
        Place(dead_letter_topic(s), "Kafka topic", "refused records: reason, location, hash, a redacted excerpt (no personal fields)",
              days(s.dead_letter_retention_days), "nothing to erase"),
        Place(data_keys_topic(s), "Kafka topic (compacted)", "each person's data keys (random AES-256 keys), wrapped by the master key "
              "(`TURNOUT_MASTER_KEY`), by person key", compacted, "tombstoned at once: no turnout process opens a sealed copy from then on; "
              "the key's own record leaves the log when compaction runs (on Kafka within about two hours: segments close and are "
              "compacted within the hour; never on the embedded broker): until then, and in any backup of this topic, the master key "
              "still unwraps it"),
        Place(changelog_topic(s, PEOPLE), "fact table", f"one record per person: {sealed} name, phone, email, postal code; in clear: language, "
              "consent, opt-outs", compacted, f"tombstoned at once; older versions {SHREDDED}"),
        Place(changelog_topic(s, DEFERRED), "fact table", f"asks waiting for quiet hours to end: {sealed} address and text", compacted,
              f"tombstoned at once; older versions {SHREDDED}"),
        Place(changelog_topic(s, RECENT_ASKS), "fact table", "which asks a person got when (person key only)", compacted, "tombstoned at once"),
        Place(changelog_topic(s, IDENTITIES), "fact table", "which person each phone or email belongs to, by keyed hashes only", compacted,
              "the person's own entries tombstoned at once; an identifier's link to the person it was merged into is kept, like the "
              "merge record (so signed up again by it alone they are that person again, and counted once)"),
        Place(changelog_topic(s, MERGES), "fact table", "which person key was merged into which (keyed hashes only)", compacted, "kept, like the other facts: counts"),
        Place(changelog_topic(s, MEMBERSHIPS), "fact table", "which partner signed up which person key, and when", compacted, "kept, like the other facts: counts"),
        Place(changelog_topic(s, ATTENDANCE), "fact table", "per action and person key: the RSVP answer and check-in, which partner posted them, when",
              compacted, "kept, like the other facts: counts"),
        Place(changelog_topic(s, PLEDGES), "fact table", "partners' pledges (no supporter data)", compacted, "nothing to erase"),
        Place(changelog_topic(s, ACTIONS), "fact table", "actions as posted: title, place, templates (no supporter data)", compacted, "nothing to erase"),
        Place(changelog_topic(s, ERASURES), "fact table", "what each erasure removed: counts and partner ids, no person key", compacted, "nothing to erase"),
        Place(accounts_topic(s), "Kafka topic (compacted)", "dashboard accounts of partner staff and organizers: email, role, partner, argon2id "
              "password hash; digests of signed-out sessions", compacted, "not a supporter's: `turnout accounts remove EMAIL` tombstones the account"),
        Place(mobilize_cursor_topic(s), "Kafka topic (compacted)", "how far each partner's Mobilize poll got (a time, and digests of why attendances were skipped; no supporter data)", compacted,
              "nothing to erase"),
        Place(changelog_topic(s, ASKS), "fact table", "ask states by person key; no address or text (provider error texts with addresses redacted; of a bounce, its SMTP codes only)", compacted, "provider error texts removed; counts kept"),
        Place("the web app's door directory", "process memory", "each partner's own posted people (names, phone, email, as sealed in the "
              "events), opened only to show that partner's staff a name and a phone's last 4 digits at the door", "until the web app stops; "
              "rebuilt from the events topic at start", "dropped at once; unreadable once the person's data keys are deleted"),
        Place("worker and web logs", "log", "no personal data: lines are redacted after formatting (phones, emails, pydantic input values)",
              "as your log shipping keeps them", "nothing to erase"),
        Place("Twilio", "provider", "messages: number and text (Twilio's own retention and redaction)", "Twilio's settings",
              "ask Twilio (Message Redaction) — turnout cannot reach it"),
        Place("SendGrid", "provider", "emails: address and text; custom_args hold only ask id and partner id", "SendGrid's settings",
              "ask SendGrid — custom_args are kept forever, which is why they hold no personal data"),
        Place("the sandbox (development only)", "process memory", "texts and emails it accepted", "until it stops", "restart it"),
    ]


def markdown(s: Settings) -> str:
    rows = ["| where | kind | holds | kept | erasure |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| `{p.where}` | {p.kind} | {p.holds} | {p.retention} | {p.erasure} |" for p in inventory(s)]
    return "\n".join(rows)
