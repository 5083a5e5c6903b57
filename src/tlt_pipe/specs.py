"""Rendering TAO spec files: a Jinja environment with protobuf-text-safe filters, then validation.

A rendered spec is parsed with google.protobuf.text_format against its toolkit's messages (spec_schema),
spec_overrides are applied field by field, the network's loader checks run, and the canonical
text is what gets written. A bad field fails here, before any container starts.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import jinja2
from google.protobuf import text_encoding, text_format
from google.protobuf.descriptor import FieldDescriptor

from tlt_pipe import yamldoc
from tlt_pipe.cache import cache_home
from tlt_pipe.errors import SpecError
from tlt_pipe.spec_schema import FLOAT32_MAX, message_class


def pb_string(value: Any) -> str:
    """A protobuf text-format string literal: quoted and escaped (quotes, backslashes, newlines)."""
    return '"' + text_encoding.CEscape(str(value), as_utf8=True) + '"'


def pb_bool(value: Any) -> str:
    return "true" if value else "false"


def pb_float(value: Any) -> str:
    number = float(value)
    if not math.isfinite(number):
        raise SpecError(f"cannot write {value!r} into a spec: not a finite number")
    return repr(number)


def _template_root():
    return resources.files("tlt_pipe") / "specs_templates"


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates under the user's cache, keyed by each template's source, so an edited template
    is compiled again. Used only in a folder that only this user can write (a cache entry is loaded as
    code); a cache that cannot be used or written costs a compile per run, never the run."""

    def __init__(self):
        folder = cache_home() / "templates"
        super().__init__(str(folder))
        self.usable = _private_folder(folder)

    def load_bytecode(self, bucket) -> None:
        if self.usable:
            try:
                super().load_bytecode(bucket)
            except Exception:  # a damaged entry is compiled again
                bucket.reset()

    def dump_bytecode(self, bucket) -> None:
        if self.usable:
            try:
                super().dump_bytecode(bucket)
            except OSError:
                self.usable = False


