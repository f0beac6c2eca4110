"""What a picture carries beside its pixels, measured from the file before Pillow reads it.

Opening a picture, Pillow keeps in memory everything a file carries beside its pixels: PNG
text chunks (tEXt, and zTXt and iTXt inflated, up to 64 MiB a picture), private PNG chunks,
JPEG comments and application segments (EXIF, XMP, ICC, Photoshop's, any APPn), WebP's ICCP,
EXIF and XMP chunks. It also parses EXIF's first directory (and an MPO's index) by reading
each tag's data from wherever its entry points, so 5,000 entries pointing at the same 60 kB
make a 70 kB JPEG cost 300 MB. None of that shows in the pixel count.

`measure` walks the file's own chunk or segment headers (PNG, JPEG and MPO, WebP), inflates
compressed PNG text and profiles only to count them (nothing inflated is kept, and it stops
past Pillow's own per-chunk limit), counts what parsing each EXIF or MPF directory reads, and
says how many bytes Pillow would hold. `image_limits.check_metadata` refuses the absurd and
counts the rest in the decode budget.

Pillow's `PngImagePlugin.MAX_TEXT_CHUNK` and `MAX_TEXT_MEMORY` are read here, never set:
they are process-wide, they let one picture keep 64 MiB of text, Pillow answers them with a
ValueError that reads like damage, and they bound neither ICC profiles, EXIF, JPEG nor WebP.
Measuring first gives the one sentence and the one count for every kind.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from PIL import PngImagePlugin

# The kinds of metadata counted, as a refusal names them (image_limits.py).
KINDS = ("text", "icc", "exif", "other")

# Bytes Pillow keeps in memory for one byte of a directory tag it decodes into Python values
# (a RATIONAL's 8 bytes become an IFDRational object, 35 bytes at the peak; a SHORT's 2 bytes
# an int in a tuple, 25), measured with tracemalloc; bytes and text stay about one to one.
_DECODED = 36
_TAG_UNITS = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8}
_BYTE_TYPES = (1, 2, 6, 7)
# The EXIF tags Pillow decodes while a picture is opened and prepared: the orientation, and the
# resolution a JPEG without JFIF density reads its dpi from. An MPO's index is decoded whole.
_EXIF_DECODED = frozenset({0x0112, 0x0128, 0x011A})
_EVERY_TAG = None

_READ_BLOCK = 1 << 16


@dataclass(frozen=True)
class Metadata:
    """Bytes Pillow would keep for a picture's metadata, by kind, as the file declares them."""

    text: int = 0  # PNG text (inflated), JPEG comments, XMP
    icc: int = 0  # colour profiles (inflated)
    exif: int = 0  # EXIF and MPO index blocks, and what parsing their directories reads
    other: int = 0  # other application blocks Pillow keeps: JPEG APPn, private PNG chunks
    # A kind with one compressed block that inflates past Pillow's per-chunk limit, which Pillow
    # would refuse as if the file were damaged; "" when there is none.
    oversized: str = ""
    complete: bool = True  # False when counting stopped early, past `stop_at`

    @property
    def held(self) -> int:
        return self.text + self.icc + self.exif + self.other

    @property
    def largest(self) -> str:
        """The kind that holds most: what a refusal names."""
        return self.oversized or max(KINDS, key=lambda kind: getattr(self, kind))


class _Tally:
    def __init__(self, stop_at: int) -> None:
        self.kinds = dict.fromkeys(KINDS, 0)
        self.oversized = ""
        self.stop_at = stop_at

    def add(self, kind: str, nbytes: int) -> None:
        self.kinds[kind] += max(0, nbytes)

    @property
    def going(self) -> bool:
        return not self.oversized and sum(self.kinds.values()) <= self.stop_at

    def result(self) -> Metadata:
        return Metadata(**self.kinds, oversized=self.oversized, complete=self.going)


def measure(file: BinaryIO, head: bytes, *, stop_at: int) -> Metadata:
    """What Pillow would keep of this file's metadata; the file is left at its start.

    `stop_at`: once this many bytes are counted the walk stops (the picture will be refused
    whatever else it carries), so a refusal costs no more than reading that far.
    """
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png(file, stop_at)
        if head.startswith(b"\xff\xd8"):
            return _jpeg(file, stop_at)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp(file, stop_at)
        return Metadata()
    finally:
        file.seek(0)


# --- PNG -----------------------------------------------------------------------------------


