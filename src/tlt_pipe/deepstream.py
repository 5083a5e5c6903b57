"""The DeepStream bundle of a run: config_infer_primary.txt for gst-nvinfer, labels.txt, and a
deepstream-app config (source, streammux, the detector, tracker, osd, sink). Rendering and checking are
pure; the last section gathers a run's Bundle and writes the files (the deepstream stage and `tltpipe
deepstream` both).

The files are GLib key files, the format DeepStream reads: `[group]`, `key=value`, lists separated by
`;`, comments only on lines of their own. Paths are relative to the bundle's folder (deepstream/ in the
run directory), as DeepStream resolves them, so a run directory copied to a Jetson keeps working.

Keys are those of DeepStream 6.x and 7.x. An .etlt model (TAO 3 and 4) needs DeepStream 6.x and the
model key; an ONNX model (TAO 5) needs neither key nor a custom input blob. The model key is written only
when asked; otherwise the config names the TensorRT engine tltpipe built, which needs no key.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tlt_pipe.networks import Network

PARSER_LIBRARY = "/opt/nvidia/deepstream/deepstream/lib/libnvds_infercustomparser.so"  # DeepStream's own
TRACKER_LIBRARY = "/opt/nvidia/deepstream/deepstream/lib/libnvds_nvmultiobjecttracker.so"
TRACKER_CONFIG = "/opt/nvidia/deepstream/deepstream/samples/configs/deepstream-app/config_tracker_IOU.yml"
NETWORK_MODES = {"fp32": 0, "int8": 1, "fp16": 2}  # gst-nvinfer's network-mode
INFER_CONFIG = "config_infer_primary.txt"
LABELS = "labels.txt"
APP_CONFIG = "deepstream_app.txt"


@dataclass(frozen=True)
class Bundle:
    """What the nvinfer config says. Paths are relative to the bundle's folder."""

    network: Network
    model: str  # the exported model: .etlt (TAO 3, 4) or .onnx (TAO 5)
    labels: Sequence[str]
    input_dims: tuple[int, int, int]  # channels, height, width
    precision: Literal["fp32", "fp16", "int8"] = "fp32"
    engine: str | None = None  # the TensorRT engine tltpipe built
    calibration: str | None = None  # the INT8 calibration cache
    threshold: float = 0.3
    batch_size: int = 1
    key: str | None = None  # the model key, only when the user asks for it in the file
    parser_library: str = PARSER_LIBRARY

    @property
    def etlt(self) -> bool:
        return self.model.endswith(".etlt")


def output_blobs(network: Network, etlt: bool) -> list[str]:
    """The output layers gst-nvinfer reads: the NMS layer, or DetectNet_v2's coverage and boxes (an ONNX
    export names its tensors with `:0`)."""
    names = [n.strip() for n in network.output_nodes.split(",")]
    return names if etlt or len(names) == 1 else [f"{n}:0" for n in names]


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else f"{value:.1f}"


def infer_config(bundle: Bundle) -> str:
    """config_infer_primary.txt for gst-nvinfer."""
    net, nv = bundle.network, bundle.network.nvinfer
    lines = ["# gst-nvinfer: the primary detector (written by tltpipe; DeepStream 6.x and 7.x keys)", "[property]",
             "gpu-id=0", f"net-scale-factor={_number(nv.scale)}"]
    if nv.offsets:
        lines.append("offsets=" + ";".join(_number(o) for o in nv.offsets))
    lines += [f"model-color-format={nv.color_format}", f"labelfile-path={LABELS}"]
    if bundle.engine:
        lines.append(f"model-engine-file={_text(bundle.engine)}")
    if bundle.etlt:
        if bundle.key is not None:
            lines += [f"tlt-encoded-model={_text(bundle.model)}", f"tlt-model-key={_text(bundle.key)}"]
        else:
            lines += ["# DeepStream 6.x builds its own engine from the .etlt only with the model key: uncomment",
                      "# and set it (tltpipe deepstream --with-key writes it). The engine above needs no key.",
                      f"# tlt-encoded-model={_text(bundle.model)}", "# tlt-model-key=<your key>"]
        lines += [f"uff-input-blob-name={net.input_name}", "uff-input-order=0"]
    else:
        lines.append(f"onnx-file={_text(bundle.model)}")
    c, h, w = bundle.input_dims
    lines += [f"infer-dims={c};{h};{w}", f"maintain-aspect-ratio={int(nv.maintain_aspect_ratio)}",
              f"batch-size={bundle.batch_size}", f"network-mode={NETWORK_MODES[bundle.precision]}"]
    if bundle.precision == "int8" and bundle.calibration:
        lines.append(f"int8-calib-file={_text(bundle.calibration)}")
    lines += ["network-type=0", f"num-detected-classes={len(bundle.labels)}", "interval=0", "gie-unique-id=1",
              "output-blob-names=" + ";".join(output_blobs(net, bundle.etlt)), f"cluster-mode={nv.cluster_mode}"]
    if nv.parser:
        lines += [f"parse-bbox-func-name={nv.parser}", f"custom-lib-path={_text(bundle.parser_library)}"]
    lines += ["", "[class-attrs-all]", f"pre-cluster-threshold={_number(bundle.threshold)}"]
    if nv.cluster_mode == 2:
        lines += ["nms-iou-threshold=0.5", "topk=20"]
    return "\n".join(lines) + "\n"


