"""`partnercenter catalog|keys|artifacts ...`: the catalog document, key inventory, files."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

catalog_app = typer.Typer(
    help="Import, export and validate the catalog document.", no_args_is_help=True
)
keys_app = typer.Typer(help="The product key inventory.", no_args_is_help=True)
artifacts_app = typer.Typer(help="Downloadable files of software SKUs.", no_args_is_help=True)
tax_app = typer.Typer(help="Tax rates per market.", no_args_is_help=True)

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        err.print(f"[red]Cannot read {path}: {exc.strerror}[/red]")
        raise typer.Exit(2) from exc
    except UnicodeDecodeError as exc:
        err.print(f"[red]{path} is not UTF-8 text.[/red]")
        raise typer.Exit(2) from exc


def _print_document_errors(errors: list[dict[str, object]], path: Path) -> None:
    err.print(f"[red]{path}: {len(errors)} error(s); nothing was changed.[/red]")
    for e in errors:
        line = f"line {e['line']}: " if e.get("line") else ""
        where = f"{e['path']}: " if e.get("path") else ""
        err.print(f"  {line}{where}{e['message']}", markup=False, highlight=False, soft_wrap=True)


def _run_import(path: Path, *, dry_run: bool) -> None:
    from partnercenter.catalog import document
    from partnercenter.catalog.errors import CatalogDocumentInvalid
    from partnercenter.cli.main import _now, _session_factory, _settings
    from partnercenter.db import unit_of_work

    text = _read(path)
    with unit_of_work(_session_factory(_settings())) as session:
        try:
            report = document.import_text(
                session, text=text, filename=path.name, now=_now(), actor=None, dry_run=dry_run
            )
        except CatalogDocumentInvalid as exc:
            _print_document_errors(exc.errors, path)
            raise typer.Exit(1) from exc
        if dry_run:
            console.print(f"{path}: valid.")
            return
        session.commit()
    console.print(
        f"{report.changed} changed ({report.created} created, {report.updated} updated, "
        f"{report.retired} retired, {report.tax_rates} tax rates)."
    )
    for line in report.details:
        console.print(f"  {line}", markup=False, highlight=False)


@catalog_app.command("import")
def catalog_import(file: Path = typer.Argument(..., help="YAML or JSON catalog document.")) -> None:
    """Validate the document and apply it in one transaction (re-importing changes nothing)."""
    _run_import(file, dry_run=False)


@catalog_app.command("validate")
def catalog_validate(
    file: Path = typer.Argument(..., help="YAML or JSON catalog document."),
) -> None:
    """Check the document and list every error with its path and line; change nothing."""
    _run_import(file, dry_run=True)


@catalog_app.command("export")
def catalog_export(
    file: Path = typer.Argument(..., help="Where to write; '-' for standard output."),
    format: str = typer.Option("", help="yaml or json (default: from the file name)."),
) -> None:
    """Write the active catalog and tax rates as an importable document."""
    from partnercenter.catalog import document
    from partnercenter.cli.main import _session_factory, _settings
    from partnercenter.db import unit_of_work

    fmt = format or ("json" if file.suffix == ".json" else "yaml")
    if fmt not in {"yaml", "json"}:
        err.print("[red]--format is yaml or json.[/red]")
        raise typer.Exit(2)
    with unit_of_work(_session_factory(_settings())) as session:
        text = document.dump(document.export(session), fmt="json" if fmt == "json" else "yaml")
    if str(file) == "-":
        typer.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
        console.print(f"Wrote {file}.")


@keys_app.command("import")
def keys_import(
    file: Path = typer.Argument(..., help="CSV with the columns version,key."),
    product: str = typer.Option(..., help="Product id."),
    sku: str = typer.Option(..., help="SKU id."),
) -> None:
    """Import product keys (encrypted at once); a bad or duplicate row refuses the file."""
    from partnercenter.catalog import services as catalog
    from partnercenter.catalog.errors import KeyImportInvalid
    from partnercenter.cli.main import _now, _session_factory, _settings
    from partnercenter.db import unit_of_work
    from partnercenter.errors import DomainError

    settings = _settings()
    text = _read(file)
    with unit_of_work(_session_factory(settings)) as session:
        try:
            result = catalog.import_keys(
                session,
                settings=settings,
                product_id=product,
                sku_id=sku,
                csv_text=text,
                now=_now(),
                actor=None,
            )
        except KeyImportInvalid as exc:
            err.print(f"[red]{file}: {len(exc.errors)} bad row(s); no key was imported.[/red]")
            for e in exc.errors:
                err.print(
                    f"  row {e['row']}: {e['message']}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            raise typer.Exit(1) from exc
        except DomainError as exc:
            err.print(f"[red]{exc.description}[/red]")
            raise typer.Exit(2) from exc
        session.commit()
    versions = ", ".join(f"{v}: {n}" for v, n in result.by_version.items())
    console.print(f"Imported {result.imported} keys ({versions}).")


@keys_app.command("stock")
def keys_stock() -> None:
    """Available and handed-out keys per SKU and version; low stock is marked."""
    from partnercenter.catalog import services as catalog
    from partnercenter.cli.main import _session_factory, _settings
    from partnercenter.db import unit_of_work

    with unit_of_work(_session_factory(_settings())) as session:
        rows = catalog.key_stock(session)
    table = Table()
    for col in ("product", "sku", "version", "source", "available", "handed out", ""):
        table.add_column(col)
    for r in rows:
        table.add_row(
            f"{r.product_title} ({r.product_id})",
            f"{r.sku_title} ({r.sku_id})",
            r.version,
            r.key_source.value,
            "unlimited" if r.key_source.value == "generator" else str(r.available),
            str(r.reserved),
            "[red]LOW[/red]" if r.low else "",
        )
    Console(width=max(console.width, 160)).print(table)


@artifacts_app.command("upload")
def artifacts_upload(
    file: Path = typer.Argument(..., help="The file to upload."),
    product: str = typer.Option(..., help="Product id."),
    sku: str = typer.Option(..., help="SKU id."),
    version: str = typer.Option(..., help="One of the SKU's versions."),
    language: str = typer.Option(..., help="Language tag, e.g. en-US."),
    bitness: str = typer.Option(..., help="x64, x86 or arm64."),
) -> None:
    """Store a downloadable file for one version, language and bitness of a software SKU."""
    from partnercenter.catalog import services as catalog
    from partnercenter.cli.main import _now, _session_factory, _settings
    from partnercenter.db import unit_of_work
    from partnercenter.errors import DomainError

    settings = _settings()
    if not file.is_file():
        err.print(f"[red]{file} is not a file.[/red]")
        raise typer.Exit(2)
    with unit_of_work(_session_factory(settings)) as session, file.open("rb") as f:
        try:
            artifact = catalog.upload_artifact(
                session,
                settings=settings,
                product_id=product,
                sku_id=sku,
                version=version,
                language=language,
                bitness=bitness,
                file_name=file.name,
                fileobj=f,
                now=_now(),
                actor=None,
            )
        except DomainError as exc:
            err.print(f"[red]{exc.description}[/red]")
            raise typer.Exit(2) from exc
        session.commit()
        console.print(
            f"Stored {artifact.file_name}: {artifact.size} bytes, SHA-256 {artifact.sha256}."
        )


@tax_app.command("set")
def tax_set(
    country: str = typer.Argument(..., help="Market (ISO 3166-1 alpha-2)."),
    percent: str = typer.Argument(..., help="Tax rate in percent, e.g. 20 or 8.875."),
) -> None:
    """Set one market's tax rate."""
    from decimal import Decimal, InvalidOperation

    from partnercenter.catalog import services as catalog
    from partnercenter.cli.main import _now, _session_factory, _settings
    from partnercenter.db import unit_of_work
    from partnercenter.errors import DomainError

    try:
        value = Decimal(percent)
    except InvalidOperation as exc:
        err.print(f"[red]'{percent}' is not a number.[/red]")
        raise typer.Exit(2) from exc
    with unit_of_work(_session_factory(_settings())) as session:
        try:
            changed = catalog.set_tax_rate(
                session, country=country, percent=value, now=_now(), actor=None
            )
        except DomainError as exc:
            err.print(f"[red]{exc.description}[/red]")
            raise typer.Exit(2) from exc
        session.commit()
    console.print(f"{country.upper()}: {value} %" + ("" if changed else " (unchanged)"))
