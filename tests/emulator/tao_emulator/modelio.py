"""Model files: encrypted .tlt, plain .hdf5, .etlt, .onnx, TensorRT engines, .ckzip, tensorfiles.

Every file written by the emulator carries a JSON metadata payload (network, arch, classes, input
size, pruned ratio, a weights fingerprint...), so downstream tasks compute deterministic numbers
and can reject a model of another network.  The encryption is the emulator's own (key-derived
XOR stream + HMAC tag); the point is that a wrong or missing key fails like the real thing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import zipfile

from . import catalog, metrics
from .runtime import TaskFailed

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ENC_MAGIC = b"TAOEMU-ENC1\n"
PLAIN_MARKER = b"TAOEMU-MODEL\n"
ONNX_MARKER = b"\x08\x07\x12\x0cTAOEMU-ONNX\n"
ENGINE_MARKER = b"TAOEMU-TRT-ENGINE\n"
TENSORFILE_MARKER = b"TAOEMU-TENSORFILE\n"
CALCACHE_MARKER = b"TRT-EMU-EntropyCalibration2\n"

INVALID_KEY = ("Invalid decryption. Unable to open file (File signature not found). "
               "The key used to load the model is incorrect.")


class InvalidKey(TaskFailed):
    def __init__(self):
        super().__init__(INVALID_KEY)


def fingerprint(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


# ---------------------------------------------------------------------------------------------
# encryption


def _keystream(key: bytes, salt: bytes, n: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(key + salt + counter.to_bytes(8, "little")).digest()
        counter += 1
    return bytes(out[:n])


def encrypt(payload: bytes, key: str) -> bytes:
    kb = hashlib.sha256(b"tao-emulator-key:" + key.encode()).digest()
    salt = hashlib.sha256(payload).digest()[:16]
    stream = _keystream(kb, salt, len(payload))
    ct = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(payload), "big")
    tag = hmac.new(kb, salt + ct, hashlib.sha256).digest()
    return ENC_MAGIC + salt + tag + ct


def decrypt(blob: bytes, key: str | None) -> bytes:
    if not blob.startswith(ENC_MAGIC) or not key:
        raise InvalidKey()
    body = blob[len(ENC_MAGIC):]
    salt, tag, ct = body[:16], body[16:48], body[48:]
    kb = hashlib.sha256(b"tao-emulator-key:" + key.encode()).digest()
    if not hmac.compare_digest(hmac.new(kb, salt + ct, hashlib.sha256).digest(), tag):
        raise InvalidKey()
    stream = _keystream(kb, salt, len(ct))
    return (int.from_bytes(ct, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(ct), "big")


# ---------------------------------------------------------------------------------------------
# Keras models (.tlt / .hdf5)


def _write_bytes(path: str, data: bytes) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = path + ".tmp-emu"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _read_bytes(path: str) -> bytes:
    if not os.path.exists(path):
        raise TaskFailed(f"OSError: Unable to open file (unable to open file: name = '{path}', "
                         "errno = 2, error message = 'No such file or directory')")
    if os.path.isdir(path):
        raise TaskFailed(f"IsADirectoryError: [Errno 21] Is a directory: '{path}'")
    with open(path, "rb") as fh:
        return fh.read()


def save_model(path: str, meta: dict, key: str | None) -> None:
    """`.tlt` is encrypted with the key, `.hdf5` is plain HDF5 (signature + payload). The file's size
    follows the model's parameter count (a hundredth of a byte each, so a pruned model is smaller)."""
    weights = b" " * (metrics.params(meta.get("nlayers"), meta.get("pruned_ratio", 1.0)) // 100)
    payload = PLAIN_MARKER + json.dumps(meta, sort_keys=True).encode() + weights
    ext = os.path.splitext(path)[1].lower()
    if ext == ".tlt":
        if not key:
            raise TaskFailed("ValueError: an encryption key (-k) is required to save a .tlt model")
        data = encrypt(payload, key)
    else:
        data = HDF5_SIGNATURE + b"\0" * 8 + payload
    _write_bytes(path, data)


def load_model(path: str, key: str | None) -> dict:
    """Load a .tlt/.hdf5/.h5 model.  An HDF5 file not written by the emulator (e.g. a pretrained
    backbone made by the tests) is accepted as foreign weights: {"kind": "foreign"}."""
    data = _read_bytes(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".tlt":
        if not key:
            raise InvalidKey()
        payload = decrypt(data, key)
    elif ext in (".hdf5", ".h5"):
        if not data.startswith(HDF5_SIGNATURE):
            raise TaskFailed(f"OSError: Unable to open file (file signature not found): '{path}'")
        idx = data.find(PLAIN_MARKER)
        if idx < 0:
            return {"kind": "foreign", "fingerprint": hashlib.sha256(data).hexdigest()[:24],
                    "path": path}
        payload = data[idx:]
    else:
        raise TaskFailed(f"ValueError: Unsupported model file extension {ext!r}: {path} "
                         "(expected .tlt or .hdf5)")
    try:
        return json.loads(payload[len(PLAIN_MARKER):].decode())
    except (ValueError, UnicodeDecodeError):
        raise TaskFailed(f"OSError: Unable to open file (file signature not found): '{path}'") from None


def require_network(meta: dict, net: str, path: str) -> None:
    """The model must come from the same network code (`ssd` and `dssd` are one, as are `yolo_v4`
    and `yolo_v4_tiny`)."""
    got = meta.get("network")
    if meta.get("kind") == "foreign" or got is None:
        raise TaskFailed(f"ValueError: {path} is not a trained {net} model (no {net} layers found)")
    if catalog.family(got) != catalog.family(net):
        raise TaskFailed(f"ValueError: Unknown layer: the model {path} is a {got} model, "
                         f"it cannot be loaded by {net}")


# ---------------------------------------------------------------------------------------------
# exported models


def save_etlt(path: str, meta: dict, key: str, input_node: str | None) -> None:
    """4-byte LE int32 n, n bytes input node name (n=0: ONNX inside), encrypted payload."""
    name = (input_node or "").encode()
    payload = PLAIN_MARKER + json.dumps(meta, sort_keys=True).encode()
    _write_bytes(path, struct.pack("<i", len(name)) + name + encrypt(payload, key))


def load_etlt(path: str, key: str | None) -> tuple[str | None, dict]:
    data = _read_bytes(path)
    if len(data) < 4:
        raise TaskFailed(f"Error: {path} is not a valid .etlt file")
    (n,) = struct.unpack("<i", data[:4])
    if n < 0 or 4 + n > len(data):
        raise TaskFailed(f"Error: {path} is not a valid .etlt file")
    input_node = data[4:4 + n].decode("utf-8", "replace") if n else None
    payload = decrypt(data[4 + n:], key)
    return input_node, json.loads(payload[len(PLAIN_MARKER):].decode())


def save_onnx(path: str, meta: dict) -> None:
    _write_bytes(path, ONNX_MARKER + json.dumps(meta, sort_keys=True).encode())


def load_onnx(path: str) -> dict:
    data = _read_bytes(path)
    if not data.startswith(ONNX_MARKER):
        raise TaskFailed(f"onnx.onnx_cpp2py_export.checker.ValidationError: {path} is not an "
                         "ONNX model exported by TAO")
    return json.loads(data[len(ONNX_MARKER):].decode())


def save_engine(path: str, meta: dict) -> None:
    _write_bytes(path, ENGINE_MARKER + json.dumps(meta, sort_keys=True).encode())


def load_engine(path: str, trt_version: str) -> dict:
    data = _read_bytes(path)
    if not data.startswith(ENGINE_MARKER):
        raise TaskFailed(f"[TensorRT] ERROR: INVALID_CONFIG: The engine plan file is corrupted "
                         f"or not a TensorRT engine: {path}")
    meta = json.loads(data[len(ENGINE_MARKER):].decode())
    if meta.get("trt_version") != trt_version:
        raise TaskFailed("[TensorRT] ERROR: INVALID_CONFIG: The engine plan file is not "
                         f"compatible with this version of TensorRT, expecting library version "
                         f"{trt_version} got {meta.get('trt_version')}, please rebuild.")
    return meta


def is_keras_model(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in (".tlt", ".hdf5", ".h5")


# ---------------------------------------------------------------------------------------------
# small artifacts


def save_ckzip(path: str, meta: dict) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = path + ".tmp-emu"
    with zipfile.ZipFile(tmp, "w") as zf:
        zf.writestr("checkpoint", f'model_checkpoint_path: "model.ckpt-{meta.get("epoch", 0)}"\n')
        zf.writestr("emulator_state.json", json.dumps(meta, sort_keys=True))
    os.replace(tmp, path)


def load_ckzip(path: str) -> dict:
    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read("emulator_state.json").decode())
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise TaskFailed(f"DataLossError: unable to restore checkpoint {path}: {exc}") from None


def save_tensorfile(path: str, meta: dict) -> None:
    _write_bytes(path, TENSORFILE_MARKER + json.dumps(meta, sort_keys=True).encode())


def load_tensorfile(path: str) -> dict:
    data = _read_bytes(path)
    if not data.startswith(TENSORFILE_MARKER):
        raise TaskFailed(f"ValueError: {path} is not a calibration tensorfile")
    return json.loads(data[len(TENSORFILE_MARKER):].decode())


def save_cal_cache(path: str, meta: dict) -> None:
    lines = [CALCACHE_MARKER.decode().strip()]
    for i, name in enumerate(meta.get("tensors", ["Input"])):
        lines.append(f"{name}: 3c{(int(meta.get('seed', 0)) + i) % 0xFFFFFF:06x}")
    lines.append("#meta " + json.dumps(meta, sort_keys=True))
    _write_bytes(path, ("\n".join(lines) + "\n").encode())


def load_cal_cache(path: str) -> dict:
    data = _read_bytes(path)
    if not data.startswith(CALCACHE_MARKER):
        raise TaskFailed(f"[TensorRT] ERROR: calibration cache {path} is invalid")
    return {}
