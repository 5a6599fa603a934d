"""Reading a posted form: urlencoded (every page's forms) up to a size, or multipart (a file)."""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qs

from fastapi import Request
from starlette.datastructures import UploadFile

__all__ = ["MAX_FORM_BYTES", "FormTooLarge", "read_form", "read_upload"]

MAX_FORM_BYTES: Final = 16 * 1024  # the longest form (a comment of 1,000 characters) fits easily


class FormTooLarge(Exception):
    pass


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded form, read up to ``MAX_FORM_BYTES`` (more raises ``FormTooLarge``)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge
    text = body.decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


async def read_upload(request: Request, field: str, max_bytes: int) -> tuple[dict[str, str], bytes]:
    """A multipart form with one file: its text fields and the file's bytes (at most
    ``max_bytes``, else ``FormTooLarge``; a missing file reads as empty)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + MAX_FORM_BYTES:
        raise FormTooLarge
    try:
        form = await request.form(max_files=1, max_fields=20, max_part_size=max_bytes)
    except Exception as exc:  # starlette's MultiPartException, or a body that is not multipart
        raise FormTooLarge from exc
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    upload = form.get(field)
    data = b""
    if isinstance(upload, UploadFile):
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise FormTooLarge
    await form.close()
    return fields, data
