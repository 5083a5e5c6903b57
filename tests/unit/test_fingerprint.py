"""Folder fingerprints: the digest is a documented function of the tree, so a manifest written by an
earlier tltpipe still says "up to date" for an unchanged dataset."""

from __future__ import annotations

import hashlib
import os

import pytest

from tlt_pipe.fingerprint import tree_fingerprint, tree_fingerprints


def _reference(root) -> str:
    """The documented digest, computed the plain way: per folder, its files' "path\\0size\\0mtime_ns\\n"
    in name order, then its subfolders in name order; symlinked folders are not entered, and a symlink
    that cannot be followed counts as itself."""
    digest = hashlib.sha256()

    def walk(top: str, prefix: str) -> None:
        names = sorted(os.listdir(top))
        folders = []
        for name in names:
            path = os.path.join(top, name)
            if os.path.isdir(path):
                folders.append(name)
            else:
                st = os.stat(path) if os.path.exists(path) else os.lstat(path)  # a link that cannot be followed
                digest.update(f"{prefix}{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        for name in folders:
            if not os.path.islink(os.path.join(top, name)):
                walk(os.path.join(top, name), f"{prefix}{name}/")

    walk(str(root), "")
    return digest.hexdigest()


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "data"
    (root / "images" / "deep").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "empty").mkdir()
    for i in range(30):
        (root / "images" / f"{i:03d}.jpg").write_bytes(b"x" * i)
        (root / "labels" / f"{i:03d}.txt").write_text(f"line {i}\n")
    (root / "images" / "deep" / "z.png").write_bytes(b"png")
    (root / "README").write_text("top-level file\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big.bin").write_bytes(b"o" * 100)
    (root / "linked_folder").symlink_to(outside)  # not entered
    (root / "linked_file.bin").symlink_to(outside / "big.bin")  # followed: the target's size
    return root


def test_the_digest_is_the_documented_function_of_the_tree(tree):
    assert tree_fingerprint(tree) == _reference(tree)


def test_a_folder_of_more_files_than_one_batch_gives_the_same_digest(tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(5000):  # more than one batch of stats
        (root / f"{i:05d}.txt").write_bytes(b"")
    (root / "sub").mkdir()
    (root / "sub" / "a").write_bytes(b"a")
    assert tree_fingerprint(root) == _reference(root)


def test_any_change_a_skip_must_notice_changes_the_digest(tree):
    before = tree_fingerprint(tree)
    (tree / "labels" / "007.txt").write_text("line 7, edited\n")
    edited = tree_fingerprint(tree)
    assert edited != before
    (tree / "images" / "deep" / "new.png").write_bytes(b"")
    added = tree_fingerprint(tree)
    assert added != edited
    (tree / "images" / "000.jpg").rename(tree / "images" / "000b.jpg")
    assert tree_fingerprint(tree) != added


def test_a_missing_or_unlistable_root_gives_the_empty_digest(tmp_path):
    assert tree_fingerprint(tmp_path / "absent") == hashlib.sha256().hexdigest()


def test_side_by_side_walks_give_the_same_digests(tree, tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    (other / "f").write_text("f")
    monkeypatch.setattr("tlt_pipe.fingerprint.os.cpu_count", lambda: 2)
    assert tree_fingerprints([tree, other]) == {str(tree): _reference(tree), str(other): _reference(other)}


def test_links_that_cannot_be_followed_count_as_themselves_not_as_an_error_nor_a_silent_skip(tree, tmp_path):
    (tree / "images" / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (tree / "labels" / "loop.txt").symlink_to(tree / "labels" / "loop.txt")
    before = tree_fingerprint(tree)
    assert before == _reference(tree)
    assert tree_fingerprints([tree, tree / "labels"]) == {str(tree): before,
                                                          str(tree / "labels"): _reference(tree / "labels")}
    (tmp_path / "nowhere.jpg").write_bytes(b"now there")  # the link now leads to a file
    assert tree_fingerprint(tree) != before


def test_a_file_name_that_is_not_utf8_is_fingerprinted_by_its_bytes(tree):
    with open(os.path.join(os.fsencode(tree / "labels"), b"\xff\xfe.txt"), "wb") as handle:
        handle.write(b"x")
    assert tree_fingerprint(tree) == _reference(tree)
