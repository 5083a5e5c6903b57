"""tltpipe's spec schema tables for TAO 4.0 and 5.x, generated from NVIDIA's own messages.

    python -m tests.reference.schema_table          # rewrite src/tlt_pipe/schemas/tao-*.json
    python -m tests.reference.schema_table --check  # exit 1 when the committed tables differ

The tables are tltpipe's own data: for each spec kind, the root message and every message and enum
reachable from it, as field name, type, label and oneof. tltpipe builds its pre-flight parser from
them (tlt_pipe.spec_schema); tests/conformance checks that they equal what this module derives.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor

from tests.reference import protos, wheels

OUT = Path(__file__).resolve().parents[2] / "src" / "tlt_pipe" / "schemas"

_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: "double", FieldDescriptor.TYPE_FLOAT: "float", FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64", FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_BOOL: "bool", FieldDescriptor.TYPE_STRING: "string", FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_SINT32: "sint32", FieldDescriptor.TYPE_SINT64: "sint64",
}


def _is_map(field) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _type(field, messages: list, enums: list) -> str:
    if _is_map(field):
        key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        return f"map<{_type(key, messages, enums)},{_type(value, messages, enums)}>"
    if field.enum_type is not None:
        enums.append(field.enum_type)
        return f"enum:{field.enum_type.full_name}"
    if field.message_type is not None:
        messages.append(field.message_type)
        return field.message_type.full_name
    return _SCALARS[field.type]


def kind_table(version: str, kind: str) -> dict:
    """{"root": name, "messages": {name: [[field, type, label, oneof], ...]}, "enums": {name: [[value, n]]}}"""
    pending = [protos.descriptor(version, kind)]
    messages: dict[str, list] = {}
    enums: dict[str, list] = {}
    while pending:
        message = pending.pop(0)
        if message.full_name in messages:
            continue
        found_messages: list = []
        found_enums: list = []
        fields = []
        for field in message.fields:
            oneof = field.containing_oneof.name if field.containing_oneof is not None else None
            label = "repeated" if field.is_repeated and not _is_map(field) else ""
            fields.append([field.name, _type(field, found_messages, found_enums), label, oneof])
        messages[message.full_name] = fields
        pending.extend(found_messages)
        for enum in found_enums:
            enums[enum.full_name] = [[value.name, value.number] for value in enum.values]
    return {"root": protos.ROOTS[kind][1], "messages": dict(sorted(messages.items())),
            "enums": dict(sorted(enums.items()))}


def version_table(version: str) -> dict:
    wheel, _ = protos.SOURCES[version]
    return {"schema": version, "derived_from": f"{wheel.project}=={wheel.version}",
            "kinds": {kind: kind_table(version, kind) for kind in protos.ROOTS}}


def render(version: str) -> str:
    return json.dumps(version_table(version), indent=1, sort_keys=False) + "\n"


def path_for(version: str) -> Path:
    return OUT / f"tao-{version}.json"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    try:
        for version in protos.SOURCES:
            text = render(version)
            target = path_for(version)
            if check:
                if not target.is_file() or target.read_text(encoding="utf-8") != text:
                    stale.append(str(target))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
                print(target)
    except wheels.ReferenceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if stale:
        print("out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
