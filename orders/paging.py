"""Paging over a count known beforehand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.paginator import Paginator


class CountedPaginator(Paginator):
    """A Paginator whose count comes from `count_of()` (a tally) instead of counting the
    object list: the pages themselves are still sliced from the list."""

    def __init__(self, object_list: Any, per_page: int, *, count_of: Callable[[], int], **kw: Any):
        super().__init__(object_list, per_page, **kw)
        self._count_of = count_of

    @property
    def count(self) -> int:  # type: ignore[override]
        if not hasattr(self, "_count"):
            self._count = self._count_of()
        return self._count