def labels_text(labels: Sequence[str]) -> str:
    return "".join(f"{label}\n" for label in labels)


@dataclass(frozen=True)
class Source:
    """Where the video comes from: a file, a V4L2 camera (device number) or an RTSP stream."""

    kind: Literal["file", "camera", "rtsp"] = "file"
    uri: str = "file:///opt/nvidia/deepstream/deepstream/samples/streams/sample_1080p_h264.mp4"
    camera: int = 0
    width: int = 1280
    height: int = 720
    fps: int = 30


@dataclass(frozen=True)
class Sink:
    """Where the annotated video goes: an mp4 file, the display, an RTSP server, or nowhere (fakesink)."""

    kind: Literal["file", "display", "rtsp", "fake"] = "file"
    path: str = "deepstream_out.mp4"
    port: int = 8554


_VIDEO_DEVICES = 256  # Linux numbers V4L2 device nodes /dev/video0 to /dev/video255


def parse_source(text: str) -> Source:
    """`file:///path` or a path, `http(s)://...`, `camera:N` (/dev/videoN) or `rtsp://host[:port]/...`;
    ValueError naming the forms."""
    from urllib.parse import urlsplit

    if text.startswith("camera:"):
        number = text.removeprefix("camera:")
        if not (number.isascii() and number.isdigit()) or int(number) >= _VIDEO_DEVICES:
            raise ValueError(f"{text!r}: camera:N names /dev/videoN, N from 0 to {_VIDEO_DEVICES - 1}")
        return Source("camera", camera=int(number))
    if not text.strip():
        raise ValueError("empty: give a video file, camera:N or rtsp://...")
    scheme = _URI_SCHEME.match(text)
    if scheme is None:  # a path (file:PATH as the sinks write it, too)
        path = text.removeprefix("file:") if text.startswith("file:") else text
        if not path.strip():
            raise ValueError(f"{text!r}: give the video file, e.g. file:clip.mp4 or file:///videos/clip.mp4")
        return Source("file", uri=Path(_one_line(path)).resolve().as_uri())
    kind = scheme.group(1).lower()
    _one_line(text)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a port past 65535 or not a number raises here
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    if any(c.isspace() for c in text):
        raise ValueError(f"{text!r}: a URI holds no spaces (write a space as %20)")
    if kind in ("rtsp", "rtsps", "http", "https") and not parts.hostname:
        raise ValueError(f"{text!r}: no host; write {kind}://HOST[:PORT]/PATH")
    if parts.port == 0:
        raise ValueError(f"{text!r}: a port is 1 to 65535")
    if kind == "file" and (parts.netloc not in ("", "localhost") or parts.path in ("", "/")):
        raise ValueError(f"{text!r}: a file URI names an absolute path, file:///videos/clip.mp4 (or give the path)")
    if kind in ("rtsp", "rtsps"):
        return Source("rtsp", uri=text)
    if kind in ("file", "http", "https"):  # deepstream-app's multi-URI source opens these
        return Source("file", uri=text)
    raise ValueError(f"{text!r}: DeepStream's sources read a file, http(s)://, rtsp:// or camera:N, not {kind}://")


_URI_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def _text(value: str) -> str:
    """A string value as GLib's key-file reader (deepstream-app, gst-nvinfer) gives it back: a backslash
    starts an escape there (\\n, \\s, \\\\), and leading blanks are dropped unless escaped."""
    escaped = str(value).replace("\\", "\\\\")
    stripped = escaped.lstrip(" ")
    return "\\s" * (len(escaped) - len(stripped)) + stripped


