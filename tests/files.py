"""Files for the attachment tests, made in code: images drawn with Pillow, a PDF written by hand."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def image_bytes(
    width: int = 64, height: int = 48, *, fmt: str = "PNG", exif_gps: bool = False, **options
) -> bytes:
    """A picture of `width` x `height` pixels in `fmt`; with `exif_gps`, EXIF metadata holding
    a camera make and a GPS position (what must not reach the model or the page)."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    for x in range(0, width, 4):
        image.putpixel((x, x * height // max(width, 1)), (10, 200, 10))
    if exif_gps:
        exif = Image.Exif()
        exif[0x010F] = "SecretCamera"  # Make
        exif[0x8825] = {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 41.0)}  # GPS
        options["exif"] = exif.tobytes()
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG of a few hundred bytes whose header claims `width` x `height` pixels (its data is
    a single compressed row: the claim alone must be refused, before any decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    data = zlib.compress(b"\x00" * (width + 1))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def pdf_bytes(*lines: str) -> bytes:
    """A one-page PDF showing `lines` in Helvetica: the smallest file pypdf reads text from.

    Each object is written with its byte offset noted for the cross-reference table, as the
    PDF format wants; the text must be plain ASCII without parentheses or backslashes.
    """
    text = " ".join(f"({line}) Tj 0 -16 Td" for line in lines)
    stream = f"BT /F1 12 Tf 72 720 Td {text} ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
