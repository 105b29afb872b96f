"""The coalition file as the running processes read it."""


def test_the_workers_name_a_partner_added_while_they_run(tmp_path):
    # A newcomer added the coalition's hub while `turnout up` ran: the console's test text said
    # "coalition-hub: …" and "Sent on behalf of coalition-hub." (the workers read names at start).
    from streams.coalition import CoalitionFile, SponsorNames, add_partner

    path = tmp_path / "coalition.toml"
    names = SponsorNames(CoalitionFile(path))
    assert names.get("hub", "hub") == "hub"  # no file yet: ids
    add_partner(path, "hub", "Fair Staffing Coalition", "backbone", role="backbone")
    assert names["hub"] == "Fair Staffing Coalition"
    path.write_text(path.read_text() + "[broken")  # mid-edit: the last good names
    assert names.get("hub") == "Fair Staffing Coalition"


def test_a_file_broken_while_the_web_app_runs_keeps_the_last_good_one_and_says_so_once(tmp_path, caplog):
    """An outside probe: a typo made in the coalition file while `turnout web` ran turned every
    post into a 500 and a 78-line traceback. The running processes keep the last good file and
    log the problem in one line (which partner, which field); a file broken from the start still
    stops them."""
    import os

    import pytest

    from streams.coalition import CoalitionError, CoalitionFile, add_partner

    path = tmp_path / "coalition.toml"
    add_partner(path, "union-a", "Union A", "union")
    file = CoalitionFile(path)
    assert file.current().get("union-a") is not None
    path.write_text(path.read_text().replace('kind = "union"', 'kind = "unoin"'))
    os.utime(path, (1, 1))  # a change the modification time shows, however fast the test
    caplog.set_level("WARNING", "streams.coalition")
    assert file.current().get("union-a").kind == "union" and file.current().get("union-a").kind == "union"
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "union-a" in said[0] and "kind" in said[0] and "\n" not in said[0], said
    path.write_text(path.read_text().replace('kind = "unoin"', 'kind = "faith"'))
    assert file.current().get("union-a").kind == "faith"
    path.write_text("[broken")
    with pytest.raises(CoalitionError):
        CoalitionFile(path).current()
