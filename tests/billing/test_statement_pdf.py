"""The invoice PDF, rendered and read back: every script a company name uses, English and
Spanish, nothing overlapping, nothing cut, tax rates never split, unit prices that multiply.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from itertools import combinations, pairwise

import pypdfium2 as pdfium
import pytest

from partnercenter.billing.models import DocumentType, Invoice, InvoiceLine
from partnercenter.billing.pdf import _font_for, display_text, render_statement, tax_summary
from partnercenter.i18n import translations

BOUGHT = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)

NAMES = {
    "JP": "株式会社ノースウィンド商事",
    "CN": "北京风驰科技有限公司",
    "KR": "주식회사 노스윈드 트레이더스",
    "SA": "شركة الرياض للتقنية",
    "VN": "Công ty TNHH Đầu tư Phát triển Việt Nam",
    "US": "Rocket Labs 🚀 Coffee ☕",
    "AU": "Wingtip Toys Pty Ltd",
}


def _line(
    country: str,
    *,
    kind: str = "new",
    quantity: int = 2,
    net: int,
    tax: int,
    reason: str | None = None,
    order_id: uuid.UUID | None = None,
) -> InvoiceLine:
    return InvoiceLine(
        charge_id=uuid.uuid4(),
        partner_id=uuid.UUID(int=1),
        invoice_month="2026-11",
        currency="USD",
        charge_month="2026-11",
        charge_type=kind,
        credit_reason_code=reason,
        reverses_charge_id=uuid.uuid4() if reason else None,
        customer_id=uuid.uuid5(uuid.NAMESPACE_DNS, country),
        customer_name=NAMES[country],
        customer_domain=f"{country.lower()}-customer.onmicrosoft.com",
        customer_country=country,
        order_id=order_id or uuid.uuid5(uuid.NAMESPACE_URL, f"{country}-{kind}"),
        order_date=BOUGHT,
        order_line_id=uuid.uuid4(),
        line_number=0,
        product_id="CFQ7TTC0LH18",
        sku_id="0001",
        availability_id="P3YA",
        product_name="Windows Server 2025 Datacenter",
        sku_name="16 core pack",
        term_duration="P3Y",
        billing_cycle="annual",
        quantity=quantity,
        unit_price_minor=0,
        net_minor=net,
        tax_minor=tax,
        gross_minor=net + tax,
        charged_at=BOUGHT,
    )


def _lines() -> list[InvoiceLine]:
    order = uuid.UUID("0da2c69b-5e1f-4c1b-9a57-3f0e1d2c4b6a")
    lines = [
        _line("JP", net=11_570, tax=1_157, order_id=order),
        _line("JP", kind="cancel", net=-11_253, tax=-1_125, reason="customer_cancellation"),
        _line("CN", net=11_570, tax=0),
        # a credit in a market without tax: its rate is 0 %, never "-0 %"
        _line("CN", kind="customerCredit", net=-5_000, tax=0, reason="customerCredit"),
        _line("KR", net=11_570, tax=1_157),
        _line("KR", kind="cycleCharge", net=11_570, tax=1_157),
        _line("SA", net=11_570, tax=1_736),
        _line("VN", net=11_570, tax=1_157),
        _line("US", net=11_570, tax=955),
        _line("US", kind="customerCredit", net=-1_000, tax=-83, reason="customerCredit"),
        # AU, 7 x 102.49 tax included: total 717.43, tax 65.22, net 652.21
        _line("AU", quantity=7, net=65_221, tax=6_522),
    ]
    return lines


def _invoice(lines: list[InvoiceLine]) -> Invoice:
    return Invoice(
        id=uuid.uuid4(),
        number="G000000042",
        partner_id=uuid.UUID(int=1),
        billing_month="2026-11",
        currency="USD",
        document_type=DocumentType.INVOICE,
        net_minor=sum(li.net_minor for li in lines),
        tax_minor=sum(li.tax_minor for li in lines),
        gross_minor=sum(li.gross_minor for li in lines),
        line_count=len(lines),
        partner_name="Fabrikam Reseller 株式会社",
        partner_country="US",
        issued_at=datetime(2026, 12, 1, 0, 10, tzinfo=UTC),
    )


def _render(lang: str) -> bytes:
    lines = _lines()
    return render_statement(
        invoice=_invoice(lines),
        lines=lines,
        provider_name="Northwind Software",
        provider_country="US",
        gettext=translations(lang).gettext,
    )


def _pages(pdf: bytes) -> list[tuple[str, list[tuple[str, tuple[float, float, float, float]]]]]:
    """Each page's text and its visible characters with their boxes (left, bottom, right, top)."""
    doc = pdfium.PdfDocument(pdf)
    out = []
    for page in doc:
        tp = page.get_textpage()
        count = tp.count_chars()
        text = tp.get_text_range()
        chars = []
        for i in range(count):
            char = tp.get_text_range(i, 1)
            if not char.strip():
                continue
            chars.append((char, tp.get_charbox(i)))
        out.append((text, chars))
    return out


