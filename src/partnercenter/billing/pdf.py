"""The invoice statement as a PDF: header, provider and partner, lines by customer, tax, totals.

Drawn with ReportLab from the issued invoice and its lines only, so the document of an issued
invoice is the same every time it is downloaded. Text is set in Noto Sans, falling back per
character to the Noto face that has the glyph (Arabic, Hebrew, Thai, Indic scripts, Japanese,
Korean, Chinese, symbols, emoji); the fonts come from installed Python packages
(``manimgx-fonts``, ``justmytype-intl-cjk``), never from the network or the system. Arabic and
Hebrew are shaped and put in display order first (``arabic-reshaper``, ``python-bidi``).
See ``docs/dev/billing.md``.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from importlib.resources import files
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from partnercenter import labels as code_labels
from partnercenter.billing.models import DocumentType, Invoice, InvoiceLine
from partnercenter.billing.services import charge_period, unit_prices
from partnercenter.i18n import N_
from partnercenter.money import from_minor

Translate = Callable[[str], str]


MONTHS = (
    N_("January"),
    N_("February"),
    N_("March"),
    N_("April"),
    N_("May"),
    N_("June"),
    N_("July"),
    N_("August"),
    N_("September"),
    N_("October"),
    N_("November"),
    N_("December"),
)


def charge_label(line: InvoiceLine) -> str:
    """The (untranslated) label of a line's charge: :func:`partnercenter.labels.charge_label`."""
    return code_labels.charge_label(line.charge_type, line.billing_cycle)


# --- fonts ---------------------------------------------------------------------------------

BASE_FONT = "InvoiceSans"
_LATIN = ("manimgx_fonts", "NotoSans[wght].ttf")
# Fallback faces, in the order a character not in Noto Sans is looked up in.
_SCRIPTS: tuple[tuple[str, str], ...] = tuple(
    ("manimgx_fonts", f"NotoSans{script}[wght].ttf")
    for script in (
        "Arabic",
        "Hebrew",
        "Armenian",
        "Georgian",
        "Thai",
        "Lao",
        "Khmer",
        "Myanmar",
        "Ethiopic",
        "Devanagari",
        "Bengali",
        "Gurmukhi",
        "Gujarati",
        "Oriya",
        "Tamil",
        "Telugu",
        "Kannada",
        "Malayalam",
        "Sinhala",
    )
)
_FALLBACKS: tuple[tuple[str, str], ...] = (
    *_SCRIPTS,
    ("justmytype_intl_cjk", "fonts/ofl/notosansjp/NotoSansJP[wght].ttf"),
    ("justmytype_intl_cjk", "fonts/ofl/notosanskr/NotoSansKR[wght].ttf"),
    ("justmytype_intl_cjk", "fonts/ofl/notosanssc/NotoSansSC[wght].ttf"),
    ("justmytype_intl_cjk", "fonts/ofl/notosanstc/NotoSansTC[wght].ttf"),
    ("manimgx_fonts", "NotoSansSymbols[wght].ttf"),
    ("manimgx_fonts", "NotoEmoji[wght].ttf"),
)
_lock = threading.Lock()
_loaded: list[tuple[str, frozenset[int] | dict[int, int]]] = []
_next_fallback = 0
_glyph_font: dict[str, str | None] = {}


def _register(index: int, package: str, path: str) -> tuple[str, dict[int, int]]:
    name = BASE_FONT if index < 0 else f"InvoiceSans{index}"
    font = TTFont(name, str(files(package).joinpath(path)))
    pdfmetrics.registerFont(font)
    return name, font.face.charToGlyph


def _font_for(char: str) -> str | None:
    """The first face with a glyph for ``char``; faces are loaded on first need (CJK: ~10 MB)."""
    global _next_fallback
    found = _glyph_font.get(char, "")
    if found != "":
        return found
    code = ord(char)
    with _lock:
        if not _loaded:
            _loaded.append(_register(-1, *_LATIN))
        result: str | None = None
        for name, cmap in _loaded:
            if code in cmap:
                result = name
                break
        while result is None and _next_fallback < len(_FALLBACKS):
            name, cmap = _register(_next_fallback, *_FALLBACKS[_next_fallback])
            _loaded.append((name, cmap))
            _next_fallback += 1
            if code in cmap:
                result = name
        _glyph_font[char] = result
    return result


