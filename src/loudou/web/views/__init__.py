"""Views by page: each module holds one page's views and its `urlpatterns`."""
