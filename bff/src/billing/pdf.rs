//! The operator invoice as a PDF a person can read: printpdf (already the
//! workspace's PDF writer, for test fixtures; pure Rust, the 14 standard
//! fonts, no system libraries) writes it, from the rows alone, so the same
//! invoice always gives the same document and nothing is stored. Tests
//! read it back with pdf-extract (the BFF's reader of uploaded PDFs).

use printpdf::{
    BuiltinFont, Mm, Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem,
};
use serde::Deserialize;
use uuid::Uuid;

/// One line of the invoice as printed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PdfLine {
    pub description: String,
    /// Quantity, unit and unit price, formatted by the database.
    pub detail: String,
    pub amount: String,
}

/// Everything the PDF shows, formatted by the database
/// (`billing_invoice_document`: billing_money, billing_day) so that the
/// PDF, the e-mail and the API agree.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InvoiceDoc {
    pub seller_name: String,
    pub seller_address: String,
    pub seller_tax_id: String,
    pub tenant_name: String,
    /// The number, or "DRAFT" before finalization.
    pub invoice_no: String,
    pub status: String,
    pub period: String,
    pub issue_date: String,
    pub due_date: String,
    pub currency: String,
    pub subtotal: String,
    pub dpp: String,
    pub tax: String,
    pub total: String,
    pub lines: Vec<PdfLine>,
}

/// The invoice `invoice` of `tenant` as the caller of `conn` may read it
/// (`billing_invoice_document`: a member its tenant's finalized ones, the
/// operator and the worker any); None when there is none for them.
pub async fn load(
    conn: impl sqlx::PgExecutor<'_>,
    tenant: Uuid,
    invoice: Uuid,
) -> sqlx::Result<Option<InvoiceDoc>> {
    let doc: Option<serde_json::Value> =
        sqlx::query_scalar("select billing_invoice_document($1, $2)")
            .bind(tenant)
            .bind(invoice)
            .fetch_one(conn)
            .await?;
    doc.map(serde_json::from_value)
        .transpose()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

struct Page {
    ops: Vec<Op>,
    y: f32,
}

const TOP: f32 = 280.0;
const BOTTOM: f32 = 20.0;

impl Page {
    fn new() -> Page {
        Page {
            ops: Vec::new(),
            y: TOP,
        }
    }

    fn text(&mut self, x: f32, size: f32, bold: bool, text: &str) {
        let font = if bold {
            BuiltinFont::HelveticaBold
        } else {
            BuiltinFont::Helvetica
        };
        self.ops.extend([
            Op::StartTextSection,
            Op::SetTextCursor {
                pos: Point {
                    x: Mm(x).into(),
                    y: Mm(self.y).into(),
                },
            },
            Op::SetFont {
                font: PdfFontHandle::Builtin(font),
                size: Pt(size),
            },
            Op::ShowText {
                items: vec![TextItem::Text(text.to_owned())],
            },
            Op::EndTextSection,
        ]);
    }
}

/// The PDF of an invoice: header (seller, customer, number, dates), one
/// row per line (description wrapped, quantity x unit price, amount) and
/// the totals (subtotal, DPP, PPN, total); more pages as the lines need.
pub fn render(doc: &InvoiceDoc) -> Vec<u8> {
    let mut pages: Vec<Page> = vec![Page::new()];
    let p = pages.last_mut().expect("a page");
    p.text(20.0, 16.0, true, &format!("INVOICE {}", doc.invoice_no));
    p.y -= 8.0;
    p.text(20.0, 10.0, true, &doc.seller_name);
    for l in [&doc.seller_address, &doc.seller_tax_id] {
        if !l.is_empty() {
            p.y -= 5.0;
            p.text(20.0, 10.0, false, l);
        }
    }
    p.y -= 10.0;
    p.text(20.0, 10.0, false, &format!("Bill to: {}", doc.tenant_name));
    p.y -= 5.0;
    p.text(20.0, 10.0, false, &format!("Period: {}", doc.period));
    p.y -= 5.0;
    p.text(
        20.0,
        10.0,
        false,
        &format!(
            "Issue date: {}   Due date: {}",
            doc.issue_date, doc.due_date
        ),
    );
    p.y -= 5.0;
    p.text(20.0, 10.0, false, &format!("Status: {}", doc.status));
    p.y -= 10.0;
    p.text(20.0, 10.0, true, "Description");
    p.text(165.0, 10.0, true, &format!("Amount ({})", doc.currency));
    for line in &doc.lines {
        let wrapped = wrap(&line.description, 80);
        let need = 5.0 * (wrapped.len() as f32 + 1.0) + 2.0;
        if pages.last().expect("a page").y - need < BOTTOM {
            pages.push(Page::new());
        }
        let p = pages.last_mut().expect("a page");
        p.y -= 7.0;
        for (i, w) in wrapped.iter().enumerate() {
            if i > 0 {
                p.y -= 5.0;
            }
            p.text(20.0, 9.0, false, w);
        }
        p.text(165.0, 9.0, false, &line.amount);
        p.y -= 5.0;
        p.text(24.0, 8.0, false, &line.detail);
    }
    if pages.last().expect("a page").y - 30.0 < BOTTOM {
        pages.push(Page::new());
    }
    let p = pages.last_mut().expect("a page");
    p.y -= 10.0;
    for (label, value, bold) in [
        ("Subtotal", &doc.subtotal, false),
        ("DPP (11/12 of the subtotal)", &doc.dpp, false),
        ("PPN 12% of DPP", &doc.tax, false),
        ("Total", &doc.total, true),
    ] {
        p.text(110.0, 10.0, bold, label);
        p.text(165.0, 10.0, bold, value);
        p.y -= 5.0;
    }
    let pages = pages
        .into_iter()
        .map(|p| PdfPage::new(Mm(210.0), Mm(297.0), p.ops))
        .collect();
    let mut warnings = Vec::new();
    PdfDocument::new(&format!("Invoice {}", doc.invoice_no))
        .with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut warnings)
}

