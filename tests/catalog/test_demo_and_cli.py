"""The demo catalog loader (files, keys, idempotent) and the catalog commands."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from partnercenter.catalog import demo
from partnercenter.catalog import services as catalog
from partnercenter.catalog.models import Artifact, ProductKey
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.storage import get_storage


def _counts(session: Session) -> tuple[int, int]:
    return (
        int(session.execute(select(func.count()).select_from(Artifact)).scalar_one()),
        int(session.execute(select(func.count()).select_from(ProductKey)).scalar_one()),
    )


def test_demo_load_is_idempotent_and_fills_files_and_keys(
    session: Session, settings: Settings, clock: FrozenClock
) -> None:
    demo.load(session, now=clock.now(), settings=settings)
    session.flush()
    first = _counts(session)
    # Windows Server perpetual and subscription: 2 SKUs x 3 versions; SQL Server 2 x 2;
    # each in English and Spanish, x64 and x86.
    assert first[0] == (2 * 3 + 2 * 3 + 2 * 2) * 4
    demo.load(session, now=clock.now(), settings=settings)
    session.flush()
    assert _counts(session) == first
    versions = catalog.software_versions(session, product_id="DG7GMGF0D7FV", sku_id="0001")
    assert versions[0] == {"version": "2022", "languages": ["en-US", "es-ES"],
                           "bitness": ["x64", "x86"]}  # fmt: skip
    art = catalog.get_artifact(
        session, product_id="DG7GMGF0D7FV", sku_id="0001", version="2016",
        language="es-ES", bitness="x86",
    )  # fmt: skip
    stored = get_storage(settings).stat(art.storage_key)
    assert (stored.size, stored.sha256) == (art.size, art.sha256)
    stock = {(r.product_id, r.sku_id, r.version): r for r in catalog.key_stock(session)}
    assert stock[("DG7GMGF0D7FV", "0001", "2022")].available == demo.KEYS_PER_VERSION
    low = stock[("DG7GMGF0D7FV", "0002", "2016")]
    assert low.available == 3 and low.low
    # SQL Server's keys come from the generator: nothing stocked, never low.
    sql = stock[("DG7GMGF0FLR2", "0001", "2022")]
    assert (sql.available, sql.low) == (0, False)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PARTNERCENTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("PARTNERCENTER_DATABASE_URL", raising=False)
    monkeypatch.setenv("PARTNERCENTER_LOG_JSON", "false")
    from partnercenter.cli.main import app

    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    return runner


def test_catalog_keys_and_artifacts_commands(cli_env: CliRunner, tmp_path: Path) -> None:
    from partnercenter.cli.main import app

    runner = cli_env
    catalog_file = tmp_path / "catalog.yaml"
    catalog_file.write_text(demo.catalog_text())
    r = runner.invoke(app, ["catalog", "validate", str(catalog_file)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["catalog", "import", str(catalog_file)])
    assert r.exit_code == 0, r.output
    assert "changed" in r.output and not r.output.startswith("0 changed")
    r = runner.invoke(app, ["catalog", "import", str(catalog_file)])
    assert r.output.startswith("0 changed"), r.output

    broken = tmp_path / "broken.yaml"
    broken.write_text(demo.catalog_text().replace("price: '1069.00'", "price: '1069.005'", 1))
    r = runner.invoke(app, ["catalog", "import", str(broken)])
    assert r.exit_code == 1
    assert "products[0].skus[0].availabilities[0].price: USD has 2 decimals" in r.output

    exported = tmp_path / "out.json"
    r = runner.invoke(app, ["catalog", "export", str(exported)])
    assert r.exit_code == 0 and exported.read_text().startswith("{")

    keys = tmp_path / "keys.csv"
    keys.write_text("version,key\n2022,VK7JG-NPHTM-C97JM-9MPGT-3V66T\n2022,bad key\n")
    args = ["keys", "import", str(keys), "--product", "DG7GMGF0D7FV", "--sku", "0001"]
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "row 3:" in r.output
    keys.write_text("version,key\n2022,VK7JG-NPHTM-C97JM-9MPGT-3V66T\n")
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and "Imported 1 keys (2022: 1)." in r.output

    bits = tmp_path / "setup.iso"
    bits.write_bytes(os.urandom(5000))
    r = runner.invoke(
        app,
        ["artifacts", "upload", str(bits), "--product", "DG7GMGF0D7FV", "--sku", "0001",
         "--version", "2019", "--language", "es-ES", "--bitness", "arm64"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    digest = hashlib.sha256(io.BytesIO(bits.read_bytes()).read()).hexdigest()
    assert f"5000 bytes, SHA-256 {digest}" in r.output

    r = runner.invoke(app, ["tax", "set", "GB", "17.5"])
    assert r.exit_code == 0 and "GB: 17.5 %" in r.output