def _font_names() -> tuple[str, str]:
    """The statement's faces: Noto Sans for text and for headings (set larger, not bolder)."""
    _font_for("A")
    return BASE_FONT, BASE_FONT


_RTL_RANGES = ((0x0590, 0x08FF), (0xFB1D, 0xFDFF), (0xFE70, 0xFEFF))


def _is_rtl(text: str) -> bool:
    return any(lo <= ord(c) <= hi for c in text for lo, hi in _RTL_RANGES)


def display_text(text: str) -> str:
    """``text`` as drawn: Arabic joined into its presentation forms, right-to-left runs in
    display order (ReportLab draws characters left to right as given)."""
    if not _is_rtl(text):
        return text
    import arabic_reshaper  # type: ignore[import-untyped]
    from bidi import get_display  # type: ignore[import-untyped]

    return str(get_display(arabic_reshaper.reshape(text)))


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markup(text: str) -> str:
    """Paragraph markup for any text: escaped, each run in the face that has its glyphs."""
    out: list[str] = []
    run: list[str] = []
    face: str | None = BASE_FONT

    def flush() -> None:
        if run:
            chunk = _esc("".join(run))
            out.append(chunk if face == BASE_FONT else f'<font face="{face}">{chunk}</font>')
            run.clear()

    for char in display_text(text):
        # Spaces and marks join the run they are in (no face switch for them).
        wanted = face if char.isspace() or "\ufe00" <= char <= "\ufe0f" else _font_for(char)
        wanted = wanted or BASE_FONT
        if wanted != face:
            flush()
            face = wanted
        run.append(char)
    flush()
    return "".join(out)


def _money(minor: int, currency: str) -> str:
    amount = from_minor(minor, currency)
    return f"{amount:,}"


def period_label(month: str, gettext: Translate) -> str:
    """``2026-11`` as "November 2026" in the reader's language."""
    label = gettext(N_("%(month)s %(year)s"))
    return label % {"month": gettext(MONTHS[int(month[5:7]) - 1]), "year": month[:4]}