def _overlaps(chars: list[tuple[str, tuple[float, float, float, float]]]) -> list[str]:
    """Pairs of glyphs whose boxes overlap by more than a third of the smaller one."""
    grid: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (_c, (left, bottom, right, top)) in enumerate(chars):
        for gx in range(int(left // 8), int(right // 8) + 1):
            for gy in range(int(bottom // 8), int(top // 8) + 1):
                grid[(gx, gy)].append(i)
    found = set()
    for members in grid.values():
        for a, b in combinations(members, 2):
            (ca, ba), (cb, bb) = chars[a], chars[b]
            w = min(ba[2], bb[2]) - max(ba[0], bb[0])
            h = min(ba[3], bb[3]) - max(ba[1], bb[1])
            if w <= 0 or h <= 0:
                continue
            smaller = min((ba[2] - ba[0]) * (ba[3] - ba[1]), (bb[2] - bb[0]) * (bb[3] - bb[1]))
            if smaller > 0 and w * h > smaller / 3:
                found.add(f"{ca}@{ba} / {cb}@{bb}")
    return sorted(found)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_every_script_renders_with_a_real_font_and_nothing_overlaps(lang: str) -> None:
    pages = _pages(_render(lang))
    text = "\n".join(t for t, _ in pages)
    for country, name in NAMES.items():
        for char in name:
            assert char.isspace() or _font_for(char) is not None, (country, char)
        if country == "SA":
            # Arabic is drawn joined (presentation forms) right to left; a reader's text
            # extraction gives each word back in its logical order.
            assert display_text(name) != name
            for word in name.split():
                assert word in text, word
        else:
            # (ReportLab's text map keeps characters of the Basic Multilingual Plane only:
            # the rocket is drawn, but reads back as another character.)
            bmp = "".join(c for c in name if ord(c) <= 0xFFFF)
            for word in bmp.split():
                assert word in text, (country, word)
    for _t, chars in pages:
        assert _overlaps(chars) == []


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        (
            "en",
            ["Cancellation credit", "Refund credit", "Annual charge", "Unit price", "Page 1"],
        ),
        (
            "es",
            [
                "Crédito por cancelación",
                "Precio unitario",
                "Período de facturación",
                "Página 1",
                "Cant.",
                "noviembre de 2026",
                "Cargo anual",
            ],
        ),
    ],
)
def test_nothing_is_cut_or_wrapped_inside_a_word(lang: str, words: list[str]) -> None:
    pages = _pages(_render(lang))
    text = "\n".join(t for t, _ in pages)
    # Full order ids, whole.
    assert "0da2c69b-5e1f-4c1b-9a57-3f0e1d2c4b6a" in text
    for line in _lines():
        assert str(line.order_id) in text
    # Labels wrap between their words only, and no word is broken across two lines.
    for label in words:
        for word in label.split():
            assert word in text, word
    checked = [w for label in words for w in label.split()]
    checked += ["Windows", "Datacenter", "Cancelled", "onmicrosoft.com", "unitario"]
    assert _broken_words(text, checked) == []
    if lang == "es":
        assert "Page 1" not in text


def _broken_words(text: str, words: list[str]) -> list[str]:
    """Words that end one line of the text and go on at the start of the next."""
    rows = [r.strip() for r in text.replace("\r", "").split("\n")]
    broken = []
    for here, after in pairwise(rows):
        for word in words:
            for i in range(2, len(word) - 1):
                if here.endswith(word[:i]) and after.startswith(word[i:]):
                    broken.append(f"{here!r} / {after!r}")
    return broken


def test_tax_summary_keeps_one_rate_per_market_and_no_negative_zero() -> None:
    lines = _lines()
    summary = tax_summary(lines)
    rates = [(country, rate) for (country, rate), _ in summary]
    assert len(rates) == len(set(c for c, _ in rates))  # one rate per market here
    assert all(not rate.startswith("-") for _, rate in rates)
    assert dict(rates) == {
        "AU": "10 %",
        "CN": "0 %",
        "JP": "10 %",
        "KR": "10 %",
        "SA": "15 %",
        "US": "8.3 %",
        "VN": "10 %",
    }
    pages = _pages(_render("en"))
    assert "-0 %" not in pages[0][0]


def test_a_tax_inclusive_row_shows_the_unit_price_that_multiplies_to_its_total() -> None:
    text = "\n".join(t for t, _ in _pages(_render("en")))
    # AU: 7 x 102.49 = 717.43 (the row's total); the rounded net unit 93.17 is not claimed.
    assert "102.49" in text and "717.43" in text and "incl. tax" in text
    assert "93.17" not in text
