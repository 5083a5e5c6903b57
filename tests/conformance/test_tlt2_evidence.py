"""TLT 2.0 has no public source. The best evidence of what it accepts is NVIDIA's own TLT 2.0 DetectNet_v2
specs and command lines (the face-mask tutorial, in shared/face-mask-detection beside the checkout):

- every one of NVIDIA's specs parses in tltpipe's TLT 2.0 schema;
- every field tltpipe writes into a TLT 2.0 DetectNet_v2 spec is one NVIDIA's specs write too, except
  the few listed below with the evidence for each;
- every flag tltpipe passes to a tlt-* command is one NVIDIA's commands pass to it.

Without shared/ (a bare clone) these tests are skipped: the evidence is not the project's to ship.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conformance.cases import plan_case
from tests.conformance.judge import spec_kind
from tlt_pipe.specs import parse_spec

FACE_MASK = Path(__file__).resolve().parents[3] / "shared" / "face-mask-detection"
pytestmark = pytest.mark.skipif(not FACE_MASK.is_dir(), reason=f"{FACE_MASK} (NVIDIA's TLT 2.0 specs) is not here")

NVIDIA_SPECS = {
    "detectnet_v2_train_resnet18_kitti.txt": "detectnet_v2",
    "detectnet_v2_retrain_resnet18_kitti.txt": "detectnet_v2",
    "detectnet_v2_inference_kitti_tlt.txt": "detectnet_v2_inference",
    "detectnet_v2_inference_kitti_etlt.txt": "detectnet_v2_inference",
    "detectnet_v2_tfrecords_kitti_trainval.txt": "dataset_convert",
    "detectnet_v2_tfrecords_kitti_val.txt": "dataset_convert",
}
# Fields tltpipe writes that NVIDIA's TLT 2.0 specs leave out, and why they are still TLT 2.0's.
EXEMPT = {
    "dataset_convert": {
        "image_directory_path": "tao-contract.md section 6 (dataset_convert takes image_directory_path)",
    },
    "detectnet_v2": {
        "dataset_config.validation_data_source": "NVIDIA's retrain spec carries it, commented out",
        "dataset_config.validation_data_source.tfrecords_path": "same",
        "dataset_config.validation_data_source.image_directory_path": "same",
        "model_config.freeze_blocks": "tao-contract.md section 6 (freeze_blocks)",
    },
    "detectnet_v2_inference": {},
}
# Flags tltpipe may pass that NVIDIA's TLT 2.0 commands leave out, and the evidence for each.
EXEMPT_FLAGS = {
    "tlt-converter": {"-w": "tao-contract.md section 4 (converter -w workspace; only with engine.workspace_mb)"},
}


def field_paths(text: str) -> set[str]:
    """Dotted paths of every field a text-format spec names (zero values included)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    paths: set[str] = set()
    stack: list[str] = []
    for match in re.finditer(r"(\w+)\s*:?\s*\{|(\w+)\s*:|\}", text):
        if match.group(1):
            stack.append(match.group(1))
            paths.add(".".join(stack))
        elif match.group(2):
            paths.add(".".join([*stack, match.group(2)]))
        else:
            stack.pop()
    return {re.sub(r"\.value(?=\.|$)", ".value", p) for p in paths}


def _nvidia_paths(kind: str) -> set[str]:
    return {p for name, k in NVIDIA_SPECS.items() if k == kind for p in field_paths((FACE_MASK / "tlt_specs" / name).read_text())}


@pytest.mark.parametrize("name", sorted(NVIDIA_SPECS))
def test_nvidia_tlt2_specs_parse_in_tltpipes_tlt2_schema(name):
    parse_spec((FACE_MASK / "tlt_specs" / name).read_text(encoding="utf-8"), "2.0", NVIDIA_SPECS[name], source=name)


@pytest.mark.parametrize("variant", ["fp32", "int8", "resume", "retrain"])
def test_tltpipe_writes_only_fields_nvidia_tlt2_specs_write(tmp_path, variant):
    for planned in plan_case(tmp_path, "detectnet_v2", "2.0", variant):
        for path, text in planned.specs.items():
            kind = spec_kind("detectnet_v2", path)
            extra = field_paths(text) - _nvidia_paths(kind) - set(EXEMPT[kind])
            assert not extra, f"{path}: fields NVIDIA's TLT 2.0 specs never write: {sorted(extra)}"


def _nvidia_commands() -> dict[str, set[str]]:
    """tlt-* command (with its network) -> the flags NVIDIA's face-mask notebook passes to it."""
    text = (FACE_MASK / "SOURCE.txt").read_text(encoding="utf-8")
    commands: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("tlt-"):
            commands.append(stripped)
        elif commands and line.startswith("      ") and stripped.startswith("-"):
            commands[-1] += " " + stripped
    flags: dict[str, set[str]] = {}
    for command in commands:
        words = command.split()
        name = " ".join(words[:2]) if len(words) > 1 and not words[1].startswith("-") and "/" not in words[1] \
            and not words[1].startswith(".") else words[0]
        flags.setdefault(name, set()).update(w for w in words if re.fullmatch(r"--?[a-z_]+", w))
    return flags


@pytest.mark.parametrize("variant", ["fp32", "int8", "resume", "retrain"])
def test_tltpipe_passes_tlt2_commands_only_flags_nvidia_passes(tmp_path, variant):
    nvidia = _nvidia_commands()
    for planned in plan_case(tmp_path, "detectnet_v2", "2.0", variant):
        argv = list(planned.plan.argv)
        name = " ".join(argv[:2]) if argv[0] != "tlt-prune" and argv[0] != "tlt-converter" \
            and argv[0] != "tlt-dataset-convert" else argv[0]
        assert name in nvidia, f"{planned.stage}: NVIDIA's commands never run {name}"
        used = {w for w in argv if re.fullmatch(r"--?[a-z_]+", w)}
        extra = used - nvidia[name] - set(EXEMPT_FLAGS.get(name, {}))
        assert not extra, f"{planned.stage}: {sorted(extra)} never passed to {name}"
