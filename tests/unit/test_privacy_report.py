"""docs/privacy.md shows the inventory `turnout privacy report` prints for the default settings."""

from pathlib import Path

from pydantic import SecretStr

from streams.privacy import markdown
from streams.settings import Settings
from streams.topology import topic_specs

DOC = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"


def test_the_privacy_document_holds_the_current_inventory_and_names_every_topic():
    s = Settings(person_key_secret=SecretStr("k"))
    assert markdown(s) in DOC.read_text()
    # Every topic, logs and compacted ones alike (an outside probe found the accounts topic, with
    # staff emails, and the attendance and membership facts missing).
    assert [t.name for t in topic_specs(s) if f"`{t.name}`" not in markdown(s)] == []