def render_statement(
    *,
    invoice: Invoice,
    lines: Sequence[InvoiceLine],
    provider_name: str,
    provider_country: str | None,
    gettext: Translate = lambda s: s,
) -> bytes:
    """The PDF bytes of ``invoice`` (A4), in the language of ``gettext``.

    Every cell is a paragraph that wraps between words only (a word wider than its column
    is a layout bug the tests catch); unit prices are shown only where they multiply to the
    row's amount (:func:`billing.services.unit_prices`).
    """
    _ = gettext
    regular, bold = _font_names()
    body = ParagraphStyle("body", fontName=regular, fontSize=8.5, leading=11, splitLongWords=0)
    small = ParagraphStyle("small", parent=body, fontSize=7, leading=8.6)
    small_right = ParagraphStyle("small_right", parent=small, alignment=2)
    head = ParagraphStyle("head", parent=small, textColor=colors.HexColor("#1f3a5f"))
    head_right = ParagraphStyle("head_right", parent=head, alignment=2)
    heading = ParagraphStyle(
        "h", parent=body, fontName=bold, fontSize=10.5, leading=13, spaceBefore=8, spaceAfter=2
    )
    title = ParagraphStyle("t", parent=body, fontName=bold, fontSize=18, leading=22)
    currency = invoice.currency
    is_credit_note = invoice.document_type == DocumentType.CREDIT_NOTE
    story: list[Flowable] = []

    def p(text: str, style: ParagraphStyle = small) -> Paragraph:
        return Paragraph(markup(text), style)

    story.append(p(_("Credit note") if is_credit_note else _("Invoice"), title))
    facts = [
        [p(_("Invoice number"), head), p(invoice.number, body)],
        [p(_("Invoice date"), head), p(invoice.issued_at.strftime("%Y-%m-%d"), body)],
        [p(_("Billing period"), head), p(period_label(invoice.billing_month, _), body)],
        [p(_("Currency"), head), p(currency, body)],
    ]
    story.append(_grid(facts, widths=(45 * mm, 70 * mm)))
    story.append(Spacer(1, 5 * mm))

    partner_lines = [invoice.partner_name, invoice.partner_country or ""]
    parties: list[list[Any]] = [
        [p(_("From"), head), p(_("Bill to"), head)],
        [
            Paragraph(
                "<br/>".join(markup(x) for x in (provider_name, provider_country or "")), body
            ),
            Paragraph(
                "<br/>".join(markup(x) for x in partner_lines)
                + f"<br/>{markup(_('Partner ID'))}: {invoice.partner_id}",
                body,
            ),
        ],
    ]
    table = Table(parties, colWidths=(80 * mm, 100 * mm), hAlign="LEFT")
    table.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
    )
    story.append(table)
    story.append(Spacer(1, 3 * mm))

    right = (4, 5, 6, 7, 8)
    labels = [
        _("Date"),
        _("Product and order"),
        _("Charge type"),
        _("Qty"),
        _("Unit price"),
        _("Net"),
        _("Tax"),
        _("Total"),
    ]
    header = [p(x, head_right if i + 1 in right else head) for i, x in enumerate(labels)]
    widths = (16, 55, 29, 9, 19, 18, 15, 19)
    by_customer: dict[str, list[InvoiceLine]] = {}
    for line in lines:
        by_customer.setdefault(str(line.customer_id), []).append(line)
    for customer_lines in by_customer.values():
        first = customer_lines[0]
        where = ", ".join(x for x in (first.customer_domain, first.customer_country) if x)
        story.append(
            Paragraph(
                f"{markup(first.customer_name)} <font size=8>({markup(where)})</font>", heading
            )
        )
        rows: list[list[Any]] = [header]
        net = tax = gross = 0
        for line in customer_lines:
            start, end = charge_period(line)
            label = markup(_(charge_label(line)))
            if line.credit_reason_code:
                text = _(code_labels.label("credit_reason", line.credit_reason_code))
                label += f"<br/><font size=6.3 color=grey>{markup(text)}</font>"
            units = unit_prices(line)
            if units.net is not None:
                unit = p(_money(units.net, currency), small_right)
            elif units.gross is not None:
                unit = Paragraph(
                    f"{_money(units.gross, currency)}<br/>"
                    f"<font size=6.3 color=grey>{markup(_('incl. tax'))}</font>",
                    small_right,
                )
            else:
                unit = p("\u2013", small_right)
            product = (
                f"{markup(line.product_name)}<br/>{markup(line.sku_name)}"
                f"<br/><font size=6.3 color=grey>{markup(_('Order'))} {line.order_id}</font>"
            )
            period = start.strftime("%Y-%m-%d")
            if end > start:
                period += f"<br/><font size=6.3 color=grey>\u2013 {end.strftime('%Y-%m-%d')}</font>"
            rows.append(
                [
                    Paragraph(period, small),
                    Paragraph(product, small),
                    Paragraph(label, small),
                    p(str(line.quantity), small_right),
                    unit,
                    p(_money(line.net_minor, currency), small_right),
                    p(_money(line.tax_minor, currency), small_right),
                    p(_money(line.gross_minor, currency), small_right),
                ]
            )
            net, tax, gross = net + line.net_minor, tax + line.tax_minor, gross + line.gross_minor
        rows.append(
            [
                "",
                p(_("Customer subtotal"), head),
                "",
                "",
                "",
                p(_money(net, currency), small_right),
                p(_money(tax, currency), small_right),
                p(_money(gross, currency), small_right),
            ]
        )
        story.append(_lines_table(rows, widths))

    story.append(Spacer(1, 4 * mm))
    story.append(p(_("Tax summary"), heading))
    tax_rows: list[list[Any]] = [
        [
            p(x, head if i < 2 else head_right)
            for i, x in enumerate([_("Market"), _("Tax rate"), _("Net"), _("Tax"), _("Total")])
        ]
    ]
    for (country, rate), (net, tax, gross) in tax_summary(lines):
        tax_rows.append(
            [
                p(country),
                p(rate),
                p(_money(net, currency), small_right),
                p(_money(tax, currency), small_right),
                p(_money(gross, currency), small_right),
            ]
        )
    story.append(_lines_table(tax_rows, (25, 25, 30, 30, 30), subtotal=False))

    story.append(Spacer(1, 4 * mm))
    big = ParagraphStyle("big", parent=body, fontSize=11, leading=14)
    big_right = ParagraphStyle("big_right", parent=big, alignment=2)
    body_right = ParagraphStyle("body_right", parent=body, alignment=2)
    totals = [
        [
            p(_("Subtotal"), body),
            p(f"{_money(invoice.net_minor, currency)} {currency}", body_right),
        ],
        [p(_("Tax"), body), p(f"{_money(invoice.tax_minor, currency)} {currency}", body_right)],
        [p(_("Total"), big), p(f"{_money(invoice.gross_minor, currency)} {currency}", big_right)],
    ]
    grid = Table(totals, colWidths=(45 * mm, 50 * mm), hAlign="RIGHT")
    grid.setStyle(TableStyle([("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black)]))
    story.append(grid)

    page_label = _("Page %(number)s")

    def on_page(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(regular, 7)
        text = f"{invoice.number} · {page_label % {'number': doc.page}}"
        canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, text)
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


def _rate_of(net: int, tax: int) -> Decimal | None:
    if not net:
        return None
    return (Decimal(abs(tax)) / Decimal(abs(net)) * 100).quantize(Decimal("0.1"))


def _rate_text(rate: Decimal) -> str:
    return f"{abs(rate).normalize():f} %"


def tax_summary(lines: Sequence[InvoiceLine]) -> list[tuple[tuple[str, str], tuple[int, int, int]]]:
    """Net, tax and total per market and tax rate, credits under the rate they were charged at.

    A line's rate is its tax over its net (signs ignored, so a credit never shows "-0 %"). A
    prorated credit's rounded amounts can put its own quotient a little off the rate (9.9 %
    for 10 %): a credit joins its market's charged rate when the market has one within half
    a point, so one rate is never split in two.
    """
    charged: dict[str, set[Decimal]] = {}
    for line in lines:
        rate = _rate_of(line.net_minor, line.tax_minor)
        if line.gross_minor > 0 and rate is not None:
            charged.setdefault(line.customer_country or "", set()).add(rate)
    summary: dict[tuple[str, Decimal], list[int]] = {}
    for line in lines:
        country = line.customer_country or ""
        rate = _rate_of(line.net_minor, line.tax_minor)
        rates = charged.get(country, set())
        if rate is None or (line.gross_minor < 0 and rate not in rates):
            near = sorted(rates, key=lambda r: abs(r - (rate or Decimal(0))))
            if near and (rate is None or abs(near[0] - rate) <= Decimal("0.5")):
                rate = near[0]
        rate = rate if rate is not None else Decimal(0)
        sums = summary.setdefault((country, rate), [0, 0, 0])
        sums[0] += line.net_minor
        sums[1] += line.tax_minor
        sums[2] += line.gross_minor
    return [
        ((country, _rate_text(rate)), (n, t, g))
        for (country, rate), (n, t, g) in sorted(summary.items())
    ]


def _grid(rows: list[list[Any]], *, widths: tuple[float, ...]) -> Table:
    table = Table(rows, colWidths=widths, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _lines_table(
    rows: list[list[Any]],
    widths_mm: tuple[int, ...],
    *,
    subtotal: bool = True,
) -> Table:
    table = Table(rows, colWidths=[w * mm for w in widths_mm], repeatRows=1, hAlign="LEFT")
    style: list[Any] = [
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8edf3")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
        ("LINEBELOW", (0, 1), (-1, -2), 0.25, colors.HexColor("#d0d7e0")),
    ]
    if subtotal:
        style += [("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.grey)]
    table.setStyle(TableStyle(style))
    return table
