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
