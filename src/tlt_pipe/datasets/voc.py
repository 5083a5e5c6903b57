"""Pascal VOC XML: reading (1-based -> 0-based) and writing (0-based -> 1-based).

Read: `Annotations/*.xml` with images in `JPEGImages/` (or `images/`, or next to the XML),
one file per image, `<object><name/><difficult/><bndbox><xmin/>...</bndbox></object>`.
Every coordinate has 1 subtracted, as the PyTorch SSD loader does. `difficult` becomes a
non-zero KITTI occlusion (TAO's meaning of "difficult"). Parsing keeps line numbers so a
bad object is reported as file:line. defusedxml parses (no entity expansion, no external
resources, whatever the interpreter's expat); an annotation declaring an encoding expat does not
read (GBK, GB2312, Big5) is decoded first, and one Python does not know is reported by file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.sax import ContentHandler, SAXParseException
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.expatreader import create_parser

from tlt_pipe.datasets import discover
from tlt_pipe.datasets.context import SourceContext
from tlt_pipe.datasets.naming import output_stem
from tlt_pipe.datasets.records import (
    BAD_FILE,
    IMAGE_WITHOUT_LABEL,
    MALFORMED,
    MISSING_IMAGE,
    NON_NUMERIC,
    SAME_STEM,
    Issue,
    Item,
    Obj,
    Problem,
    Skip,
    finite_number,
)


@dataclass
class _Node:
    tag: str
    line: int
    text: str = ""
    children: list[_Node] = field(default_factory=list)

    def child(self, tag: str) -> _Node | None:
        return next((c for c in self.children if c.tag.lower() == tag), None)

    def child_text(self, tag: str) -> str | None:
        node = self.child(tag)
        return node.text.strip() if node is not None else None


class _Builder(ContentHandler):
    """The element tree of one annotation, with each element's line."""

    def __init__(self) -> None:
        super().__init__()
        self.root = _Node("", 0)
        self._stack = [self.root]
        self._texts: list[list[str]] = [[]]

    def startElement(self, name, attrs):  # noqa: N802 - SAX's names
        node = _Node(name, self._locator.getLineNumber() if self._locator else 0)
        self._stack[-1].children.append(node)
        self._stack.append(node)
        self._texts.append([])

    def endElement(self, name):  # noqa: N802
        self._stack.pop().text = "".join(self._texts.pop())

    def characters(self, content):
        self._texts[-1].append(content)


# Encodings expat reads itself; any other declared one (GBK, GB2312, Big5 in Chinese datasets) is decoded here.
_EXPAT_ENCODINGS = {"utf-8", "utf8", "utf-16", "utf16", "iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii"}
_DECLARED = re.compile(rb"""^(\s*<\?xml[^>]*?encoding\s*=\s*["'])([A-Za-z0-9._:-]+)(["'])""")