def _png(file: BinaryIO, stop_at: int) -> Metadata:
    tally = _Tally(stop_at)
    # Pillow inflates one zTXt, iTXt or iCCP chunk to at most this much, and refuses more.
    per_chunk = PngImagePlugin.MAX_TEXT_CHUNK
    file.seek(8)
    while tally.going:
        header = file.read(8)
        if len(header) < 8:
            break
        length, kind = struct.unpack(">I4s", header)
        start = file.tell()
        if kind == b"IEND":
            break
        # A chunk read here is under `stop_at` bytes, and let go of before the next is read.
        if kind == b"tEXt":
            tally.add("text", length)
            if length <= stop_at and file.read(22) == b"Raw profile type exif\0":
                # ImageMagick's hex EXIF: a PNG without eXIf gets its EXIF from this text.
                file.seek(start)
                tally.add("exif", _raw_profile_exif(file.read(length).partition(b"\0")[2]))
        elif kind in (b"zTXt", b"iTXt", b"iCCP"):
            text_kind = "icc" if kind == b"iCCP" else "text"
            tally.add(text_kind, length)
            if length > stop_at:
                break  # refused for its stored size alone
            data = file.read(length)
            inflated, value = _png_inflated(kind, data, per_chunk, keep=data.startswith(b"Raw profile type exif\0"))
            if inflated is None:
                tally.add(text_kind, per_chunk)
                tally.oversized = text_kind
                break
            tally.add(text_kind, inflated)
            if value:
                tally.add("exif", _raw_profile_exif(value))
        elif kind == b"eXIf":
            tally.add("exif", length)
            if length <= stop_at:
                tally.add("exif", directory_bytes(file.read(length), _EXIF_DECODED))
        elif kind[1:2].islower():  # a private chunk: Pillow keeps its data in `private_chunks`
            tally.add("other", length)
        file.seek(start + length + 4)  # past its data and checksum
    return tally.result()


def _png_inflated(kind: bytes, data: bytes, limit: int, *, keep: bool) -> tuple[int | None, bytes]:
    """The size a compressed PNG chunk inflates to, as Pillow reads it (None: over `limit`).

    Inflated in blocks and thrown away, except when `keep` (the value itself is needed).
    """
    key, _, rest = data.partition(b"\0")
    if kind == b"zTXt":
        if not rest or rest[0] != 0:
            return 0, b""  # no value (or an unknown method, which Pillow refuses as damage)
        stream = rest[1:]
    elif kind == b"iTXt":
        if len(rest) < 2 or rest[0] == 0 or rest[1] != 0:
            return 0, b""  # not compressed: already counted as it is stored
        parts = rest[2:].split(b"\0", 2)
        if len(parts) < 3:
            return 0, b""
        stream = parts[2]
    else:  # iCCP
        if len(rest) < 1 or rest[0] != 0:
            return 0, b""
        stream = rest[1:]
    inflater = zlib.decompressobj()
    total, kept = 0, []
    try:
        piece = inflater.decompress(stream, _READ_BLOCK)
        while piece:
            total += len(piece)
            if total > limit:
                return None, b""
            if keep:
                kept.append(piece)
            piece = inflater.decompress(inflater.unconsumed_tail, _READ_BLOCK)
    except zlib.error:
        return 0, b""  # Pillow keeps nothing of a broken stream
    return total, b"".join(kept)


def _raw_profile_exif(value: bytes) -> int:
    """What Pillow reads for a PNG's "Raw profile type exif" text: its lines, the hex, the tags."""
    # Pillow joins the lines after the third and reads them as hex; the same here, without
    # splitting the text into a string a line (which Pillow does: a pointer and a string each).
    lines = value.split(b"\n", 3)
    try:
        blob = bytes.fromhex(lines[3].replace(b"\n", b"").decode("latin-1")) if len(lines) > 3 else b""
    except ValueError:
        return 0
    return 8 * value.count(b"\n") + len(blob) + directory_bytes(blob, _EXIF_DECODED)


# --- JPEG ----------------------------------------------------------------------------------

_EXIF_HEADER = b"Exif\0\0"
_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\0"


