from __future__ import annotations

import pytest

from tlt_pipe.diagnosis import diagnose, log_tail


@pytest.mark.parametrize("log, expected", [
    ("Loading model\nInvalid decryption. Unable to open file (File signature not found). The key used to load the "
     "model is incorrect.\nExecution status: FAIL", "wrong key"),
    ('google.protobuf.text_format.ParseError: 3:5 : Message type "TrainingConfig" has no field named "num_epoch".',
     "spec rejected: the container's TAO does not know field num_epoch"),
    ("Default output file /tltpipe/run/export/ssd.etlt already exists", "export target exists"),
    ("OSError: [Errno 28] No space left on device", "disk full"),
    ("Bus error (core dumped)", "shared memory too small"),
    ("docker: Error response from daemon: could not select device driver \"\" with capabilities: [[gpu]]",
     "GPU not visible"),
    ("ResourceExhaustedError: OOM when allocating tensor", "out of GPU memory"),
])
def test_known_failures_are_named(log, expected):
    assert diagnose(255, log).startswith(expected)


def test_exit_137_and_oom_flag_mean_out_of_memory():
    assert diagnose(137, "").startswith("out of memory")
    assert diagnose(1, "", oom_killed=True).startswith("out of memory")


def test_unknown_failure_has_no_made_up_diagnosis():
    assert diagnose(255, "Traceback ...\nValueError: something odd\nExecution status: FAIL") is None


def test_tail_keeps_the_last_non_empty_lines():
    text = "\n".join(f"line {i}" for i in range(100)) + "\n\n"
    assert log_tail(text) == [f"line {i}" for i in range(70, 100)]
