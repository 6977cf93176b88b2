"""multipart/form-data parsing over a body already held in memory.

Starlette needs python-multipart for forms and the project does not ship it; Bot API uploads are
capped at 50 MB, so reading the body once and slicing it with ``bytes.find`` is simple and fast.
"""

from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

CRLF = b"\r\n"


class MultipartError(ValueError):
    """The body does not follow RFC 7578."""


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def header_params(header_name: str, value: str) -> Message:
    """Lets the stdlib handle quoting and RFC 2231 parameters (``filename*=``)."""
    message = Message()
    message[header_name] = value
    return message


def boundary_of(content_type: str) -> bytes:
    boundary = header_params("content-type", content_type).get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise MultipartError("no boundary in Content-Type")
    return boundary.encode("latin-1")


def parse_multipart(body: bytes, boundary: bytes) -> list[Part]:
    delimiter = b"--" + boundary
    start = body.find(delimiter)
    if start < 0:
        raise MultipartError("boundary not found")
    position = start + len(delimiter)
    parts: list[Part] = []
    while not body.startswith(b"--", position):
        line_end = body.find(CRLF, position)
        if line_end < 0:
            raise MultipartError("truncated body")
        header_start = line_end + 2
        header_end = body.find(CRLF + CRLF, header_start - 2)
        if header_end < 0:
            raise MultipartError("part without headers end")
        data_start = header_end + 4
        data_end = body.find(CRLF + delimiter, data_start)
        if data_end < 0:
            raise MultipartError("part without closing boundary")
        headers = body[header_start:header_end].decode("utf-8", "replace")
        parts.append(_part(headers, body[data_start:data_end]))
        position = data_end + 2 + len(delimiter)
    return parts


def _part(raw_headers: str, data: bytes) -> Part:
    headers = HeaderParser().parsestr(raw_headers)
    name = headers.get_param("name", header="content-disposition")
    if not isinstance(name, str):
        raise MultipartError("part without a name")
    return Part(
        name=name,
        filename=headers.get_filename(),
        content_type=headers.get_content_type() if "content-type" in headers else None,
        data=data,
    )
