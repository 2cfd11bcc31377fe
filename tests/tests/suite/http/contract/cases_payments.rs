//! Payments (tag `payments`, and the operator's `/api/operator/payments`):
//! an operator invoice of the tenant made in SQL, paid by a Midtrans
//! notification and a Stripe event signed in SQL with the runner's secrets
//! (pgcrypto), refused unsigned; a transfer proof of another invoice,
//! rejected, and one approved; the lists. Single node: on Citus the
//! control database is the coordinator, and tenants get no subscription
//! there (billing's trigger is not installed on Citus).

use serde_json::json;

use super::runner::{call, form, signed, sql, Bytes, Row, Who::*, GET, NONE, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        sql("insert into plans (plan_code, label, monthly_price) values ('contract', 'Contract', 100000)
             on conflict (plan_code) do nothing", &[])
            .single_node(),
        sql("update tenants set plan_code = 'contract' where tenant_id = $1::uuid", &["tenant"])
            .single_node(),
        sql("insert into billing_invoices (tenant_id, subscription_id, period_start, period_end, finalize_after, subtotal, total)
             select tenant_id, subscription_id, '2026-01-01', '2026-02-01', now(), 110000, 110000
               from subscriptions where tenant_id = $1::uuid returning billing_invoice_id::text", &["tenant"])
            .save("bill_a", "")
            .single_node(),
        sql("update billing_invoices set status = 'finalized', invoice_no = 'BIL-C-1', issue_date = '2026-02-01', due_date = '2099-01-01'
              where billing_invoice_id = $1::uuid", &["bill_a"])
            .single_node(),
        sql("insert into billing_invoices (tenant_id, subscription_id, period_start, period_end, finalize_after, subtotal, total)
             select tenant_id, subscription_id, '2026-02-01', '2026-03-01', now(), 110000, 110000
               from subscriptions where tenant_id = $1::uuid returning billing_invoice_id::text", &["tenant"])
            .save("bill_b", "")
            .single_node(),
        sql("update billing_invoices set status = 'finalized', invoice_no = 'BIL-C-2', issue_date = '2026-03-01', due_date = '2099-01-01'
              where billing_invoice_id = $1::uuid", &["bill_b"])
            .single_node(),

        // Midtrans: the signature over the fields as sent.
        sql("select encode(sha512(convert_to($1 || '200' || '110000.00' || 'SB-Mid-server-contract-0123456789', 'UTF8')), 'hex')", &["bill_a"])
            .save("mid_sig", "")
            .single_node(),
        call(Nobody, POST, "/api/payments/midtrans", json!({"order_id": "{bill_a}", "status_code": "200", "gross_amount": "110000.00",
              "signature_key": "00", "transaction_id": "tx-contract", "transaction_status": "settlement"}), 401)
            .single_node(),
        call(Nobody, POST, "/api/payments/midtrans", json!({"order_id": "{bill_a}", "status_code": "200", "gross_amount": "110000.00",
              "signature_key": "{mid_sig}", "transaction_id": "tx-contract", "transaction_status": "settlement",
              "transaction_time": "2026-02-03 10:00:00", "payment_type": "bank_transfer", "currency": "IDR"}), 200)
            .is("/outcome", "accepted").is("/effect", "payment_recorded")
            .single_node(),
        call(Nobody, POST, "/api/payments/midtrans", json!({"order_id": "{bill_a}", "status_code": "200", "gross_amount": "110000.00",
              "signature_key": "{mid_sig}", "transaction_id": "tx-contract", "transaction_status": "settlement",
              "transaction_time": "2026-02-03 10:00:00", "payment_type": "bank_transfer", "currency": "IDR"}), 200)
            .is("/outcome", "duplicate")
            .single_node(),

        // Stripe: the event and its Stripe-Signature made in SQL.
        sql("select '{\"id\": \"evt_contract\", \"object\": \"event\", \"type\": \"invoice.payment_failed\", \"created\": 1790000000, \"data\": {\"object\": {\"id\": \"in_contract\", \"object\": \"invoice\", \"attempt_count\": 1, \"currency\": \"idr\", \"metadata\": {\"bizos_invoice_id\": \"' || $1 || '\"}}}}'", &["bill_b"])
            .save("stripe_body", "")
            .single_node(),
        sql("select 't=' || t || ',v1=' || encode(extensions.hmac(convert_to(t || '.' || $1, 'UTF8'), convert_to('whsec_contract_0123456789abcdef', 'UTF8'), 'sha256'), 'hex')
               from (select extract(epoch from now())::bigint::text as t) x", &["stripe_body"])
            .save("stripe_sig", "")
            .single_node(),
        call(Nobody, POST, "/api/payments/stripe", signed("application/json", "Stripe-Signature", "t=1,v1=00", Bytes::Text("{stripe_body}")), 401)
            .single_node(),
        call(Nobody, POST, "/api/payments/stripe", signed("application/json", "Stripe-Signature", "{stripe_sig}", Bytes::Text("{stripe_body}")), 200)
            .is("/outcome", "accepted").is("/effect", "failure_recorded")
            .single_node(),

        // Transfer proofs of the second invoice: one rejected, one approved.
        call(Sales, POST, "/api/billing/invoices/{bill_b}/transfer-proofs", form(&[], "slip.pdf", Bytes::Pdf(2000)), 403)
            .single_node(),
        call(Admin, POST, "/api/billing/invoices/{missing}/transfer-proofs", form(&[], "slip.pdf", Bytes::Pdf(2000)), 404)
            .single_node(),
        call(Admin, POST, "/api/billing/invoices/{bill_b}/transfer-proofs", form(&[], "slip.pdf", Bytes::Pdf(2000)), 201)
            .is("/status", "pending").save("proof_1", "/proof_id")
            .single_node(),
        call(Admin, POST, "/api/billing/invoices/{bill_b}/transfer-proofs", form(&[], "slip2.png", Bytes::Png), 201)
            .save("proof_2", "/proof_id")
            .single_node(),
        call(Admin, GET, "/api/operator/payments/transfer-proofs", NONE, 401)
            .single_node(),
        call(Operator, GET, "/api/operator/payments/transfer-proofs", NONE, 200).len("/items", 2)
            .single_node(),
        call(Operator, GET, "/api/operator/payments/transfer-proofs?status=nope", NONE, 422).field("status")
            .single_node(),
        call(Operator, POST, "/api/operator/payments/transfer-proofs/{proof_1}/reject", json!({}), 422)
            .single_node(),
        call(Operator, POST, "/api/operator/payments/transfer-proofs/{proof_1}/reject", json!({"reason": "unreadable"}), 200)
            .is("/status", "rejected")
            .single_node(),
        call(Operator, POST, "/api/operator/payments/transfer-proofs/{proof_2}/approve", json!({"amount": "x"}), 422)
            .single_node(),
        call(Operator, POST, "/api/operator/payments/transfer-proofs/{proof_2}/approve", json!({}), 200)
            .is("/status", "approved").is("/payment/invoice_status", "paid")
            .single_node(),
        call(Operator, POST, "/api/operator/payments/transfer-proofs/{missing}/approve", json!({}), 404)
            .single_node(),
        call(Operator, GET, "/api/operator/payments/deliveries", NONE, 200).at_least("/items", 5)
            .single_node(),
        call(Admin, GET, "/api/billing/transfer-proofs", NONE, 200).len("/items", 2)
            .single_node(),
        call(Admin, GET, "/api/billing/payments", NONE, 200).len("/items", 2)
            .single_node(),
    ]
}
