"""Domain errors. The CLI edge turns each into one line on stderr and its exit code."""

from __future__ import annotations


class TltPipeError(Exception):
    """Base class: a user-facing failure with a one-line message and an exit code."""

    exit_code = 1


class ConfigError(TltPipeError):
    """Bad configuration or usage: names the file, line and field."""

    exit_code = 2


class InputError(TltPipeError):
    """Bad input data (dataset, label file) in strict mode: names file:line."""

    exit_code = 2


class SpecError(TltPipeError):
    """A rendered spec file does not match the TAO spec schema."""

    exit_code = 2


class DockerUnavailable(TltPipeError):
    """The Docker engine cannot be reached."""

    exit_code = 3


class ImageMissing(TltPipeError):
    """A container image is not present locally and could not be pulled."""

    exit_code = 3


class RunLocked(TltPipeError):
    """Another live tltpipe process holds the run directory."""

    exit_code = 4


class StageFailed(TltPipeError):
    """A stage ended with a non-zero exit code or without its promised outputs."""

    exit_code = 1

    def __init__(self, message: str, *, log_tail: list[str] | None = None):
        super().__init__(message)
        self.log_tail = log_tail or []


class Interrupted(TltPipeError):
    """The run was interrupted by SIGINT (130) or SIGTERM (143)."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code
