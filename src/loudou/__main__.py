"""The `loudou` console script: Django's management commands under one name."""

import os
import sys


def main() -> None:
    """Run `loudou <command>` as a Django management command."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loudou.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    try:
        execute_from_command_line([os.path.basename(sys.argv[0]) or "loudou", *sys.argv[1:]])
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"loudou: configuration error: {exc}\n")
        sys.exit(2)
    except DatabaseError as exc:
        # A database that cannot take the write is the operator's to fix, not a bug: one
        # sentence saying what to do, not a traceback (every command's transaction rolled back).
        from loudou.core.database import database_problem

        problem = database_problem(exc)
        if problem is None:
            raise
        sys.stderr.write(f"loudou: {problem}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
