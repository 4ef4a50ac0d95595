"""The invoice statement as a PDF: header, provider and partner, lines by customer, tax, totals.

Drawn with ReportLab from the issued invoice and its lines only, so the document of an issued
invoice is the same every time it is downloaded.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from partnercenter.billing.models import DocumentType, Invoice, InvoiceLine
from partnercenter.billing.services import charge_period, month_label
from partnercenter.i18n import N_
from partnercenter.money import from_minor

Translate = Callable[[str], str]

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_fonts: tuple[str, str] | None = None

CHARGE_TYPE_LABELS = {
    "new": N_("Purchase"),
    "cycleCharge": N_("Monthly charge"),
    "cancel": N_("Cancellation credit"),
    "customerCredit": N_("Refund credit"),
}


def _font_names() -> tuple[str, str]:
    """DejaVu Sans when installed (every script a customer name may use), else Helvetica."""
    global _fonts
    if _fonts is None:
        regular, bold = _FONT_DIR / "DejaVuSans.ttf", _FONT_DIR / "DejaVuSans-Bold.ttf"
        if regular.exists() and bold.exists():
            pdfmetrics.registerFont(TTFont("InvoiceSans", str(regular)))
            pdfmetrics.registerFont(TTFont("InvoiceSans-Bold", str(bold)))
            _fonts = ("InvoiceSans", "InvoiceSans-Bold")
        else:
            _fonts = ("Helvetica", "Helvetica-Bold")
    return _fonts


def _money(minor: int, currency: str) -> str:
    amount = from_minor(minor, currency)
    return f"{amount:,}"


def render_statement(
    *,
    invoice: Invoice,
    lines: Sequence[InvoiceLine],
    provider_name: str,
    provider_country: str | None,
    gettext: Translate = lambda s: s,
) -> bytes:
    """The PDF bytes of ``invoice``."""
    _ = gettext
    regular, bold = _font_names()
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["Normal"], fontName=regular, fontSize=8.5)
    small = ParagraphStyle("small", parent=body, fontSize=7.5, leading=9)
    heading = ParagraphStyle("h", parent=body, fontName=bold, fontSize=10, spaceBefore=6)
    title = ParagraphStyle("t", parent=body, fontName=bold, fontSize=18, leading=22)
    currency = invoice.currency
    is_credit_note = invoice.document_type == DocumentType.CREDIT_NOTE
    story: list[Flowable] = []

    story.append(Paragraph(_("Credit note") if is_credit_note else _("Invoice"), title))
    facts = [
        [_("Invoice number"), invoice.number],
        [_("Invoice date"), invoice.issued_at.strftime("%Y-%m-%d")],
        [_("Billing period"), month_label(invoice.billing_month)],
        [_("Currency"), currency],
    ]
    story.append(_grid(facts, regular, bold, widths=(35 * mm, 60 * mm)))
    story.append(Spacer(1, 5 * mm))

    parties: list[list[Any]] = [
        [_("From"), _("Bill to")],
        [
            Paragraph(f"{_esc(provider_name)}<br/>{_esc(provider_country or '')}", body),
            Paragraph(
                f"{_esc(invoice.partner_name)}<br/>{_esc(invoice.partner_country or '')}"
                f"<br/>{_('Partner ID')}: {invoice.partner_id}",
                body,
            ),
        ],
    ]
    table = Table(parties, colWidths=(85 * mm, 95 * mm))
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), bold),
                ("FONTSIZE", (0, 0), (-1, -1), 8.5),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    story.append(table)
    story.append(Spacer(1, 4 * mm))

    header = [
        _("Date"),
        _("Order"),
        _("Product"),
        _("Charge type"),
        _("Qty"),
        _("Unit price"),
        _("Net"),
        _("Tax"),
        _("Total"),
    ]
    widths = (17, 17, 39, 30, 8, 19, 17, 15, 18)
    by_customer: dict[str, list[InvoiceLine]] = {}
    for line in lines:
        by_customer.setdefault(str(line.customer_id), []).append(line)
    for customer_lines in by_customer.values():
        first = customer_lines[0]
        where = ", ".join(x for x in (first.customer_domain, first.customer_country) if x)
        story.append(Paragraph(f"{_esc(first.customer_name)} ({_esc(where)})", heading))
        rows: list[list[Any]] = [header]
        net = tax = gross = 0
        for line in customer_lines:
            start, _end = charge_period(line)
            label = _(CHARGE_TYPE_LABELS.get(line.charge_type, line.charge_type))
            if line.credit_reason_code:
                label = f"{label}<br/>{_esc(line.credit_reason_code)}"
            rows.append(
                [
                    start.strftime("%Y-%m-%d"),
                    Paragraph(str(line.order_id)[:8], small),
                    Paragraph(f"{_esc(line.product_name)}<br/>{_esc(line.sku_name)}", small),
                    Paragraph(label, small),
                    str(line.quantity),
                    _money(line.unit_price_minor, currency),
                    _money(line.net_minor, currency),
                    _money(line.tax_minor, currency),
                    _money(line.gross_minor, currency),
                ]
            )
            net, tax, gross = net + line.net_minor, tax + line.tax_minor, gross + line.gross_minor
        rows.append(
            [
                "",
                "",
                _("Customer subtotal"),
                "",
                "",
                "",
                _money(net, currency),
                _money(tax, currency),
                _money(gross, currency),
            ]
        )
        story.append(_lines_table(rows, widths, regular, bold))

    story.append(Spacer(1, 4 * mm))
    story.append(Paragraph(_("Tax summary"), heading))
    summary: dict[tuple[str, str], list[int]] = {}
    for line in lines:
        rate = _rate(line)
        key = (line.customer_country or "", rate)
        sums = summary.setdefault(key, [0, 0, 0])
        sums[0] += line.net_minor
        sums[1] += line.tax_minor
        sums[2] += line.gross_minor
    tax_rows: list[list[Any]] = [[_("Market"), _("Tax rate"), _("Net"), _("Tax"), _("Total")]]
    for (country, rate), (net, tax, gross) in sorted(summary.items()):
        tax_rows.append(
            [
                country,
                rate,
                _money(net, currency),
                _money(tax, currency),
                _money(gross, currency),
            ]
        )
    story.append(_lines_table(tax_rows, (25, 25, 30, 30, 30), regular, bold, subtotal=False))

    story.append(Spacer(1, 4 * mm))
    totals = [
        [_("Subtotal"), f"{_money(invoice.net_minor, currency)} {currency}"],
        [_("Tax"), f"{_money(invoice.tax_minor, currency)} {currency}"],
        [_("Total"), f"{_money(invoice.gross_minor, currency)} {currency}"],
    ]
    grid = Table(totals, colWidths=(40 * mm, 45 * mm), hAlign="RIGHT")
    grid.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), regular),
                ("FONTNAME", (0, -1), (-1, -1), bold),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("FONTSIZE", (0, -1), (-1, -1), 11),
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
            ]
        )
    )
    story.append(grid)

    footer = f"{invoice.number} · {_('Page')}"

    def on_page(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(regular, 7)
        canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"{footer} {doc.page}")
        canvas.restoreState()

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
        title=f"{_('Invoice')} {invoice.number}",
        author=provider_name,
        subject=f"{invoice.partner_name} {invoice.billing_month} {currency}",
        invariant=1,
    )
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return out.getvalue()


def _rate(line: InvoiceLine) -> str:
    if not line.net_minor:
        return "0 %"
    rate = (Decimal(line.tax_minor) / Decimal(line.net_minor) * 100).quantize(Decimal("0.1"))
    return f"{rate.normalize():f} %"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _grid(rows: list[list[str]], regular: str, bold: str, *, widths: tuple[float, ...]) -> Table:
    table = Table(rows, colWidths=widths, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (0, -1), bold),
                ("FONTNAME", (1, 0), (1, -1), regular),
                ("FONTSIZE", (0, 0), (-1, -1), 8.5),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return table


def _lines_table(
    rows: list[list[Any]],
    widths_mm: tuple[int, ...],
    regular: str,
    bold: str,
    *,
    subtotal: bool = True,
) -> Table:
    table = Table(rows, colWidths=[w * mm for w in widths_mm], repeatRows=1, hAlign="LEFT")
    style: list[Any] = [
        ("FONTNAME", (0, 0), (-1, -1), regular),
        ("FONTNAME", (0, 0), (-1, 0), bold),
        ("FONTSIZE", (0, 0), (-1, -1), 7.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf3")),
        ("ALIGN", (-5 if len(widths_mm) > 5 else 2, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
    ]
    if subtotal:
        style += [
            ("FONTNAME", (0, -1), (-1, -1), bold),
            ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.grey),
        ]
    table.setStyle(TableStyle(style))
    return table
