"""The complete dump: every row of every loudou table as JSON lines, with a manifest and a README,
and its exact restore into an empty database (`loudou export all DIR`, `loudou import all DIR`).

Ids are written as they are, so foreign keys keep pointing right; content types and permissions,
whose ids differ between databases, are written by natural key and looked up again on load. A dump
is a backup: it holds the users' password hashes. The format is in docs/backup-and-dump.md.

`tables` says what a dump holds, `write` writes one, `restore` loads one back.
"""

from loudou.interop.dump.restore import load_all, read_manifest, verify_files
from loudou.interop.dump.tables import (
    MANIFEST,
    DumpRefused,
    Table,
    dump_tables,
    dumped_models,
    load_order,
)
from loudou.interop.dump.write import dump_all, readme_text

__all__ = [
    "MANIFEST",
    "DumpRefused",
    "Table",
    "dump_all",
    "dump_tables",
    "dumped_models",
    "load_all",
    "load_order",
    "read_manifest",
    "readme_text",
    "verify_files",
]
