"""What probably went wrong when a stage failed, from its exit code and the end of its log. Pure."""

from __future__ import annotations

import re

TAIL_LINES = 30

# (pattern in the log, diagnosis). First match wins; order from most to least specific.
_KNOWN: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Invalid decryption|key used to load the model is incorrect", re.I),
     "wrong key: TLTPIPE_KEY is not the key this model was encrypted with (the pretrained model's NGC key, "
     "or the key of the run that trained it)"),
    (re.compile(r'has no field named "([^"]+)"|Message type "[^"]+" has no field named "([^"]+)"'),
     "spec rejected: the container's TAO does not know field {0}; remove it from spec_overrides or check "
     "the toolkit version"),
    (re.compile(r"Default output file .* already exists|already exists", re.I),
     "export target exists: TAO refuses to overwrite; tltpipe empties export/ first, so something else "
     "wrote there"),
    (re.compile(r"No space left on device", re.I), "disk full: free space where the run directory lives"),
    (re.compile(r"Bus error|shm|shared memory", re.I),
     "shared memory too small: raise docker.shm_size (TAO recommends 16G) or lower train.n_workers"),
    (re.compile(r"could not select device driver|no CUDA-capable device|CUDA_ERROR_NO_DEVICE|"
                r"NVIDIA driver on your system is too old", re.I),
     "GPU not visible: install the NVIDIA Container Toolkit (nvidia-container-runtime) and check "
     "`docker info` lists the nvidia runtime, or set runner.gpus: 0 for CPU-only tasks"),
    (re.compile(r"ResourceExhaustedError|out of memory|OOM when allocating", re.I),
     "out of GPU memory: lower train.batch_size or the input size"),
    (re.compile(r"Cannot find input file|No such file or directory", re.I),
     "a file the task needed is missing: see the path in the log above"),
)


def log_tail(text: str, lines: int = TAIL_LINES) -> list[str]:
    return [line for line in text.splitlines() if line.strip()][-lines:]


def diagnose(exit_code: int | None, log_text: str, *, oom_killed: bool = False) -> str | None:
    """One sentence naming the likely cause and the fix, or None when nothing known matches."""
    if oom_killed or exit_code == 137:
        return ("out of memory: the container was killed (exit 137); lower train.batch_size or "
                "train.n_workers, or give the machine more memory")
    tail = "\n".join(log_tail(log_text, 200))
    for pattern, message in _KNOWN:
        match = pattern.search(tail)
        if match:
            groups = [g for g in match.groups() if g] if match.groups() else []
            return message.format(groups[0] if groups else "")
    return None