def _one_line(text: str) -> str:
    """A value for a key file: one line (a line break would start another key or section)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"{text!r}: a control character (a line break, say) has no place in DeepStream's config")
    return text


def parse_library(text: str) -> str:
    """The custom parser library's path, as the nvinfer config holds it."""
    if not text.strip():
        raise ValueError("empty: give the path of the parser library (.so)")
    return _one_line(text)


def parse_sink(text: str) -> Sink:
    """`file:PATH` (mp4), `display`, `rtsp:PORT` or `fake`; ValueError naming the forms."""
    kind, _, value = text.partition(":")
    if kind == "file":
        if not value.strip():
            raise ValueError(f"{text!r}: give the file to write, e.g. file:deepstream_out.mp4")
        return Sink("file", path=_one_line(value))
    if kind == "rtsp" and value.isascii() and value.isdigit():
        if not 0 < int(value) < 65536:
            raise ValueError(f"{text!r}: an RTSP port is 1 to 65535")
        return Sink("rtsp", port=int(value))
    if kind in ("display", "fake") and not value:
        return Sink(kind)  # type: ignore[arg-type]
    raise ValueError(f"{text!r}: give file:PATH, display, rtsp:PORT (e.g. rtsp:8554) or fake")


SOURCE_TYPES = {"camera": 1, "file": 3, "rtsp": 4}  # deepstream-app: 1 V4L2 camera, 3 multi-URI, 4 RTSP
SINK_TYPES = {"fake": 1, "display": 2, "file": 3, "rtsp": 4}  # 1 fakesink, 2 display, 3 file, 4 RTSP streaming


def app_config(source: Source, sink: Sink, *, tracker: bool = True, width: int = 1920, height: int = 1080) -> str:
    """deepstream_app.txt: one source through streammux, the detector, an optional tracker, osd and a sink."""
    live = source.kind != "file"
    lines = ["# deepstream-app -c deepstream_app.txt (written by tltpipe)", "[application]",
             "enable-perf-measurement=1", "perf-measurement-interval-sec=5", "",
             "[tiled-display]", "enable=1", "rows=1", "columns=1", f"width={width}", f"height={height}", "",
             "[source0]", "enable=1", f"type={SOURCE_TYPES[source.kind]}"]
    if source.kind == "camera":
        lines += [f"camera-v4l2-dev-node={source.camera}", f"camera-width={source.width}",
                  f"camera-height={source.height}", f"camera-fps-n={source.fps}", "camera-fps-d=1"]
    else:
        lines += [f"uri={_text(source.uri)}", "num-sources=1"]
    lines += ["gpu-id=0", "", "[streammux]", "gpu-id=0", f"live-source={int(live)}", "batch-size=1",
              "batched-push-timeout=40000", f"width={width}", f"height={height}", "enable-padding=0", "",
              "[primary-gie]", "enable=1", "gpu-id=0", "batch-size=1", "gie-unique-id=1", f"config-file={INFER_CONFIG}",
              "", "[tracker]", f"enable={int(tracker)}", "tracker-width=640", "tracker-height=384", "gpu-id=0",
              f"ll-lib-file={TRACKER_LIBRARY}", f"ll-config-file={TRACKER_CONFIG}", "enable-batch-process=1", "",
              "[osd]", "enable=1", "gpu-id=0", "border-width=2", "text-size=15", "text-color=1;1;1;1",
              "text-bg-color=0.3;0.3;0.3;1", "font=Serif", "display-text=1", "display-bbox=1", "",
              "[sink0]", "enable=1", f"type={SINK_TYPES[sink.kind]}", f"sync={int(sink.kind == 'display')}",
              "source-id=0", "gpu-id=0"]
    if sink.kind == "file":
        lines += ["container=1", "codec=1", "enc-type=0", "bitrate=4000000", f"output-file={_text(sink.path)}"]
    elif sink.kind == "rtsp":
        lines += ["codec=1", "enc-type=0", "bitrate=4000000", f"rtsp-port={sink.port}", "udp-port=5400"]
    lines += ["", "[tests]", f"file-loop={int(not live and sink.kind == 'display')}"]
    return "\n".join(lines) + "\n"


# --- checking ------------------------------------------------------------------------------------------