def _private_folder(folder) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = folder.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        bytecode_cache=_TemplateCache(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(pbstr=pb_string, pbbool=pb_bool, pbfloat=pb_float)
    return env


def _load_template(name: str) -> str:
    path = _template_root().joinpath(*name.split("/"))
    if not path.is_file():
        raise jinja2.TemplateNotFound(name)
    return path.read_text(encoding="utf-8")


_ENV = _environment()


def render_template(name: str, context: Mapping[str, Any]) -> str:
    """Render one template (e.g. 'ssd/train.txt.j2'); a missing variable is an error, not an empty string."""
    try:
        return _ENV.get_template(name).render(**context)
    except jinja2.UndefinedError as exc:
        raise SpecError(f"{name}: {exc.message}") from None


def parse_spec(text: str, schema: str, kind: str, *, source: str):
    """Parse spec text into a toolkit schema's message of one spec kind (spec_schema); unknown or
    mistyped fields raise SpecError naming them."""
    try:
        return text_format.Parse(text, message_class(schema, kind)())
    except text_format.ParseError as exc:
        raise SpecError(f"{source}: {exc}") from None


def apply_overrides(spec, overrides: Mapping[str, Any], *, source: str) -> None:
    """Set dotted field paths (e.g. training_config.n_workers) on a parsed spec, checked by the schema."""
    for path, value in overrides.items():
        try:
            _set_path(spec, path.split("."), value)
        except _Nested as exc:
            raise SpecError(f"{source}.{path}.{exc.path}: {exc.reason}") from None
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            reason = str(exc.args[0]) if exc.args else type(exc).__name__
            raise SpecError(f"{source}.{path}: {reason}") from None


def _set_path(message, parts: list[str], value: Any) -> None:
    name, rest = parts[0], parts[1:]
    field = message.DESCRIPTOR.fields_by_name.get(name)
    if field is None:
        raise KeyError(f'{message.DESCRIPTOR.name} has no field named "{name}"')
    repeated = _is_repeated(field)
    if rest:
        if field.type != FieldDescriptor.TYPE_MESSAGE or repeated:
            raise ValueError(f'"{name}" is not a message field, cannot go into ".{rest[0]}"')
        _set_path(getattr(message, name), rest, value)
        return
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
        _set_map(getattr(message, name), field.message_type.fields_by_name["value"], value, name)
        return
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if repeated:
            container = getattr(message, name)
            del container[:]
            for item in value if isinstance(value, list) else [value]:
                _merge_dict(container.add(), _expect_mapping(item, name))
        else:
            getattr(message, name).SetInParent()
            _merge_dict(getattr(message, name), _expect_mapping(value, name))
        return
    if repeated:
        container = getattr(message, name)
        del container[:]
        container.extend(_scalar(field, item) for item in (value if isinstance(value, list) else [value]))
    else:
        setattr(message, name, _scalar(field, value))


def _set_map(container, value_field: FieldDescriptor, value: Any, name: str) -> None:
    """A proto map field: {key: value, ...} (or a list of {key, value} entries) replaces its content."""
    if isinstance(value, list) and all(isinstance(item, Mapping) and set(item) == {"key", "value"} for item in value):
        value = {item["key"]: item["value"] for item in value}
    items = _expect_mapping(value, name)
    container.clear()
    for key, item in items.items():
        if not isinstance(key, str):
            raise TypeError(f'"{name}" keys are strings, got {key!r}')
        if value_field.type == FieldDescriptor.TYPE_MESSAGE:
            _below(key, _merge_dict, container[key], _expect_mapping(item, f"{name}.{key}"))
        else:
            _below(key, lambda k=key, v=item: container.__setitem__(k, _scalar(value_field, v)))


def _is_repeated(field: FieldDescriptor) -> bool:
    if hasattr(field, "is_repeated"):  # protobuf >= 6 deprecates and then drops .label
        return bool(field.is_repeated)
    return field.label == FieldDescriptor.LABEL_REPEATED


class _Nested(Exception):
    """A bad value below an override's key: the path under it and the reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(path, reason)
        self.path, self.reason = path, reason


def _below(key: str, function, *args) -> None:
    """Run one step under `key`; an error from it names the path below the override's key."""
    try:
        function(*args)
    except _Nested as exc:
        raise _Nested(f"{key}.{exc.path}", exc.reason) from None
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise _Nested(key, str(exc.args[0]) if exc.args else type(exc).__name__) from None


def _merge_dict(message, data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        _below(str(key), _set_path, message, [key], value)


def _expect_mapping(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f'"{name}" is a message: give a mapping of its fields, got {value!r}')
    return value


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_ENUM:
        names = field.enum_type.values_by_name
        if not isinstance(value, str) or value not in names:
            raise ValueError(f"{value!r} is not one of {', '.join(names)}")
        return names[value].number
    if field.type == FieldDescriptor.TYPE_BOOL and not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    if field.type == FieldDescriptor.TYPE_STRING and not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        largest = FLOAT32_MAX if field.type == FieldDescriptor.TYPE_FLOAT else sys.float_info.max
        if isinstance(value, float) and not math.isfinite(value) or abs(value) > largest:
            raise ValueError(f"expected a finite number of magnitude at most {largest:.4g}, "
                             f"got {yamldoc.short(value, 40)}")
        return float(value)
    if field.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32,
                          FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {value!r}")
    return value


def build_spec(
    template: str,
    context: Mapping[str, Any],
    *,
    schema: str,
    kind: str,
    overrides: Mapping[str, Any] | None = None,
    check: Callable[[Any], list[str]] | None = None,
    source: str,
) -> str:
    """Render, parse, override, check: the final spec text, or SpecError naming the field."""
    spec = parse_spec(render_template(template, context), schema, kind, source=source)
    apply_overrides(spec, overrides or {}, source=f"spec_overrides.{source}")
    problems = check(spec) if check else []
    if problems:
        raise SpecError(f"{source}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    header = f"# Rendered by tltpipe from specs_templates/{template}\n"
    return header + text_format.MessageToString(spec, as_utf8=True)
