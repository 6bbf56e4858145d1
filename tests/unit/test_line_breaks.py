"""Counting line breaks: the scan's line numbers and line totals rest on it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emr_triage.analysis import scan
from emr_triage.analysis.scan import count_newlines

# Text made mostly of line breaks and the bytes next to them in value, so miscounts have room to show.
text_bytes = st.binary(max_size=600) | st.lists(st.sampled_from(b"\n\r\t\x0b\x00a\xff"), max_size=600).map(bytes)


@given(data=text_bytes, cut=st.data())
def test_line_breaks_are_counted_like_bytes_count_in_any_stretch(data: bytes, cut: st.DataObject) -> None:
    # Given any text and any stretch of it
    start = cut.draw(st.integers(min_value=0, max_value=len(data)))
    end = cut.draw(st.integers(min_value=start, max_value=len(data)))
    # Then the count is bytes.count's, for the stretch, for the rest of the text and for all of it
    assert count_newlines(data, start, end) == data.count(b"\n", start, end)
    assert count_newlines(data, start) == data.count(b"\n", start)
    assert count_newlines(data) == data.count(b"\n")


def test_line_breaks_of_a_block_are_counted_like_bytes_count_without_stringzilla(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a block of about a MiB, and no StringZilla (the standard library's count instead)
    block = b"26/11/20 02:00:00 INFO Executor: Running task 1.0\n" * 20_000 + b"no line break at the end"
    expected = [count_newlines(block), count_newlines(block, 60, len(block) - 9)]
    monkeypatch.setattr(scan, "_sz_count", None)
    # Then the counts are the same
    assert [count_newlines(block), count_newlines(block, 60, len(block) - 9)] == expected == [20_000, 19_999]


def test_the_simd_counter_is_the_one_in_use() -> None:
    # StringZilla ships in the layer and the virtualenv: a failed import would silently cost ~7x more
    # time per line break on every log.
    assert scan._sz_count is not None
