"""Process-level behaviour of the task entrypoint: output, Execution status, status.json, signals,
and the fault-injection switches (TAO_EMU_* environment variables, see tests/emulator/README.md)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import sys
import time

PASS_LINE = "Execution status: PASS"
FAIL_LINE = "Execution status: FAIL"
EXIT_FAIL = 255  # the TF1 entrypoint's sys.exit(-1)
DEPLOY_EXIT_FAIL = 1  # TAO Deploy's entrypoint


def fail_code(role: str) -> int:
    return DEPLOY_EXIT_FAIL if role == "deploy" else EXIT_FAIL


class TaskFailed(Exception):
    """A task error: printed, then `Execution status: FAIL` and the entrypoint's failure code."""


class Terminated(BaseException):
    """SIGTERM received (docker stop): leave promptly."""


def env_int(name: str, default: int | None = None) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        return default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def version() -> str:
    return os.environ.get("TAO_EMU_VERSION", "5.0")


def role() -> str:
    return os.environ.get("TAO_EMU_ROLE", "tf")


def say(msg: str = "", end: str = "\n") -> None:
    sys.stdout.write(msg + end)
    sys.stdout.flush()


def warn(msg: str) -> None:
    say(f"WARNING: {msg}")


def epoch_seconds() -> float:
    return max(0.0, env_float("TAO_EMU_EPOCH_SECONDS", 0.02))


def sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def hang_forever() -> None:
    say("(emulator: TAO_EMU_HANG is set, sleeping until stopped)")
    while True:
        time.sleep(3600)


def hard_exit(code: int) -> None:
    say(f"(emulator: TAO_EMU_EXIT_CODE={code}, dying now)")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def print_key(key: str | None) -> None:
    """TAO_EMU_PRINT_KEY=1 echoes the key, so that tests can check the caller redacts it."""
    if env_flag("TAO_EMU_PRINT_KEY") and key:
        say(f"Using encryption key: {key}")


# ---------------------------------------------------------------------------------------------
# status.json (TAO 4/5)


class StatusLog:
    """Appends JSON lines to RESULTS/status.json; a no-op when the version has none."""

    def __init__(self, results_dir: str | None, enabled: bool):
        self.path = None
        self.open(results_dir, enabled)

    def open(self, results_dir: str | None, enabled: bool) -> None:
        self.path = os.path.join(results_dir, "status.json") if (results_dir and enabled) else None

    def write(self, status: str, message: str, verbosity: str = "INFO", **extra) -> None:
        if not self.path:
            return
        now = _dt.datetime.now()
        record = {
            "date": f"{now.month}/{now.day}/{now.year}",
            "time": f"{now.hour}:{now.minute}:{now.second}",
            "status": status,
            "verbosity": verbosity,
            "message": message,
        }
        record.update(extra)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


# ---------------------------------------------------------------------------------------------
# running one task


def _on_sigterm(signum, frame):  # noqa: ARG001
    raise Terminated()


class LogRedirect:
    """--log_file: the task output is appended to the file instead of the console."""

    def __init__(self, path: str | None):
        self.path = path
        self.fh = None
        self.saved = None

    def __enter__(self):
        if self.path:
            parent = os.path.dirname(self.path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            self.fh = open(self.path, "a", encoding="utf-8", buffering=1)
            self.saved = (sys.stdout, sys.stderr)
            sys.stdout = sys.stderr = self.fh
        return self

    def __exit__(self, *exc):
        if self.fh:
            sys.stdout, sys.stderr = self.saved
            self.fh.close()
        return False


def run_task(func, log_file: str | None = None, status: StatusLog | None = None,
             interrupted_message: str = "Task was interrupted", fail_code: int = EXIT_FAIL) -> int:
    """Run func(); translate its ending into the entrypoint's status line and exit code."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    code = 0
    line = PASS_LINE
    with LogRedirect(log_file):
        try:
            func()
        except KeyboardInterrupt:
            say("Command was interrupted.")
            if status:
                status.write("FAILURE", interrupted_message)
        except Terminated:
            say("Terminated.")
            sys.stdout.flush()
            return 143
        except TaskFailed as exc:
            say(str(exc))
            if status:
                status.write("FAILURE", str(exc).splitlines()[-1] if str(exc) else "failed",
                             verbosity="ERROR")
            code, line = fail_code, FAIL_LINE
        except Exception as exc:  # noqa: BLE001 - a crash in a task is a FAIL like any other
            import traceback

            traceback.print_exc(file=sys.stdout)
            if status:
                status.write("FAILURE", f"{type(exc).__name__}: {exc}", verbosity="ERROR")
            code, line = fail_code, FAIL_LINE
        say(line)
    if log_file:
        say(line)
    return code
