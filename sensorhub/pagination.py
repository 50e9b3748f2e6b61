from rest_framework.pagination import CursorPagination


class ViewOrderedCursorPagination(CursorPagination):
    """Cursor pagination (stable under inserts) ordered by the view's ``ordering``, which must be unique."""

    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)
