"""The restore's sink keeps the dump's last bytes from pg_restore until the object has been
checked against its manifest (workflows/backup/restore.py, feed_restore)."""

from __future__ import annotations

from kestra_ops.workflows.backup import restore as br


def test_the_last_bytes_wait_for_flush():
    got: list[bytes] = []
    sink = br._HeldBack(lambda data: got.append(data) or True)
    chunks = [bytes([i]) * 40_000 for i in range(5)]  # 200,000 bytes in all
    for chunk in chunks:
        assert sink(chunk) is True
    whole = b"".join(chunks)
    assert b"".join(got) == whole[:-br.HOLD_BACK]  # not the end of the archive
    sink.flush()
    assert b"".join(got) == whole


def test_a_small_object_is_held_back_whole():
    got: list[bytes] = []
    sink = br._HeldBack(lambda data: got.append(data) or True)
    sink(b"PGDMP" + b"x" * 100)
    assert got == []
    sink.flush()
    assert got == [b"PGDMP" + b"x" * 100]


def test_a_reader_that_left_stops_the_feeding():
    sink = br._HeldBack(lambda data: False)
    assert sink(b"y" * (br.HOLD_BACK + 10)) is False


def test_small_and_large_pieces_mixed_keep_their_order():
    got: list[bytes] = []
    sink = br._HeldBack(lambda data: got.append(bytes(data)) or True)
    pieces = [b"a" * 10, b"b" * 100_000, b"c" * 5, b"d" * br.HOLD_BACK, b"e" * 70_000, b"f"]
    for piece in pieces:
        sink(piece)
    whole = b"".join(pieces)
    assert b"".join(got) == whole[:-br.HOLD_BACK]
    sink.flush()
    assert b"".join(got) == whole
