"""What the reader printed on stderr becomes the notes a user reads about one scan (io/itk_messages.py):
one short line per message, no repeats, nothing lost when capturing is off or already taken by
another thread. Fast: text and descriptor 2 only, no image is read."""

from __future__ import annotations

import os
import threading

from CTAffineRegisterLib.io.itk_messages import (
    MAX_NOTE_CHARACTERS,
    native_stderr_captured,
    notes_from_reader_output,
)


def test_error_blocks_are_notes_too_and_only_the_first_line_loses_its_object_address():
    text = (
        "ERROR: In /build/itkGDCMImageIO.cxx, line 361  \n"
        "GDCMImageIO (0xABCdef12): Cannot read requested file\n"
        "Reader (0x1f): second line keeps its words\n"
    )
    assert notes_from_reader_output(text) == [
        "reader said: GDCMImageIO: Cannot read requested file Reader (0x1f): second line keeps its words"
    ]


def test_a_line_that_only_looks_like_a_block_start_is_a_message():
    text = "WARNING: In /build/a.cxx, line 12 and more\nImageIO (0x12): kept\n"
    assert notes_from_reader_output(text) == [
        "reader said: WARNING: In /build/a.cxx, line 12 and more ImageIO (0x12): kept"
    ]


def test_an_address_prefix_is_dropped_only_inside_an_itk_block():
    text = "WARNING: In x.cxx, line 1\n\nNiftiImageIO (0x12): outside a block\n"
    assert notes_from_reader_output(text) == ["reader said: NiftiImageIO (0x12): outside a block"]


def test_repeated_messages_give_one_note_and_explained_ones_none():
    block = "WARNING: In /build/itkNiftiImageIO.cxx, line 2008\nNiftiImageIO (0x1234): same words\n"
    text = block + block + "\n" + "gdcm: explained away\n"
    assert notes_from_reader_output(text, ("explained",)) == ["reader said: NiftiImageIO: same words"]
    assert notes_from_reader_output(text) == [
        "reader said: NiftiImageIO: same words",
        "reader said: gdcm: explained away",
    ]
    assert notes_from_reader_output("") == []
    assert notes_from_reader_output("\n\n   \n") == []


def test_a_long_message_is_cut_to_the_note_length_with_an_ellipsis():
    exact = "x" * (MAX_NOTE_CHARACTERS - len("reader said: "))
    assert notes_from_reader_output(exact) == ["reader said: " + exact]
    long = "y" * 1000
    (note,) = notes_from_reader_output(long)
    assert len(note) == MAX_NOTE_CHARACTERS == 240
    assert note == "reader said: " + "y" * (MAX_NOTE_CHARACTERS - 3 - len("reader said: ")) + "..."


def test_spaces_inside_a_message_are_collapsed():
    assert notes_from_reader_output("  a   b \n\t c  \n") == ["reader said: a b c"]


def test_capture_switched_off_leaves_stderr_alone(capfd):
    with native_stderr_captured(enabled=False) as captured:
        os.write(2, b"seen by the user\n")
    assert captured.text == ""
    assert capfd.readouterr().err == "seen by the user\n"


def test_a_second_capture_while_one_runs_is_not_captured_and_the_first_gets_its_text(capfd):
    inner_text = []
    with native_stderr_captured() as outer:
        os.write(2, b"outer\n")
        with native_stderr_captured() as inner:
            os.write(2, b"inner\n")
        inner_text.append(inner.text)
    assert inner_text == [""]
    assert outer.text == "outer\ninner\n"
    # the lock was released: a later capture works again
    with native_stderr_captured() as later:
        os.write(2, b"later\n")
    assert later.text == "later\n"
    assert capfd.readouterr().err == ""


def test_a_capture_in_another_thread_while_one_runs_prints_as_before(capfd):
    seen = []
    with native_stderr_captured() as outer:

        def other():
            with native_stderr_captured() as captured:
                seen.append(captured.text)

        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
    assert seen == [""]
    assert outer.text == ""
