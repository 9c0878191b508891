"""loudou's import template as a file: an XLSX workbook with a sheet per kind of record (and a
README sheet), or one CSV file per sheet in a directory, headers in the user's language."""

from pathlib import Path

from django.utils.translation import gettext as _

from loudou.interop.formats.native import template_sheets


def template_xlsx(language: str) -> bytes:
    """The workbook: per sheet, the header row (bold, frozen), an example row and, on the README
    sheet, what each column takes."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    readme = book.active
    readme.title = "说明" if language.startswith("zh") else "README"
    readme.append([_("loudou import template")])
    readme["A1"].font = Font(bold=True, size=14)
    readme.append([_("Fill the sheets (keep the headers), then import the file with "
                     "`loudou import native FILE` or on the Import page. Row 2 of each sheet is an "
                     "example: replace or delete it.")])  # fmt: skip
    readme.append([])
    for name, headers, example, helps in template_sheets(language):
        sheet = book.create_sheet(name)
        sheet.append(headers)
        sheet.append(example)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for index, header in enumerate(headers, start=1):
            sheet.column_dimensions[sheet.cell(1, index).column_letter].width = max(
                12, min(40, len(header) * 2 + 4)
            )
        readme.append([name])
        readme.cell(readme.max_row, 1).font = Font(bold=True)
        for header, text in zip(headers, helps, strict=True):
            readme.append([header, text])
        readme.append([])
    readme.column_dimensions["A"].width = 24
    readme.column_dimensions["B"].width = 80
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_csv(language: str) -> dict[str, bytes]:
    """One CSV file per sheet (UTF-8 with BOM, so Excel opens the Chinese headers)."""
    import csv
    import io

    files = {}
    for name, headers, example, _helps in template_sheets(language):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(headers)
        writer.writerow(example)
        files[f"{name}.csv"] = ("\ufeff" + buffer.getvalue()).encode("utf-8")
    return files


def write_template(output: Path, language: str) -> list[Path]:
    """Write the template to `output`: a workbook when it ends in .xlsx, else CSV files into the
    directory `output`. Returns the files written."""
    if output.suffix.lower() == ".xlsx":
        output.write_bytes(template_xlsx(language))
        return [output]
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in template_csv(language).items():
        (output / name).write_bytes(data)
        written.append(output / name)
    return written
