"""Frame-by-frame comparison of a master tar with its manifest's frame list.

The master's SHA-256 says *that* it changed; this says *how*, in the terms a witness can check
against the footage: which frame (index in the window and camera seq) is missing, out of order,
altered or added. It reads the tar itself, so it still works when someone holding the signing
key re-signed a manifest with the altered master's hash.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Mapping
from typing import Any

from cctv.contracts import sha256_hex
from evidence_store.bundle import MASTER

FRAME_MEMBER = re.compile(r"^frames/(\d+)_(\d+)\.jpg$")


def _tar_members(master: bytes) -> tuple[list[tuple[str, bytes]], list[str]]:
    members: list[tuple[str, bytes]] = []
    problems: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(master), mode="r:") as archive:
        for member in archive:
            if not member.isfile():
                problems.append(f"unexpected {member.type!r} member {member.name}")
                continue
            handle = archive.extractfile(member)
            members.append((member.name, handle.read() if handle is not None else b""))
    return members, problems


def _out_of_order(present: list[str], expected: Mapping[str, dict[str, Any]], order: list[str]) -> list[str]:
    """The first position where the master's frame order departs from the manifest's."""
    in_tar = list(dict.fromkeys(name for name in present if name in expected))  # a duplicate counts once
    found = set(in_tar)
    in_manifest = [name for name in order if name in found]
    moved = [(want, got) for want, got in zip(in_manifest, in_tar, strict=True) if want != got]
    if not moved:
        return []
    want, got = moved[0]
    return [
        f"frames out of order at index {expected[want]['index']}: expected seq {expected[want]['seq']} "
        f"found seq {expected[got]['seq']} ({len(moved)} frames out of place)"
    ]


def _listing_problems(frames: list[dict[str, Any]]) -> list[str]:
    """The manifest's own list must be consistent: position = index, member named after both."""
    return [
        f"manifest frame at position {position} is listed as {frame['member']}"
        for position, frame in enumerate(frames)
        if frame["index"] != position or frame["member"] != f"frames/{position:06d}_{frame['seq']}.jpg"
    ]


def _presence_problems(content: Mapping[str, bytes], frames: list[dict[str, Any]]) -> list[str]:
    expected = {frame["member"] for frame in frames}
    problems = [
        f"frame {frame['index']} (seq {frame['seq']}) missing"
        for frame in frames
        if frame["member"] not in content
    ]
    for name in content:
        if name not in expected:
            match = FRAME_MEMBER.match(name)
            claim = f" (claims frame {int(match[1])}, seq {match[2]})" if match else ""
            problems.append(f"extra member {name}{claim} not in the manifest")
    return problems


def _content_problems(content: Mapping[str, bytes], frames: list[dict[str, Any]]) -> list[str]:
    problems = []
    for frame in frames:
        image = content.get(frame["member"])
        if image is not None and (sha256_hex(image), len(image)) != (frame["sha256"], frame["size"]):
            problems.append(
                f"frame {frame['index']} (seq {frame['seq']}) sha256 mismatch: {sha256_hex(image)} "
                f"({len(image)} bytes), manifest {frame['sha256']} ({frame['size']} bytes)"
            )
    return problems


def frame_problems(master: bytes, frames: list[dict[str, Any]]) -> list[str]:
    """How the master's members differ from the manifest's frame list: count, order, content.

    Raises KeyError/TypeError only for a malformed frame list (the caller reports that).
    """
    try:
        members, problems = _tar_members(master)
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        return [f"{MASTER} cannot be read as a tar archive ({exc})"]
    content: dict[str, bytes] = {}
    for name, data in members:
        if name in content:
            problems.append(f"member {name} appears twice")
        content.setdefault(name, data)
    problems += _listing_problems(frames)
    problems += _presence_problems(content, frames)
    problems += _out_of_order(
        [name for name, _ in members], {f["member"]: f for f in frames}, [f["member"] for f in frames]
    )
    problems += _content_problems(content, frames)
    if len(members) != len(frames):
        problems.append(f"master holds {len(members)} frames, the manifest lists {len(frames)}")
    return problems