def _jpeg(file: BinaryIO, stop_at: int) -> Metadata:
    """APPn and COM segments up to the first scan, where Pillow stops reading markers."""
    tally = _Tally(stop_at)
    exif, mpf = bytearray(), b""
    file.seek(2)
    while tally.going and len(exif) <= stop_at:
        byte = file.read(1)
        if byte != b"\xff":
            # Pillow skips stray bytes between segments, one at a time; here a block at a time.
            block = byte + file.read(_READ_BLOCK)
            if len(block) < 2:
                break
            found = block.find(b"\xff")
            if found >= 0:
                file.seek(found - len(block), 1)
            continue
        marker = file.read(1)
        while marker == b"\xff":
            marker = file.read(1)
        if not marker or marker in (b"\xda", b"\xd9"):  # start of scan, end of image
            break
        code = marker[0]
        if code == 0 or 0xD0 <= code <= 0xD7 or code == 0x01:
            continue  # markers without a length
        size = file.read(2)
        if len(size) < 2:
            break
        length = max(0, struct.unpack(">H", size)[0] - 2)
        start = file.tell()
        if 0xE0 <= code <= 0xEF or code == 0xFE:
            prefix = file.read(min(length, 32))
            if code == 0xFE or prefix.startswith(_XMP_HEADER):
                # Pillow keeps the segment, and an XMP's text once more on its own.
                tally.add("text", length * (2 if code != 0xFE else 1))
            elif code == 0xE2 and prefix.startswith(b"ICC_PROFILE\0"):
                tally.add("icc", 2 * length)  # the segments, and the profile joined from them
            elif code == 0xE1 and prefix.startswith(_EXIF_HEADER):
                # Pillow joins every EXIF segment into one block (copying it each time).
                tally.add("exif", length)
                file.seek(start)
                segment = file.read(length)
                exif += segment if not exif else segment[6:]
            elif code == 0xE2 and prefix.startswith(b"MPF\0"):
                tally.add("exif", 2 * length)
                file.seek(start)
                mpf = file.read(length)[4:]
            else:
                tally.add("other", length)
        file.seek(start + length)
    if exif:
        tally.add("exif", len(exif) + directory_bytes(bytes(exif), _EXIF_DECODED))
    if mpf:
        tally.add("exif", directory_bytes(mpf, _EVERY_TAG))
    return tally.result()


# --- WebP ----------------------------------------------------------------------------------


def _webp(file: BinaryIO, stop_at: int) -> Metadata:
    """The ICCP, EXIF and XMP chunks Pillow copies out of libwebp's demuxer."""
    tally = _Tally(stop_at)
    file.seek(12)
    while tally.going:
        header = file.read(8)
        if len(header) < 8:
            break
        kind, length = struct.unpack("<4sI", header)
        start = file.tell()
        if kind == b"ICCP":
            tally.add("icc", length)
        elif kind == b"XMP ":
            tally.add("text", length)
        elif kind == b"EXIF":
            tally.add("exif", length)
            if length <= stop_at:
                tally.add("exif", directory_bytes(file.read(length), _EXIF_DECODED))
        file.seek(start + length + (length & 1))
    return tally.result()


# --- EXIF and MPF directories ----------------------------------------------------------------


def directory_bytes(blob: bytes, decoded: frozenset[int] | None) -> int:
    """Bytes Pillow reads, and keeps, parsing the first directory of this TIFF-shaped block.

    Pillow's ImageFileDirectory_v2.load reads every tag's data from the offset its entry names,
    however many entries name the same bytes; it stops at the first tag whose data runs past
    the block. Tags in `decoded` (all of them when None) are also turned into Python values.
    """
    while blob.startswith(_EXIF_HEADER):
        blob = blob[6:]
    order = {b"II": "<", b"MM": ">"}.get(blob[:2])
    if order is None or len(blob) < 8:
        return 0
    big = struct.unpack(order + "H", blob[2:4])[0] == 43
    entry, count_format, inline = (20, "Q", 8) if big else (12, "L", 4)
    try:
        (offset,) = struct.unpack_from(order + ("Q" if big else "L"), blob, 8 if big else 4)
        (entries,) = struct.unpack_from(order + ("Q" if big else "H"), blob, offset)
    except struct.error:
        return 0
    position = offset + (8 if big else 2)
    sizes: dict[int, int] = {}
    for _ in range(min(entries, max(0, len(blob) - position) // entry)):
        tag, kind, count = struct.unpack_from(order + "HH" + count_format, blob, position)
        where = struct.unpack_from(order + count_format, blob, position + entry - inline)[0]
        position += entry
        unit = _TAG_UNITS.get(kind)
        if unit is None:
            continue
        size = count * unit
        if size > inline and where + size > len(blob):
            break  # Pillow's read fails here and it keeps no more tags
        if decoded is not None and tag not in decoded:
            weight = 1
        else:
            weight = 2 if kind in _BYTE_TYPES else 1 + _DECODED
        sizes[tag] = size * weight
    return sum(sizes.values())