INT, FLOAT, TEXT = "int", "float", "text"
# The [property] keys a detector's config must have, and how gst-nvinfer reads them.
REQUIRED = {"gpu-id": INT, "net-scale-factor": FLOAT, "model-color-format": INT, "labelfile-path": TEXT,
            "infer-dims": "int-list-3", "batch-size": INT, "network-mode": INT, "network-type": INT,
            "num-detected-classes": INT, "gie-unique-id": INT, "output-blob-names": "text-list",
            "cluster-mode": INT}


def read_key_file(text: str) -> dict[str, dict[str, str]]:
    """group -> key -> value, read as a key file (no interpolation, keys as written)."""
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",), delimiters=("=",),
                                       strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return {group: dict(parser[group]) for group in parser.sections()}


def check_infer_config(groups: Mapping[str, Mapping[str, str]]) -> list[str]:
    """What is wrong with an nvinfer config for a detector: missing keys, values of the wrong type or out
    of range, no model to load, INT8 without a calibration file; [] when nothing is."""
    problems = []
    prop = groups.get("property")
    if prop is None:
        return ["no [property] group"]
    for key, kind in REQUIRED.items():
        if key not in prop:
            problems.append(f"[property] {key}: missing")
            continue
        problem = _type_problem(prop[key], kind)
        if problem:
            problems.append(f"[property] {key}={prop[key]}: {problem}")
    if not any(k in prop for k in ("onnx-file", "tlt-encoded-model", "model-engine-file")):
        problems.append("[property]: no model (onnx-file, tlt-encoded-model or model-engine-file)")
    if "tlt-encoded-model" in prop and "tlt-model-key" not in prop:
        problems.append("[property] tlt-encoded-model: without tlt-model-key")
    checks = {"network-mode": {"0", "1", "2"}, "model-color-format": {"0", "1", "2"},
              "cluster-mode": {"0", "1", "2", "3", "4"}}
    for key, allowed in checks.items():
        if key in prop and prop[key] not in allowed:
            problems.append(f"[property] {key}={prop[key]}: not one of {', '.join(sorted(allowed))}")
    if prop.get("network-mode") == "1" and "int8-calib-file" not in prop and "model-engine-file" not in prop:
        problems.append("[property] network-mode=1 (INT8): no int8-calib-file")
    if "parse-bbox-func-name" in prop and "custom-lib-path" not in prop:
        problems.append("[property] parse-bbox-func-name: without custom-lib-path")
    classes = prop.get("num-detected-classes", "0")
    for group in groups:
        if group.startswith("class-attrs-") and group != "class-attrs-all":
            number = group.removeprefix("class-attrs-")
            if not number.isdigit() or (classes.isdigit() and int(number) >= int(classes)):
                problems.append(f"[{group}]: not a class of the {classes} detected")
    return problems


def _type_problem(value: str, kind: str) -> str | None:
    try:
        if kind == INT:
            int(value)
        elif kind == FLOAT:
            float(value)
        elif kind == "int-list-3":
            items = [int(v) for v in value.split(";") if v.strip()]
            if len(items) != 3:
                return "needs 3 integers (channels;height;width)"
        elif kind == "text-list" and not [v for v in value.split(";") if v.strip()]:
            return "empty"
    except ValueError:
        return f"not {'an integer' if kind != FLOAT else 'a number'}"
    if kind == TEXT and not value.strip():
        return "empty"
    return None


# --- the bundle of a run ----------------------------------------------------------------------------

def bundle_for(config, *, model: str, engine: str | None, labels: Sequence[str], calibration: str | None,
               key: str | None = None, parser_library: str = PARSER_LIBRARY) -> Bundle:
    """The Bundle of a run of this config; model, engine and calibration are run-relative (the bundle
    lives in <run>/deepstream/, so they become ../<path>)."""
    from tlt_pipe.networks import get_network

    return Bundle(network=get_network(config.network, config.toolkit), model=f"../{model}", labels=list(labels),
                  input_dims=(3, config.model.input_height, config.model.input_width),
                  precision=config.engine.data_type, engine=f"../{engine}" if engine else None,
                  calibration=f"../{calibration}" if calibration else None, threshold=config.inference.threshold,
                  key=key, parser_library=parser_library)