#[cfg(test)]
mod unit {
    use super::*;

    fn doc(lines: usize) -> InvoiceDoc {
        InvoiceDoc {
            seller_name: "bizos".into(),
            seller_address: "Jakarta".into(),
            seller_tax_id: "NPWP 01.234.567.8-901.000".into(),
            tenant_name: "PT Maju".into(),
            invoice_no: "BIL-2027-000001".into(),
            status: "finalized".into(),
            period: "1 Dec 2026 - 31 Dec 2026".into(),
            issue_date: "1 Jan 2027".into(),
            due_date: "15 Jan 2027".into(),
            currency: "IDR".into(),
            subtotal: "480,000".into(),
            dpp: "440,000".into(),
            tax: "52,800".into(),
            total: "532,800".into(),
            lines: (0..lines)
                .map(|i| PdfLine {
                    description: format!(
                        "Plan basic line {i}: prorated 14 of 31 days x 310,000 / 31"
                    ),
                    detail: "14 day x 10,000".into(),
                    amount: "140,000".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_text_read_back_has_the_lines_and_totals() {
        let bytes = render(&doc(2));
        let text = pdf_extract::extract_text_from_mem(&bytes).expect("a readable PDF");
        for want in [
            "INVOICE BIL-2027-000001",
            "Bill to: PT Maju",
            "Plan basic line 1: prorated 14 of 31 days x 310,000 / 31",
            "140,000",
            "532,800",
            "52,800",
        ] {
            assert!(text.contains(want), "{want:?} not in {text}");
        }
    }

    #[test]
    fn many_lines_go_on_more_pages() {
        let bytes = render(&doc(120));
        let text = pdf_extract::extract_text_from_mem(&bytes).expect("a readable PDF");
        assert!(text.contains("Plan basic line 119"), "{text}");
        assert!(text.contains("532,800"));
    }

    #[test]
    fn wrap_breaks_at_spaces() {
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("", 4), [""]);
    }
}