def _as_expat_reads(data: bytes) -> bytes:
    """The document in an encoding expat reads: re-encoded as UTF-8 when it declares another (ValueError naming
    the encoding when Python does not know it or the bytes are not in it)."""
    declared = _DECLARED.match(data)
    if declared is None:
        return data
    encoding = declared.group(2).decode("ascii")
    if encoding.lower() in _EXPAT_ENCODINGS:
        return data
    try:
        text = data.decode(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid {encoding} text (byte {exc.start})") from None
    body = text.encode("utf-8")
    match = _DECLARED.match(body)
    return body[:match.start(2)] + b"utf-8" + body[match.end(2):] if match else body


def _parse_tree(data: bytes) -> _Node:
    """The tree, parsed by defusedxml (no entity expansion, no external resources)."""
    builder = _Builder()
    parser = create_parser()
    parser.setContentHandler(builder)
    parser.parse(io.BytesIO(_as_expat_reads(data)))
    return builder.root


def parse_voc(data: bytes) -> tuple[list[Obj], list[Problem]]:
    """Objects of one VOC annotation, in 0-based pixels."""
    try:
        root = _parse_tree(data)
    except SAXParseException as exc:
        return [], [Problem(exc.getLineNumber(), BAD_FILE, f"not valid XML: {exc.getMessage()}")]
    except DefusedXmlException as exc:
        return [], [Problem(1, BAD_FILE, f"refused: {type(exc).__name__} (entities and external references are not read)")]
    except ValueError as exc:
        return [], [Problem(1, BAD_FILE, str(exc))]
    objects: list[Obj] = []
    problems: list[Problem] = []
    stack = list(reversed(root.children))
    found: list[_Node] = []
    while stack:  # objects anywhere in the tree, in document order
        node = stack.pop()
        if node.tag.lower() == "object":
            found.append(node)
            continue
        stack.extend(reversed(node.children))
    for node in found:
        name = node.child_text("name")
        if not name:
            problems.append(Problem(node.line, MALFORMED, "object without a <name>"))
            continue
        box = node.child("bndbox")
        if box is None:
            problems.append(Problem(node.line, MALFORMED, f"object {name!r} without a <bndbox>"))
            continue
        coords = {}
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            text = box.child_text(tag)
            if text is None:
                problems.append(Problem(box.line, MALFORMED, f"object {name!r}: <bndbox> without <{tag}>"))
                break
            try:
                coords[tag] = finite_number(text)
            except ValueError:
                problems.append(Problem(box.line, NON_NUMERIC, f"object {name!r}: <{tag}> is {text!r}"))
                break
        if len(coords) < 4:
            continue
        difficult = node.child_text("difficult") or "0"
        try:
            occlusion = 1 if float(difficult) else 0
        except ValueError:
            occlusion = 0
        objects.append(
            Obj(
                name,
                coords["xmin"] - 1,
                coords["ymin"] - 1,
                coords["xmax"] - 1,
                coords["ymax"] - 1,
                line=node.line,
                occlusion=occlusion,
            )
        )
    return objects, problems


def _one_based(value: float, limit: int) -> int:
    return min(max(int(round(value)) + 1, 1), max(limit, 1))


def format_voc(filename: str, size: tuple[int, int], objects: list[tuple[str, float, float, float, float, int]]) -> str:
    """A VOC annotation for (class, x1, y1, x2, y2, difficult) boxes in 0-based pixels."""
    width, height = size
    lines = [
        "<annotation>",
        "  <folder>JPEGImages</folder>",
        f"  <filename>{escape(filename)}</filename>",
        f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
        "  <segmented>0</segmented>",
    ]
    for cls, x1, y1, x2, y2, difficult in objects:
        lines += [
            "  <object>",
            f"    <name>{escape(cls)}</name>",
            "    <pose>Unspecified</pose>",
            "    <truncated>0</truncated>",
            f"    <difficult>{1 if difficult else 0}</difficult>",
            "    <bndbox>",
            f"      <xmin>{_one_based(x1, width)}</xmin>",
            f"      <ymin>{_one_based(y1, height)}</ymin>",
            f"      <xmax>{_one_based(x2, width)}</xmax>",
            f"      <ymax>{_one_based(y2, height)}</ymax>",
            "    </bndbox>",
            "  </object>",
        ]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def scan(ctx: SourceContext) -> Iterator[Item | Issue | Skip]:
    src = ctx.src
    xml_dir = discover.child_dir(src, "Annotations", "annotations", "xml", "xmls") or src
    image_dir = discover.child_dir(src, "JPEGImages", "images", "imgs") or xml_dir
    xml_names = [n for n in discover.files(xml_dir) if n.lower().endswith(".xml")]
    images, extra = discover.images_by_stem(discover.files(image_dir))
    for name in extra:
        yield Skip(SAME_STEM, ctx.where(discover.rel(image_dir / name, src)))
    for name in xml_names:
        stem = name[:-4]
        xml_rel = discover.rel(xml_dir / name, src)
        image = images.pop(stem, None)
        if image is None:
            yield Issue(MISSING_IMAGE, ctx.where(xml_rel), f"no image {stem}.* in {discover.rel(image_dir, src) or '.'}")
            continue
        image_rel = discover.rel(image_dir / image, src)
        yield Item(image=image_rel, label=xml_rel, stem=output_stem(image_rel, stem))
    for stem in sorted(images):
        yield Skip(IMAGE_WITHOUT_LABEL, ctx.where(discover.rel(image_dir / images[stem], src)))


def load(ctx: SourceContext, item: Item, size: tuple[int, int]) -> tuple[list[Obj], list[Problem]]:
    with open(ctx.path(item.label), "rb") as handle:
        return parse_voc(handle.read())
