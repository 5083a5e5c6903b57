from hypothesis import given
from hypothesis import strategies as st

from tlt_pipe.logstream import Line, LineSplitter


def run(*chunks):
    s = LineSplitter()
    out = []
    for chunk in chunks:
        out += s.feed(chunk)
    return out + s.close()


def complete(lines):
    return [line.text for line in lines if not line.partial]


def test_plain_lines_and_crlf():
    assert complete(run(b"a\nb\r\nc\r\r\n")) == ["a", "b", "c"]


def test_blank_lines_are_kept():
    assert complete(run("a\n\nb\n")) == ["a", "", "b"]


def test_unterminated_last_line_is_flushed_on_close():
    assert run("a\nlast") == [Line("a"), Line("last")]


def test_line_split_across_chunks_is_not_progress():
    assert run("hel", "lo\n") == [Line("hello")]


def test_crlf_split_across_chunks():
    assert run("Epoch 1/2\r", "\nnext\r", "\n") == [Line("Epoch 1/2"), Line("next")]


def test_cr_redraw_keeps_only_the_final_state():
    out = run("1/3 [=>  ]\r2/3 [==> ]\r3/3 [===]\n")
    assert complete(out) == ["3/3 [===]"]


def test_progress_reported_once_per_chunk_when_changed():
    out = run("\r1/3", "\r2/3", "\r2/3", "\r3/3\n", "done\n")
    assert out == [
        Line("1/3", partial=True),
        Line("2/3", partial=True),
        Line("3/3"),
        Line("done"),
    ]


def test_text_then_cr_style_progress():
    # print(f"{i}/{n}", end="\r"): each state is reported once the next one starts
    out = run("1/3\r", "2/3\r", "3/3\r", "\n")
    assert out == [Line("2/3", partial=True), Line("3/3", partial=True), Line("3/3")]


def test_keras_backspace_redraw():
    first = "1/2 [==>...] - ETA: 1s - loss: 2.0"
    second = "2/2 [======] - 1s 10ms/step - loss: 1.5"
    stream = "Epoch 1/1\r\n" + "\r" + first + "\b" * len(first) + "\r" + second + "\r\n"
    assert complete(run(stream.encode())) == ["Epoch 1/1", second]


def test_backspace_edits_the_line():
    assert complete(run("abc\b\bX\n")) == ["aX"]
    assert complete(run("ab", "\b\b\bZ\n")) == ["Z"]


def test_cr_then_shorter_text_replaces_whole_line():
    assert complete(run("Downloading 10%\rDone\n")) == ["Done"]


def test_utf8_split_across_chunks():
    data = "Größe ✓\n".encode()
    out = run(*[data[i : i + 1] for i in range(len(data))])
    assert complete(out) == ["Größe ✓"]


def test_invalid_utf8_is_replaced():
    assert complete(run(b"a\xffb\n", b"\xe2\x9c")) == ["a\ufffdb", "\ufffd"]


def test_progress_state_left_at_end_is_flushed_as_line():
    out = run("\r5/85 [>...]")
    assert out == [Line("5/85 [>...]", partial=True), Line("5/85 [>...]")]


@given(st.lists(st.text(alphabet="ab\n", max_size=20), max_size=8))
def test_without_control_chars_chunking_does_not_matter(chunks):
    whole = "".join(chunks)
    expected = whole.split("\n")
    if expected[-1] == "":
        expected.pop()
    assert complete(run(*chunks)) == expected
    assert all(not line.partial for line in run(*chunks))


@given(st.lists(st.text(alphabet="ab\r\n\b", max_size=12), max_size=6))
def test_complete_lines_do_not_depend_on_chunking(chunks):
    # Progress updates may differ with chunking, but what is logged may not.
    assert complete(run(*chunks)) == complete(run("".join(chunks)))
