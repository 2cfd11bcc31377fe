//! Billing (V54 + sql/api/billing.sql, bff/src/billing/): subscriptions
//! that follow a tenant's plan under the lifecycle guard, plan changes with
//! proration, the month-end run (draft, finalize, PDF, e-mail) through the
//! worker, the operator's views and routes, and the operator's plan
//! catalogue (plans: create, change, price, retire).

mod annual;
mod batch;
pub(crate) mod lifecycle;
mod month_end;
mod placed;
mod plans;
mod tick;
mod worker;
