"""ASGI entry point; production uses WSGI (see docs/adr/0001-stack.md)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loudou.settings")
application = get_asgi_application()