def labels_of(network: Network, labels_file: Path | None, classes: Sequence[str]) -> list[str]:
    """TAO's own labels.txt from export when there is one, else the classes (after "background" for the
    networks whose labels start with it)."""
    if labels_file is not None and labels_file.is_file():
        return [line.strip() for line in labels_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return (["background"] if network.labels_with_background else []) + list(classes)


def calibration_of(run_dir: Path, candidates: Sequence[str | None]) -> str | None:
    """The first INT8 calibration cache that exists (export's on TAO 3, the engine's on TAO 4 and 5)."""
    return next((rel for rel in candidates if rel and (run_dir / rel).is_file()), None)


def write_bundle(folder: Path, bundle: Bundle, source: Source, sink: Sink, *, tracker: bool) -> None:
    """config_infer_primary.txt (checked first: TltPipeError when it is wrong), labels.txt and
    deepstream_app.txt in folder; a config holding the model key is readable only by you."""
    from tlt_pipe.errors import TltPipeError
    from tlt_pipe.manifest import write_atomic

    infer = infer_config(bundle)
    problems = check_infer_config(read_key_file(infer))
    if problems:  # pragma: no cover - a renderer bug, caught by the tests
        raise TltPipeError(f"the nvinfer config tltpipe wrote is wrong: {'; '.join(problems)}")
    write_atomic(folder / INFER_CONFIG, infer)
    if bundle.key is not None:
        (folder / INFER_CONFIG).chmod(0o600)
    write_atomic(folder / LABELS, labels_text(bundle.labels))
    write_atomic(folder / APP_CONFIG, app_config(source, sink, tracker=tracker))


def _inside(run_dir: Path, value: str, key: str) -> str:
    """A path the manifest records, which must lie in the run directory (an edited or hostile manifest
    must not point the bundle at /etc or ../../other-run)."""
    from tlt_pipe.errors import ConfigError
    from tlt_pipe.manifest import is_run_relative

    if not is_run_relative(value):
        raise ConfigError(f"{run_dir / 'manifest.json'}: {key}: {value!r} is not a path inside the run directory")
    return value


def run_of(run_dir) -> tuple[Any, Any]:
    """(manifest, config) of a run directory, the config as the run recorded it; ConfigError when either is
    missing or cannot be read."""
    from tlt_pipe.config import parse_config
    from tlt_pipe.errors import ConfigError
    from tlt_pipe.manifest import load_manifest
    from tlt_pipe.regular_file import read_text

    run_dir = Path(run_dir)
    manifest = load_manifest(run_dir)
    if manifest is None:
        raise ConfigError(f"{run_dir}: no manifest.json here; is it a tltpipe run directory?")
    path = run_dir / _inside(run_dir, manifest.config, "config")
    try:
        config = parse_config(read_text(path), source=str(path), base_dir=run_dir)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the run's config: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the run's config is not UTF-8 text (byte {exc.start})") from None
    return manifest, config


def bundle_of_run(run_dir, manifest, config, *, with_key: str | None = None,
                  parser_library: str = PARSER_LIBRARY) -> Bundle:
    """The Bundle of a finished run (its manifest and config, from run_of): ConfigError when it has not
    exported a model, or has only an .etlt and neither an engine nor the key to give DeepStream."""
    from tlt_pipe.errors import ConfigError
    from tlt_pipe.networks import get_network

    run_dir = Path(run_dir)
    done = {n: r for n, r in manifest.stages.items() if r.status == "succeeded"}
    if "export" not in done:
        raise ConfigError(f"{run_dir}: export has not succeeded there; run it first (tltpipe stage export ...)")

    def artifact(stage: str, key: str) -> str | None:
        value = done[stage].artifacts.get(key) if stage in done else None
        return None if value is None else _inside(run_dir, value, f"stages.{stage}.artifacts.{key}")

    model = artifact("export", "model")
    if model is None:
        raise ConfigError(f"{run_dir / 'manifest.json'}: stages.export.artifacts.model: missing; run export again "
                          "(tltpipe stage export --force ...)")
    engine = artifact("engine", "engine")
    if model.endswith(".etlt") and engine is None and with_key is None:
        raise ConfigError(f"{run_dir}: the model is an .etlt, which DeepStream opens only with the model key, and no "
                          "engine was built; run the engine stage, or pass --with-key to write the key into the config")
    labels_file = artifact("export", "labels")
    classes = done["prepare"].artifacts.get("classes", []) if "prepare" in done else []
    labels = labels_of(get_network(config.network, config.toolkit), run_dir / labels_file if labels_file else None,
                       classes)
    calibration = (calibration_of(run_dir, [artifact("export", "cal_cache"), "engine/cal.bin"])
                   if config.engine.data_type == "int8" else None)
    return bundle_for(config, model=model, engine=engine, labels=labels, calibration=calibration, key=with_key,
                      parser_library=parser_library)
