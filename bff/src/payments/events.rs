//! A provider's delivery read as one normalised event, the shape
//! `payment_event_apply` (sql/api/payments.sql) takes: which invoice, and
//! whether the money came (`paid`), did not (`failed`), or nothing is
//! decided yet (`pending`, `ignored`). The database decides what the
//! event does; this module only reads the providers' documented shapes.
//!
//! - Stripe (an Event object): `invoice.paid` (data.object is an Invoice:
//!   `amount_paid`, `currency`, `metadata.bizos_invoice_id`),
//!   `invoice.payment_failed` (an Invoice: `attempt_count`),
//!   `payment_intent.succeeded` / `payment_intent.payment_failed` (a
//!   PaymentIntent: `amount_received`, `metadata.bizos_invoice_id`,
//!   `invoice`, `last_payment_error.message`). Amounts are in the
//!   currency's smallest unit (IDR in hundredths, as Stripe counts it;
//!   JPY and the other zero-decimal currencies in units). A payment's
//!   reference is the Stripe invoice when there is one, else the
//!   PaymentIntent: `invoice.paid` and `payment_intent.succeeded` of the
//!   same payment are one payment.
//! - Midtrans (an HTTP notification): `order_id` is the bizos invoice id
//!   (optionally `<invoice id>.<attempt>`), `transaction_status`
//!   settlement, or capture with `fraud_status` accept → paid; deny,
//!   cancel, expire, failure → failed; pending, or capture with fraud
//!   status challenge → pending. The event's id is the transaction and
//!   its status; the payment's reference is the transaction.

use serde_json::{json, Value};

/// A delivery that is not of the provider's documented shape (answered
/// 400 after it is stored: a retry would not change it).
#[derive(Debug, PartialEq, Eq)]
pub struct BadPayload(pub String);

/// The normalised event.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    pub provider: &'static str,
    pub event_id: String,
    pub event_type: String,
    /// paid | failed | pending | ignored
    pub outcome: &'static str,
    pub invoice_id: Option<uuid::Uuid>,
    /// Decimal, in the currency's main unit.
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub reference: Option<String>,
    pub reason: Option<String>,
    /// Seconds since the epoch (Stripe's `created`), or the provider's
    /// local time as given (Midtrans's `transaction_time`, Asia/Jakarta).
    pub occurred_at: Option<String>,
}

impl ProviderEvent {
    /// The JSON `payment_event_apply` takes.
    pub fn to_json(&self) -> Value {
        json!({
            "provider": self.provider,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "outcome": self.outcome,
            "invoice_id": self.invoice_id,
            "amount": self.amount,
            "currency": self.currency,
            "reference": self.reference,
            "reason": self.reason,
            "occurred_at": self.occurred_at,
        })
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn invoice_of(metadata: Option<&Value>) -> Option<uuid::Uuid> {
    metadata
        .and_then(|m| m.get("bizos_invoice_id"))
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
}

const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// A Stripe amount (an integer of the smallest unit) as a decimal of the
/// main unit.
fn stripe_amount(minor: i64, currency: &str) -> String {
    if ZERO_DECIMAL.contains(&currency.to_ascii_lowercase().as_str()) {
        return minor.to_string();
    }
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{}.{:02}", m / 100, m % 100)
}

/// Reads a Stripe Event.
pub fn stripe(body: &[u8]) -> Result<ProviderEvent, BadPayload> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| BadPayload(format!("body: not JSON ({e})")))?;
    let event_id = text(&v, "id")
        .filter(|s| s.starts_with("evt_"))
        .ok_or_else(|| BadPayload("id: an event id (evt_…) is required".into()))?
        .to_owned();
    let event_type = text(&v, "type")
        .ok_or_else(|| BadPayload("type: is required".into()))?
        .to_owned();
    let obj = v
        .pointer("/data/object")
        .filter(|o| o.is_object())
        .ok_or_else(|| BadPayload("data.object: is required".into()))?;
    let occurred_at = v
        .get("created")
        .and_then(Value::as_i64)
        .map(|t| t.to_string());
    let currency = text(obj, "currency").map(str::to_ascii_uppercase);
    let amount_of = |key: &str| -> Option<String> {
        let minor = obj.get(key).and_then(Value::as_i64)?;
        Some(stripe_amount(minor, currency.as_deref().unwrap_or("idr")))
    };
    let mut e = ProviderEvent {
        provider: "stripe",
        event_id,
        event_type: event_type.clone(),
        outcome: "ignored",
        invoice_id: invoice_of(obj.get("metadata")),
        amount: None,
        currency: currency.clone(),
        reference: None,
        reason: None,
        occurred_at,
    };
    match event_type.as_str() {
        "invoice.paid" | "invoice.payment_failed" => {
            e.reference = text(obj, "id").map(str::to_owned);
            if event_type == "invoice.paid" {
                e.outcome = "paid";
                e.amount = amount_of("amount_paid");
            } else {
                e.outcome = "failed";
                e.reason = Some(match obj.get("attempt_count").and_then(Value::as_i64) {
                    Some(n) => format!("card payment failed (attempt {n})"),
                    None => "card payment failed".into(),
                });
            }
        }
        "payment_intent.succeeded" | "payment_intent.payment_failed" => {
            e.reference = text(obj, "invoice")
                .or_else(|| text(obj, "id"))
                .map(str::to_owned);
            if event_type == "payment_intent.succeeded" {
                e.outcome = "paid";
                e.amount = amount_of("amount_received");
            } else {
                e.outcome = "failed";
                e.reason = Some(
                    obj.pointer("/last_payment_error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("payment failed")
                        .chars()
                        .take(500)
                        .collect(),
                );
            }
        }
        _ => {}
    }
    if e.outcome == "paid" && e.amount.is_none() {
        return Err(BadPayload(format!(
            "data.object: {} without its amount",
            e.event_type
        )));
    }
    Ok(e)
}

/// The fields of a Midtrans notification its signature covers.
pub struct MidtransSigned<'a> {
    pub order_id: &'a str,
    pub status_code: &'a str,
    pub gross_amount: &'a str,
    pub signature_key: Option<&'a str>,
}

