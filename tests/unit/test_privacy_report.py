"""docs/privacy.md shows the inventory `turnout privacy report` prints for the default settings."""

from pathlib import Path

from pydantic import SecretStr

from streams.privacy import markdown
from streams.settings import Settings
from streams.topology import topic_specs

DOC = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"


def test_the_privacy_document_holds_the_current_inventory_and_names_every_log_topic():
    s = Settings(person_key_secret=SecretStr("k"))
    assert markdown(s) in DOC.read_text()
    logs = [t.name for t in topic_specs(s) if not t.compacted]
    assert all(f"`{name}`" in markdown(s) for name in logs)
