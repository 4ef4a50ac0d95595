"""Write src/partnercenter/data/demo-catalog.yaml, the demo catalog (run after changing it).

Prices start from a US dollar list price and are converted at fixed demo rates, rounded to
each currency's minor unit; in Australia and Brazil the list price includes the market's tax.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import yaml

from partnercenter.money import minor_units

OUT = Path(__file__).resolve().parents[1] / "src/partnercenter/data/demo-catalog.yaml"

# (currency, demo conversion from USD, tax included in the list price)
CURRENCIES = [
    ("USD", Decimal("1"), Decimal("0")),
    ("EUR", Decimal("0.92"), Decimal("0")),
    ("GBP", Decimal("0.79"), Decimal("0")),
    ("AUD", Decimal("1.53"), Decimal("0.10")),
    ("BRL", Decimal("5.40"), Decimal("0.1425")),
    ("JPY", Decimal("150"), Decimal("0")),
    ("KWD", Decimal("0.307"), Decimal("0")),
]

TAX_RATES = {
    "AD": "4.5", "AT": "20", "AU": "10", "BE": "21", "BR": "14.25", "CA": "5", "CH": "8.1",
    "DE": "19", "DK": "25", "ES": "21", "FI": "25.5", "FR": "20", "GB": "20", "IE": "23",
    "IN": "18", "IT": "22", "JP": "10", "KR": "10", "MX": "16", "NL": "21", "NO": "25",
    "NZ": "15", "PT": "23", "SE": "25", "TW": "5", "US": "0", "ZA": "15",
}  # fmt: skip

CYCLE_CODE = {"one_time": "OT", "monthly": "MO", "annual": "AN"}


def price(usd: str, currency: str, rate: Decimal, tax: Decimal) -> str:
    value = Decimal(usd) * rate * (1 + tax)
    places = minor_units(currency)
    return str(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def availabilities(offers: list[tuple[str | None, str, str]]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for term, cycle, usd in offers:
        for currency, rate, tax in CURRENCIES:
            out.append(
                {
                    "id": f"{currency}-{term or 'PERP'}-{CYCLE_CODE[cycle]}",
                    "markets": [f"currency:{currency}"],
                    "currency": currency,
                    "term": term,
                    "billingCycle": cycle,
                    "price": price(usd, currency, rate, tax),
                }
            )
    return out


def sku(
    sku_id: str,
    title: str,
    offers: list[tuple[str | None, str, str]],
    *,
    unit: str,
    max_quantity: int,
    versions: list[str] | None = None,
    key_source: str = "none",
    low: int = 10,
    description: str = "",
) -> dict[str, object]:
    return {
        "id": sku_id,
        "title": title,
        "description": description,
        "unit": unit,
        "minQuantity": 1,
        "maxQuantity": max_quantity,
        "keySource": key_source,
        "lowStockThreshold": low,
        "versions": versions or [],
        "availabilities": availabilities(offers),
    }


WS_VERSIONS = ["2022", "2019", "2016"]
SQL_VERSIONS = ["2022", "2019"]

PRODUCTS = [
    {
        "id": "DG7GMGF0D7FV",
        "title": "Windows Server 2022",
        "description": "Windows Server 2022 perpetual licence, with downgrade rights to 2019 "
        "and 2016.",
        "productType": "perpetual_software",
        "publisher": "Microsoft Corporation",
        "skus": [
            sku("0001", "Windows Server 2022 Standard - 16 Core License Pack",
                [(None, "one_time", "1069.00")], unit="16-core pack", max_quantity=100,
                versions=WS_VERSIONS, key_source="inventory"),
            sku("0002", "Windows Server 2022 Datacenter - 16 Core License Pack",
                [(None, "one_time", "6155.00")], unit="16-core pack", max_quantity=100,
                versions=WS_VERSIONS, key_source="inventory", low=25),
        ],
    },
    {
        "id": "DG7GMGF0FKZV",
        "title": "Windows Server 2022 subscription",
        "description": "Windows Server 2022 as a 1- or 3-year subscription, in 2-core packs.",
        "productType": "server_subscription",
        "publisher": "Microsoft Corporation",
        "skus": [
            sku("0001", "Windows Server 2022 Standard - 2 Core",
                [("P1Y", "annual", "60.90"), ("P3Y", "annual", "57.85"),
                 ("P3Y", "one_time", "173.55")],
                unit="2-core pack", max_quantity=500, versions=WS_VERSIONS,
                key_source="inventory"),
            sku("0002", "Windows Server 2022 Datacenter - 2 Core",
                [("P1Y", "annual", "349.75"), ("P3Y", "annual", "332.26"),
                 ("P3Y", "one_time", "996.79")],
                unit="2-core pack", max_quantity=500, versions=WS_VERSIONS,
                key_source="inventory"),
        ],
    },
    {
        "id": "DG7GMGF0FLR2",
        "title": "SQL Server 2022",
        "description": "SQL Server 2022 as a 1- or 3-year subscription, in 2-core packs.",
        "productType": "server_subscription",
        "publisher": "Microsoft Corporation",
        "skus": [
            sku("0001", "SQL Server 2022 Standard - 2 Core",
                [("P1Y", "annual", "1859.00"), ("P3Y", "annual", "1766.05")],
                unit="2-core pack", max_quantity=200, versions=SQL_VERSIONS,
                key_source="generator"),
            sku("0002", "SQL Server 2022 Enterprise - 2 Core",
                [("P1Y", "annual", "7128.00"), ("P3Y", "annual", "6771.60")],
                unit="2-core pack", max_quantity=200, versions=SQL_VERSIONS,
                key_source="generator"),
        ],
    },
    {
        "id": "DZH318Z0BQ3Q",
        "title": "Reserved Virtual Machine Instances",
        "description": "Azure reserved VM instances for 1 or 3 years, paid upfront or monthly.",
        "productType": "azure_reservation",
        "publisher": "Microsoft Corporation",
        "skus": [
            sku("00VQ", "Standard_D2s_v5 (East US)",
                [("P1Y", "one_time", "603.00"), ("P1Y", "monthly", "50.25"),
                 ("P3Y", "one_time", "1168.00"), ("P3Y", "monthly", "32.44")],
                unit="instance", max_quantity=1000),
            sku("00VR", "Standard_D4s_v5 (West Europe)",
                [("P1Y", "one_time", "1254.00"), ("P1Y", "monthly", "104.50"),
                 ("P3Y", "one_time", "2430.00"), ("P3Y", "monthly", "67.50")],
                unit="instance", max_quantity=1000),
            sku("00VS", "Standard_E4s_v5 (Australia East)",
                [("P1Y", "one_time", "1680.00"), ("P1Y", "monthly", "140.00"),
                 ("P3Y", "one_time", "3276.00"), ("P3Y", "monthly", "91.00")],
                unit="instance", max_quantity=1000),
        ],
    },
    {
        "id": "DZH318Z0BQ4P",
        "title": "SUSE Linux Enterprise Server",
        "description": "SUSE Linux Enterprise Server software plan for Azure VMs. Cannot be "
        "cancelled or exchanged.",
        "productType": "software_plan",
        "publisher": "SUSE",
        "skus": [
            sku("0001", "SUSE Linux Enterprise Server, 1-2 vCPU VM",
                [("P1Y", "one_time", "85.00"), ("P3Y", "one_time", "204.00")],
                unit="VM", max_quantity=1000),
            sku("0002", "SUSE Linux Enterprise Server, 3+ vCPU VM",
                [("P1Y", "one_time", "197.00"), ("P3Y", "one_time", "473.00")],
                unit="VM", max_quantity=1000),
        ],
    },
    {
        "id": "DZH318Z0BQ5R",
        "title": "Red Hat Enterprise Linux",
        "description": "Red Hat Enterprise Linux software plan for Azure VMs. Cannot be "
        "cancelled or exchanged.",
        "productType": "software_plan",
        "publisher": "Red Hat",
        "skus": [
            sku("0001", "Red Hat Enterprise Linux, 1-4 vCPU VM",
                [("P1Y", "one_time", "540.00"), ("P3Y", "one_time", "1296.00")],
                unit="VM", max_quantity=1000),
            sku("0002", "Red Hat Enterprise Linux, 5+ vCPU VM",
                [("P1Y", "one_time", "1260.00"), ("P3Y", "one_time", "3024.00")],
                unit="VM", max_quantity=1000),
        ],
    },
]


def main() -> None:
    document = {"version": 1, "taxRates": TAX_RATES, "products": PRODUCTS}
    header = (
        "# The demo catalog, loaded by `partnercenter demo`.\n"
        "# Generated by scripts/make_demo_catalog.py; edit that script, then run it.\n"
    )
    OUT.write_text(header + yaml.safe_dump(document, sort_keys=False, width=100))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