/// The signed fields of a notification, as strings exactly as sent.
pub fn midtrans_signed(v: &Value) -> Result<MidtransSigned<'_>, BadPayload> {
    let need = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| BadPayload(format!("{k}: a string is required")))
    };
    Ok(MidtransSigned {
        order_id: need("order_id")?,
        status_code: need("status_code")?,
        gross_amount: need("gross_amount")?,
        signature_key: v.get("signature_key").and_then(Value::as_str),
    })
}

/// Reads a Midtrans notification (its signature checked already).
pub fn midtrans(v: &Value) -> Result<ProviderEvent, BadPayload> {
    let signed = midtrans_signed(v)?;
    let transaction_id = text(v, "transaction_id")
        .ok_or_else(|| BadPayload("transaction_id: is required".into()))?;
    let status = text(v, "transaction_status")
        .ok_or_else(|| BadPayload("transaction_status: is required".into()))?;
    let fraud = text(v, "fraud_status");
    let outcome = match (status, fraud) {
        ("settlement", _) => "paid",
        ("capture", Some("accept") | None) => "paid",
        ("capture", _) => "pending",
        ("deny" | "cancel" | "expire" | "failure", _) => "failed",
        ("pending", _) => "pending",
        _ => "ignored",
    };
    let invoice_id = signed
        .order_id
        .split('.')
        .next()
        .and_then(|s| uuid::Uuid::parse_str(s).ok());
    let gross = signed.gross_amount.trim();
    if gross.parse::<f64>().is_err() {
        return Err(BadPayload("gross_amount: must be a decimal number".into()));
    }
    Ok(ProviderEvent {
        provider: "midtrans",
        event_id: format!(
            "{transaction_id}:{status}{}",
            fraud.map(|f| format!(":{f}")).unwrap_or_default()
        ),
        event_type: status.to_owned(),
        outcome,
        invoice_id,
        amount: Some(gross.to_owned()),
        currency: text(v, "currency")
            .map(str::to_ascii_uppercase)
            .or(Some("IDR".into())),
        reference: Some(transaction_id.to_owned()),
        reason: match outcome {
            "failed" => Some(format!(
                "{} payment {status}{}",
                text(v, "payment_type").unwrap_or("midtrans"),
                fraud
                    .map(|f| format!(" (fraud status {f})"))
                    .unwrap_or_default()
            )),
            _ => None,
        },
        occurred_at: text(v, "settlement_time")
            .or_else(|| text(v, "transaction_time"))
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_invoice_paid_and_the_intent_of_it_are_one_payment() {
        let inv = uuid::Uuid::new_v4();
        let paid = stripe(
            json!({"id": "evt_1", "object": "event", "type": "invoice.paid", "created": 1790000000,
                   "data": {"object": {"id": "in_1", "object": "invoice", "amount_paid": 1500000,
                   "currency": "idr", "metadata": {"bizos_invoice_id": inv.to_string()}}}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(paid.outcome, "paid");
        assert_eq!(paid.amount.as_deref(), Some("15000.00"));
        assert_eq!(paid.invoice_id, Some(inv));
        let pi = stripe(
            json!({"id": "evt_2", "type": "payment_intent.succeeded", "created": 1790000001,
                   "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount_received": 1500000,
                   "currency": "idr", "invoice": "in_1", "metadata": {"bizos_invoice_id": inv.to_string()}}}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(pi.reference, paid.reference);
        assert_eq!(stripe_amount(500, "jpy"), "500");
        assert!(stripe(b"{}").is_err());
    }

    #[test]
    fn midtrans_statuses() {
        let inv = uuid::Uuid::new_v4();
        let n = |status: &str, fraud: Option<&str>| {
            let mut v = json!({"order_id": format!("{inv}.1"), "status_code": "200",
                "gross_amount": "15000.00", "transaction_id": "t-1", "transaction_status": status,
                "payment_type": "credit_card"});
            if let Some(f) = fraud {
                v["fraud_status"] = json!(f);
            }
            midtrans(&v).unwrap()
        };
        assert_eq!(n("settlement", None).outcome, "paid");
        assert_eq!(n("capture", Some("accept")).outcome, "paid");
        assert_eq!(n("capture", Some("challenge")).outcome, "pending");
        assert_eq!(n("deny", Some("deny")).outcome, "failed");
        assert_eq!(n("expire", None).outcome, "failed");
        assert_eq!(n("pending", None).outcome, "pending");
        assert_eq!(n("settlement", None).invoice_id, Some(inv));
        assert_ne!(n("settlement", None).event_id, n("pending", None).event_id);
    }
}
