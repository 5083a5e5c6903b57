"""Pascal VOC XML: reading (1-based -> 0-based) and writing (0-based -> 1-based).

Read: `Annotations/*.xml` with images in `JPEGImages/` (or `images/`, or next to the XML),
one file per image, `<object><name/><difficult/><bndbox><xmin/>...</bndbox></object>`.
Every coordinate has 1 subtracted, as the PyTorch SSD loader does. `difficult` becomes a
non-zero KITTI occlusion (TAO's meaning of "difficult"). Parsing keeps line numbers so a
bad object is reported as file:line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from xml.parsers import expat
from xml.sax.saxutils import escape

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


def _parse_tree(data: bytes) -> _Node:
    parser = expat.ParserCreate()
    root = _Node("", 0)
    stack = [root]
    texts: list[list[str]] = [[]]

    def start(tag, attrs):
        node = _Node(tag, parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)
        texts.append([])

    def end(tag):
        node = stack.pop()
        node.text = "".join(texts.pop())

    def chars(data):
        texts[-1].append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.Parse(data, True)
    return root


def parse_voc(data: bytes) -> tuple[list[Obj], list[Problem]]:
    """Objects of one VOC annotation, in 0-based pixels."""
    try:
        root = _parse_tree(data)
    except expat.ExpatError as exc:
        return [], [Problem(exc.lineno, BAD_FILE, f"not valid XML: {expat.ErrorString(exc.code)}")]
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
