//! Leads (CRM-1, CRM-2): create as a bundle, change, assign, list, read.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::{list_route, read_route, rpc_route};
use super::shapes::shapes;
use super::shapes::Customer;
use crate::payload::{
    blank_is_none, object, Change, Channel, DeptCode, Id, LeadState, LeadStatus, NonBlank, Patch,
    Priority, Quantity, Text,
};
use crate::state::AppState;
use chrono::DateTime;
use chrono::Utc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_lead, list_leads))
        .routes(routes!(update_lead, get_lead))
        .routes(routes!(assign_lead))
}

/// `crm_create_lead_bundle`: the customer is found by NPWP, e-mail or phone
/// (or created), with its prospect and, with `rfq`, an RFQ ticket for ops.
/// The e-mail, phone and NPWP formats are the database's to judge.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadCreate {
    channel: Channel,
    company_name: NonBlank<200>,
    contact_name: Option<Text<200>>,
    contact_email: Option<Text<320>>,
    contact_phone: Option<Text<50>>,
    npwp: Option<Text<40>>,
    city: Option<Text<100>>,
    notes: Option<Text<4000>>,
    /// Managers may give the lead to a salesperson; a salesperson's leads
    /// are their own.
    #[serde(default, deserialize_with = "blank_is_none")]
    sales_owner_user_id: Option<Id>,
    /// A request for quotation: becomes an inquiry_tariff ticket for ops.
    #[serde(default, deserialize_with = "object")]
    rfq: Option<Rfq>,
}

/// The RFQ of a new lead (`ticket_create` of an inquiry_tariff ticket).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rfq {
    origin: NonBlank<200>,
    destination: NonBlank<200>,
    commodity: Option<Text<200>>,
    #[serde(default, deserialize_with = "blank_is_none")]
    weight_kg: Option<Quantity>,
    #[serde(default, deserialize_with = "blank_is_none")]
    volume_cbm: Option<Quantity>,
    /// The ops department that quotes, e.g. OPS-JKT.
    dept_target: DeptCode,
    /// normal when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    priority: Option<Priority>,
    /// "RFQ <lead no>: <origin> → <destination>" when absent.
    subject: Option<Text<200>>,
    description: Option<Text<20000>>,
}

