"""The REST API under /api/v1/ (django-ninja) and the personal API tokens it accepts."""
