"""Reading a YAML document a user wrote (a config, YOLO's data.yaml, a run's config.yaml) without surprises.

PyYAML's safe loader is safe against code, not against mistakes and bombs. `read` refuses, with one line naming
the file and line: a document past MAX_BYTES; a control character (a pasted terminal colour code, NUL, BEL);
nesting past MAX_DEPTH; aliases that expand past MAX_VALUES values (an alias bomb); a duplicate key in one mapping
(YAML keeps the last silently); an integer too long for Python to read. What it returns is the composed node
(for line numbers) and the data.
"""

from __future__ import annotations

from typing import Any

import yaml

from tlt_pipe.errors import ConfigError
from tlt_pipe.regular_file import SMALL_FILE

MAX_BYTES = SMALL_FILE  # a config is a few KB
MAX_DEPTH = 64
MAX_VALUES = 100_000


def read(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """(node, data) of a YAML document; ConfigError naming source:line for what it refuses."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{source}: {len(text):,} characters: too large for a YAML file tltpipe reads "
                          f"(at most {MAX_BYTES:,})")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.reader.ReaderError as exc:
        line = text[:exc.position].count("\n") + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise ConfigError(f"{source}:{line}: a control character ({char!r}) YAML does not allow; remove it "
                          "(a pasted terminal colour code?)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(f"{source}{f':{mark.line + 1}' if mark else ''}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {short(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read") from None
    if node is None:
        return None, None
    _check(node, source)
    try:
        data = yaml.SafeLoader("").construct_document(node)
    except yaml.MarkedYAMLError as exc:  # e.g. a tag the safe loader does not construct (`!x`, `=`)
        mark = exc.problem_mark
        raise ConfigError(f"{source}{f':{mark.line + 1}' if mark else ''}: invalid YAML: {short(exc.problem)}") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{source}: a value YAML cannot read: {short(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read") from None
    return node, data


def _check(root: yaml.Node, source: str) -> None:
    """Depth, expanded size (aliases counted where they are used) and duplicate keys, without expanding aliases."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{source}:{node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
        children = _children(node)
        if done:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_VALUES:
                raise ConfigError(f"{source}:{node.start_mark.line + 1}: expands to more than {MAX_VALUES:,} values "
                                  "(YAML aliases repeating each other?)")
            continue
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.MappingNode):
            _no_duplicates(node, source)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _no_duplicates(node: yaml.MappingNode, source: str) -> None:
    seen: dict[str, int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
            continue
        line = key.start_mark.line + 1
        if key.value in seen:
            raise ConfigError(f"{source}:{line}: duplicate key {short(key.value)!r} (also on line {seen[key.value]}); "
                              "YAML would keep only the last")
        seen[key.value] = line


def short(value: Any, limit: int = 120) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit] + "..."