/// `lead_update`: only the keys sent change; null clears an optional
/// field. At least one key.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadPatch {
    /// The lead lifecycle (the database checks the transition).
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = LeadStatus)]
    status: Change<LeadStatus>,
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = Channel)]
    channel: Change<Channel>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<200>>)]
    contact_name: Patch<Text<200>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<320>>)]
    contact_email: Patch<Text<320>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<50>>)]
    contact_phone: Patch<Text<50>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<100>>)]
    city: Patch<Text<100>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<4000>>)]
    notes: Patch<Text<4000>>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadAssign {
    /// The salesperson who will own the lead and its prospect.
    salesperson_user_id: Id,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeadFilter {
    status: Option<LeadState>,
    channel: Option<Channel>,
    sales_owner_user_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    /// Created at or after (RFC 3339).
    created_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Created before (RFC 3339).
    created_to: Option<chrono::DateTime<chrono::Utc>>,
    /// Substring of the lead number, company, contact or e-mail.
    q: Option<String>,
}

rpc_route! {
    post "/api/leads", tag = "leads",
    fn create_lead(LeadCreate) = "select crm_create_lead_bundle($1)",
    responses((status = 201, description = "the lead, its customer and prospect", body = LeadCreated),
              (status = 422, description = "a field is invalid", body = ErrorResponse))
}

rpc_route! {
    patch "/api/leads/{id}", tag = "leads",
    fn update_lead(id, LeadPatch) = "select lead_update($1, $2)",
    responses((status = 200, description = "the changed lead", body = Lead),
              (status = 404, description = "no such lead (or not visible)", body = ErrorResponse),
              (status = 422, description = "a field is invalid, nothing to change, or not an allowed transition", body = ErrorResponse))
}

rpc_route! {
    post "/api/leads/{id}/assign", tag = "leads",
    fn assign_lead(id, LeadAssign) =
        "select crm_assign_lead($1, ($2 ->> 'salesperson_user_id')::uuid)",
    responses((status = 200, description = "lead assigned", body = LeadAssigned),
              (status = 403, description = "only manager roles assign", body = ErrorResponse))
}

list_route! {
    get "/api/leads", tag = "leads",
    fn list_leads("leads" by "lead_id") |list, f: LeadFilter| {
        list.filter("status", "=", f.status.map(LeadState::into_string))
            .filter("channel", "=", f.channel.map(Channel::into_string))
            .filter("sales_owner_user_id", "=", f.sales_owner_user_id)
            .filter("customer_id", "=", f.customer_id)
            .filter("created_at", ">=", f.created_from)
            .filter("created_at", "<", f.created_to)
            .search(
                &["lead_no", "company_name", "contact_name", "contact_email"],
                f.q,
            );
    },
    responses((status = 200, description = "leads the caller may see, newest first", body = LeadPage))
}

read_route! {
    get "/api/leads/{id}", tag = "leads",
    fn get_lead(id) =
        "select to_jsonb(l) || jsonb_build_object('customer', to_jsonb(c))
           from leads l
           left join customers c on c.tenant_id = l.tenant_id and c.customer_id = l.customer_id
          where l.tenant_id = $2 and l.lead_id = $1",
    missing = "no lead",
    responses((status = 200, description = "the lead", body = LeadDetail),
              (status = 404, description = "no such lead (or not visible)", body = ErrorResponse))
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

// The columns of `leads`: the list row and the detail share them.
shapes! {
    columns {
        tenant_id: Uuid,
        lead_id: Uuid,
        /// LEAD-YYYY-NNNNNN
        lead_no: Option<String>,
        channel: crate::payload::Channel,
        status: crate::payload::LeadState,
        company_name: String,
        contact_name: Option<String>,
        contact_email: Option<String>,
        contact_phone: Option<String>,
        npwp: Option<String>,
        city: Option<String>,
        notes: Option<String>,
        customer_id: Uuid,
        prospect_id: Uuid,
        sales_owner_user_id: Option<Uuid>,
        assigned_at: Option<DateTime<Utc>>,
        created_by: Option<Uuid>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        /// The key of the row in the file it was imported from.
        external_ref: Option<String>,
        /// Handed over to the owner of an existing customer its creator
        /// may not read (the creator no longer sees it).
        handed_over: bool,
    }

    /// A lead as the caller may read it (a row of `leads`).
    pub struct Lead {}

    /// A lead with its customer (null when the caller may not read it).
    pub struct LeadDetail {
        customer: Option<Customer>,
    }
}

shapes! {
    /// `crm_create_lead_bundle`: the lead, and what dedup found. Keys the
    /// caller may not learn (the customer and prospect of a customer hidden
    /// from them) are left out; `handed_over` says the lead went to the
    /// owner of an existing customer.
    pub struct LeadCreated {
        lead_id: Uuid,
        lead_no: String,
        customer_id: Option<Uuid>,
        prospect_id: Option<Uuid>,
        /// The RFQ ticket, when `rfq` was sent.
        ticket_id: Option<Uuid>,
        ticket_no: Option<String>,
        /// A new customer was created (no existing one matched).
        customer_created: Option<bool>,
        /// npwp, email, phone or company: the key an existing customer matched on.
        matched_on: Option<String>,
        /// Customers a person should look at (only ones the caller may read).
        candidates: Option<Vec<Candidate>>,
        /// The lead went to the owner of a matched customer the caller may not
        /// read; then the response shows the lead as the caller typed it
        /// (the keys below) and no customer or prospect.
        handed_over: Option<bool>,
        /// NEW or ASSIGNED
        status: Option<crate::payload::LeadState>,
        channel: Option<crate::payload::Channel>,
        company_name: Option<String>,
        contact_name: Option<String>,
        contact_email: Option<String>,
        contact_phone: Option<String>,
        npwp: Option<String>,
        city: Option<String>,
        notes: Option<String>,
    }

    /// A possible duplicate customer.
    pub struct Candidate {
        customer_id: Uuid,
        company_name: String,
        /// "same contact, different NPWP" or "same name, another NPWP or
        /// none" (customers with similar names are listed on the new customer
        /// once checked: `lookalikes` of GET /api/customers/{id})
        reason: String,
    }

    /// `crm_assign_lead`.
    pub struct LeadAssigned {
        lead_id: Uuid,
        sales_owner_user_id: Uuid,
        prospect_id: Uuid,
    }

    /// One page of leads.
    pub struct LeadPage {
        items: Vec<Lead>,
        /// Pass as `after` for the next page; null on the last page.
        next_cursor: Option<String>,
    }
}
