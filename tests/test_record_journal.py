"""The record journal's frames: whole ones are read back in order, a torn or corrupt tail is where reading stops."""

import errno
import os

from prov4ml.records.journal import FRAME, RECORDS_FILE, RecordJournal, read_records


def test_records_come_back_in_order_with_their_positions(tmp_path):
    positions = iter(range(100))
    journal = RecordJournal(str(tmp_path), position=lambda: next(positions))
    for i in range(50):
        assert journal.append("param", {"key": f"p{i}", "value": i})
    journal.close()
    assert read_records(str(tmp_path)) == [(i, "param", {"key": f"p{i}", "value": i}) for i in range(50)]


def test_a_torn_or_corrupt_frame_ends_the_reading_and_a_new_writer_appends_after_the_whole_ones(tmp_path):
    journal = RecordJournal(str(tmp_path))
    for i in range(3):
        journal.append("param", i)
    journal.close()
    path = tmp_path / RECORDS_FILE
    data = bytearray(path.read_bytes())
    whole = [r for r in read_records(str(tmp_path))]
    assert [d for _, _, d in whole] == [0, 1, 2]
    # tear the third frame: a kill in the middle of its write
    first = FRAME.unpack_from(data, 0)[0] + FRAME.size
    third_start = 2 * first
    data[third_start + FRAME.size + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    assert [d for _, _, d in read_records(str(tmp_path))] == [0, 1]
    journal = RecordJournal(str(tmp_path))  # a recovering writer appends over the torn frame
    journal.append("param", 3)
    journal.close()
    assert [d for _, _, d in read_records(str(tmp_path))] == [0, 1, 3]


def test_a_full_disk_is_counted_not_silent(tmp_path, monkeypatch):
    journal = RecordJournal(str(tmp_path))

    def no_room(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_room)
    big = "x" * (2 << 20)  # more than the room reserved ahead
    assert journal.append("param", "small")  # the reserve holds it
    assert not journal.append("param", big)
    assert journal.failed == 1 and "could not grow" in journal.error
    journal.close()
    assert [d for _, _, d in read_records(str(tmp_path))] == ["small"]


def test_a_whole_frame_this_process_cannot_unpickle_is_skipped_and_counted_not_the_end(tmp_path):
    import sys
    import types

    from prov4ml.records.recorder import replay

    module = types.ModuleType("gone_module")

    class Gone:
        pass

    Gone.__module__, Gone.__qualname__ = "gone_module", "Gone"
    module.Gone = Gone
    sys.modules["gone_module"] = module
    journal = RecordJournal(str(tmp_path))
    journal.append("note", (("a", 1), None, None))
    journal.append("note", (("b", Gone()), None, None))  # the writer had this class; the reader will not
    journal.append("note", (("c", 3), None, None))
    journal.append("a_later_kind", ("?", None, None))  # written by a later version of the package
    journal.close()
    del sys.modules["gone_module"]
    frames = read_records(str(tmp_path))
    assert [kind for _, kind, _ in frames] == ["note", "unreadable", "note", "a_later_kind"]
    notes = replay(frames)["notes"]
    assert notes["a"] == 1 and notes["c"] == 3 and notes["records_unreadable"] == 2


def test_a_value_no_pickle_holds_is_counted_and_the_call_goes_on(tmp_path):
    journal = RecordJournal(str(tmp_path))
    assert not journal.append("note", (("f", lambda: 1), None, None))
    assert journal.failed == 1 and "could not journal" in journal.error
    assert journal.append("note", (("g", 2), None, None))
    journal.close()
    assert [d[0] for _, _, d in read_records(str(tmp_path))] == [("g", 2)]
