"""CSV import pages in the admin: upload, preview (a dry run), confirm.

The preview runs the import with dry_run=True and shows its counts, first rows and errors; the
uploaded bytes wait in the session (not on disk) under a random token, and "Confirm import"
imports exactly those bytes, all or nothing, through the same orders.imports functions as the
management commands. Only staff with the add permission of what is imported, who may change
every order (procurement managers), may use a page.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from orders import csv_format, imports, permissions
from orders.uploads import RejectedUpload, rejected_upload


@dataclass(frozen=True)
class ImportKind:
    slug: str
    title: str
    permission: str
    importer: Callable[..., imports.ImportReport]
    file_format: csv_format.ImportFormat
    notes: str


IMPORT_KINDS = {
    kind.slug: kind
    for kind in (
        ImportKind(
            slug="orders",
            title="Import orders CSV",
            permission="orders.add_purchaseorder",
            importer=imports.orders_import,
            file_format=csv_format.ORDERS_IMPORT,
            notes="One row per order line; rows with the same po_number are lines of one "
            "order. quoted_on and delivery_date add a whole-order quote. Columns of an export "
            "that the tracker computes (lead days, slip...) are ignored. New vendors, GPU "
            "models and buyers (active Buyers without a password: they set one with Forgot "
            "password? on the login page) are created as needed.",
        ),
        ImportKind(
            slug="quotes",
            title="Import quotes CSV",
            permission="orders.add_deliveryquote",
            importer=imports.quotes_import,
            file_format=csv_format.QUOTES_IMPORT,
            notes="A vendor's re-quote sheet for existing POs. gpu_model aims a quote at that "
            "line of the order; empty means the whole order.",
        ),
        ImportKind(
            slug="prices",
            title="Import price sheet CSV",
            permission="orders.add_pricequote",
            importer=imports.prices_import,
            file_format=csv_format.PRICES_IMPORT,
            notes="A vendor's price sheet: a unit price per row, for a vendor and GPU model "
            "already recorded, on the day it was quoted.",
        ),
    )
}
# Errors listed on a page; a file with more says how many were left out.
SHOWN_ERRORS = 200


class CsvUploadForm(forms.Form):
    # Not required: an empty field and a file dropped for its size need different messages.
    file = forms.FileField(
        label="CSV file", help_text="UTF-8 (with or without BOM), comma-separated.", required=False
    )

    def __init__(self, *args: Any, rejected: RejectedUpload | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rejected = rejected

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = settings.IMPORT_MAX_BYTES
        if self.rejected is not None:
            # Dropped while it streamed in (orders.uploads): its size is the request's.
            raise forms.ValidationError(_too_large(self.rejected.size, limit))
        if not upload:
            raise forms.ValidationError("Choose a CSV file to upload.")
        if upload.size > limit:
            raise forms.ValidationError(_too_large(upload.size, limit))
        return upload


def _too_large(size: int | None, limit: int) -> str:
    shown = f"is {filesizeformat(size)}" if size else "is larger than that"
    return (
        f"The file {shown}; imports are limited to {filesizeformat(limit)} "
        "(IMPORT_MAX_BYTES). Split it into smaller files and import each one."
    )


class CsvImportAdminMixin:
    """Adds the import pages of the IMPORT_KINDS named in `csv_import_kinds` to a ModelAdmin,
    whose change list links to them (orders and quotes on the purchase orders, prices on the
    price quotes)."""

    admin_site: Any
    opts: Any
    csv_import_kinds: tuple[str, ...] = ()

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        urls = [
            path(
                f"import-{slug}/",
                self.admin_site.admin_view(self.csv_import_view),
                {"kind": slug},
                name=f"{prefix}_import_{slug}",
            )
            for slug in self.csv_import_kinds
        ]
        return urls + super().get_urls()

    def csv_import_view(self, request: HttpRequest, kind: str) -> HttpResponse:
        spec = IMPORT_KINDS[kind]
        # A file can add lines and quotes to any order, so only those who may change every
        # order import (procurement managers; orders.permissions).
        if not (
            request.user.has_perm(spec.permission)
            and permissions.can_change_every_order(request.user)
        ):
            raise PermissionDenied
        if request.method == "POST" and "token" in request.POST:
            return self._csv_import_confirm(request, spec)
        if request.method != "POST":
            return self._csv_render(
                request, spec, "admin/orders/import_form.html", form=CsvUploadForm()
            )
        form = CsvUploadForm(request.POST, request.FILES, rejected=rejected_upload(request, "file"))
        if not form.is_valid():
            return self._csv_render(request, spec, "admin/orders/import_form.html", form=form)
        upload = form.cleaned_data["file"]
        # Read as a stream (a large upload is a temporary file); only a file that passed the
        # preview, at most IMPORT_MAX_BYTES, is held to wait in the session.
        report = spec.importer(
            content=upload.chunks(), dry_run=True, user=request.user, filename=upload.name
        )
        # One waiting file per kind and session: a new upload replaces (or drops) the last.
        request.session.pop(_session_key(spec), None)
        token = None
        if report.ok:
            token = secrets.token_urlsafe(16)
            request.session[_session_key(spec)] = {
                "token": token,
                "filename": upload.name,
                "content": base64.b64encode(b"".join(upload.chunks())).decode("ascii"),
            }
        return self._csv_render(
            request,
            spec,
            "admin/orders/import_preview.html",
            report=report,
            filename=upload.name,
            token=token,
            form=CsvUploadForm(),
        )

    def _csv_import_confirm(self, request: HttpRequest, spec: ImportKind) -> HttpResponse:
        stashed = request.session.get(_session_key(spec))
        # Compared as bytes: compare_digest refuses str with non-ASCII characters.
        posted = request.POST["token"].encode()
        if not stashed or not secrets.compare_digest(stashed["token"].encode(), posted):
            messages.error(
                request,
                "This preview is no longer available (another upload replaced it, or the "
                "session ended): upload the file again.",
            )
            return HttpResponseRedirect(request.path)
        content = base64.b64decode(stashed["content"])
        report = spec.importer(
            content=content, dry_run=False, user=request.user, filename=stashed["filename"]
        )
        del request.session[_session_key(spec)]
        if not report.ok:
            # The database changed since the preview; show what is wrong now.
            return self._csv_render(
                request,
                spec,
                "admin/orders/import_preview.html",
                report=report,
                filename=stashed["filename"],
                token=None,
                form=CsvUploadForm(),
            )
        messages.success(request, f"Imported {stashed['filename']}: " + " ".join(report.summary()))
        info = self.opts.app_label, self.opts.model_name
        return HttpResponseRedirect(reverse("admin:{}_{}_changelist".format(*info)))

    def _csv_render(
        self, request: HttpRequest, spec: ImportKind, template: str, **context: Any
    ) -> TemplateResponse:
        report = context.get("report")
        errors = report.errors if report else []
        context |= {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": spec.title,
            "kind": spec,
            "max_bytes": settings.IMPORT_MAX_BYTES,
            "counts": [(what, n, report.unchanged.get(what)) for what, n in report.created.items()]
            if report
            else [],
            "errors": errors[:SHOWN_ERRORS],
            "errors_left_out": max(0, len(errors) - SHOWN_ERRORS),
        }
        return TemplateResponse(request, template, context)


def _session_key(spec: ImportKind) -> str:
    return f"csv_import_{spec.slug}"
