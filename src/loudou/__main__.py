"""The `loudou` console script: Django's management commands under one name."""

import os
import sys


def main() -> None:
    """Run `loudou <command>` as a Django management command."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loudou.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line([os.path.basename(sys.argv[0]) or "loudou", *sys.argv[1:]])
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"loudou: configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
