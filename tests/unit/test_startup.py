"""`turnout up` claims its directory before it starts anything."""

import pytest

from streams.startup import StackError, claim


def test_a_second_stack_in_the_same_directory_is_refused_until_the_first_lets_go(tmp_path):
    # An outside probe started two `turnout up` two seconds apart: both ran, and the second moved
    # the first one's live logs away. The state file the check read is written last, 20 s in.
    first = claim(tmp_path)
    with pytest.raises(StackError, match="already starting or running from"):
        claim(tmp_path)
    assert claim(tmp_path / "elsewhere")  # another directory is another stack
    first.close()  # the first stack's process ended
    claim(tmp_path).close()


def test_a_directory_it_cannot_write_is_said_in_one_line(tmp_path):
    (tmp_path / ".turnout").write_text("a file, not a folder")
    with pytest.raises(StackError, match="cannot write"):
        claim(tmp_path)
