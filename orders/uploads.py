"""The upload size limit, applied while the request body streams in.

Django keeps an upload in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE and in a temporary file
beyond it, so a size check in a form runs only after the whole file was stored. This handler
runs first (settings.FILE_UPLOAD_HANDLERS): it drops a file the moment it passes
IMPORT_MAX_BYTES, or before its first byte when the request's Content-Length already says so,
so no more than the limit is ever kept. The rest of the form (the CSRF token) is still read,
and the form says what happened with the sizes (see `rejected_upload`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest

# What a multipart form may add around the file (boundaries, part headers, the CSRF token and
# other small fields): a request longer than the limit by more than this carries a file over it.
FORM_OVERHEAD_BYTES = 64 * 1024
_REJECTED = "_rejected_uploads"


@dataclass(frozen=True)
class RejectedUpload:
    """A file dropped for its size. `size` is the request's length (the file plus a few hundred
    bytes of form), or None when the client sent no Content-Length."""

    file_name: str
    size: int | None
    limit: int


def rejected_upload(request: HttpRequest, field_name: str) -> RejectedUpload | None:
    """The file of `field_name` that SizeLimitUploadHandler dropped, if it dropped one."""
    return getattr(request, _REJECTED, {}).get(field_name)


class SizeLimitUploadHandler(FileUploadHandler):
    """Drops any uploaded file larger than settings.IMPORT_MAX_BYTES (the only uploads are the
    admin's CSV imports) before the next handlers store more than that of it."""

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: bytes,
        encoding: str | None = None,
    ) -> None:
        self.request_length = content_length or None
        self.limit = settings.IMPORT_MAX_BYTES

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        self.received = 0
        if self.request_length and self.request_length > self.limit + FORM_OVERHEAD_BYTES:
            self._reject()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self._reject()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) makes the file

    def _reject(self) -> None:
        if self.request is not None:
            rejected = getattr(self.request, _REJECTED, {})
            rejected[self.field_name] = RejectedUpload(
                self.file_name or "", self.request_length, self.limit
            )
            setattr(self.request, _REJECTED, rejected)
        raise SkipFile
