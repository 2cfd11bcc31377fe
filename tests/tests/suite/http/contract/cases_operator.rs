//! The operator API (tag `operator`): its own token only; a cluster
//! registered, tenants created in a tier on their region's default
//! cluster (this database, the home cluster: its URL is the operator's
//! own, no secret needed), listed, shown, suspended and resumed, a tier
//! move planned, shown and aborted. Last:
//! the clusters it registers do not change how the tenant above routes
//! (its region has none).

use serde_json::json;

use super::runner::{call, Row, Who::*, GET, NONE, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        // A tenant's token, even its super admin's, and none: refused.
        call(Admin,  GET, "/api/operator/tenants", NONE, 401),
        call(Nobody, GET, "/api/operator/tenants", NONE, 401),
        call(Admin,  POST, "/api/operator/tenants/{tenant}/suspend", NONE, 401),

        call(Operator, POST, "/api/operator/clusters", json!({"cluster": "home", "region": "eu", "url_secret": "postgres://bizos_owner@db/bizos", "default": true, "home": true}), 422)
            .field("url_secret"),
        call(Operator, POST, "/api/operator/clusters", json!({"cluster": "Home", "region": "eu", "url_secret": "HOME_URL"}), 422)
            .field("cluster"),
        call(Operator, POST, "/api/operator/clusters", json!({"cluster": "home", "region": "eu", "url_secret": "HOME_URL", "default": true, "home": true, "url": "x"}), 422)
            .field("url"),
        call(Operator, POST, "/api/operator/clusters", json!({"cluster": "home", "region": "eu", "url_secret": "HOME_URL", "default": true, "home": true}), 201)
            .is("/cluster", "home").is("/backfilled", 0),
        call(Operator, POST, "/api/operator/clusters", json!({"cluster": "home", "region": "eu", "url_secret": "HOME_URL"}), 422)
            .field("cluster"),
        call(Operator, POST, "/api/operator/clusters", json!({"cluster": "second", "region": "eu", "url_secret": "HOME_URL", "default": true}), 422)
            .field("default"),

        call(Operator, POST, "/api/operator/tenants", json!({"slug": "op-shared", "name": "Op Shared", "admin_email": "a@op.example", "admin_name": "A", "region": "eu", "tier": "shared"}), 201)
            .is("/placement/tier", "shared").is("/placement/cluster", "home").is("/placement/version", 1)
            .save("op_tenant", "/tenant_id"),
        call(Operator, POST, "/api/operator/tenants", json!({"slug": "op-schema", "name": "Op Schema", "time_zone": "Asia/Jakarta", "locale": "en", "admin_email": "a@op-schema.example", "admin_name": "A", "region": "eu", "tier": "schema"}), 201)
            .is("/placement/tier", "schema").prefix("/placement/schema_name", "t_")
            .single_node(),
        call(Operator, POST, "/api/operator/tenants", json!({"slug": "op-shared", "name": "Again", "admin_email": "b@op.example", "admin_name": "B", "region": "eu", "tier": "shared"}), 422)
            .field("slug"),
        call(Operator, POST, "/api/operator/tenants", json!({"slug": "op-mars", "name": "Op", "admin_email": "a@op.example", "admin_name": "A", "region": "mars", "tier": "shared"}), 422)
            .field("region"),
        call(Operator, POST, "/api/operator/tenants", json!({"slug": "op-x", "name": "Op", "admin_email": "a@op.example", "admin_name": "A", "region": "eu", "tier": "galaxy"}), 422)
            .field("tier"),
        call(Operator, POST, "/api/operator/tenants", json!({"slug": "op-x", "name": "Op", "admin_email": "a@op.example", "admin_name": "A", "tier": "shared"}), 422),
        call(Operator, POST, "/api/operator/tenants", json!({"slug": "op-x", "name": "Op", "admin_email": "a@op.example", "admin_name": "A", "region": "eu", "tier": "shared", "cluster": "home"}), 422)
            .field("cluster"),

        // The list: placed tenants, and this database's tenants without a
        // row (version 0, no cluster).
        call(Operator, GET, "/api/operator/tenants", NONE, 200)
            .at_least("/items", 2).any("/items", "/version", 0).any("/items", "/cluster", "home"),
        call(Operator, GET, "/api/operator/tenants/{op_tenant}", NONE, 200)
            .is("/tenant/slug", "op-shared").is("/tenant/status", "active").is("/placement/version", 1),
        call(Operator, GET, "/api/operator/tenants/{tenant}", NONE, 200)
            .is("/placement/version", 0).is("/tenant/slug", "acme"),
        call(Operator, GET, "/api/operator/tenants/{missing}", NONE, 404),
        call(Operator, GET, "/api/operator/tenants/not-an-id", NONE, 400),

        call(Operator, POST, "/api/operator/tenants/{op_tenant}/suspend", NONE, 200)
            .is("/status", "suspended"),
        call(Operator, POST, "/api/operator/tenants/{op_tenant}/resume", NONE, 200)
            .is("/status", "active"),
        call(Operator, POST, "/api/operator/tenants/{missing}/suspend", NONE, 404),
        call(Operator, POST, "/api/operator/tenants/{missing}/resume", NONE, 404),

        // A tier move: refused for a tenant without a placement, a target
        // where it is, a schema for another tier or an unknown key; a move
        // planned (its job queued), shown, and aborted before it starts.
        // Tier moves are the single node's (Citus moves shards instead).
        call(Admin,    POST, "/api/operator/tenants/{op_tenant}/move", json!({"to_tier": "schema"}), 401),
        call(Operator, POST, "/api/operator/tenants/{missing}/move", json!({"to_tier": "schema"}), 404)
            .single_node(),
        call(Operator, POST, "/api/operator/tenants/{op_tenant}/move", json!({"to_tier": "shared"}), 422)
            .field("to_tier")
            .single_node(),
        call(Operator, POST, "/api/operator/tenants/{op_tenant}/move", json!({"to_tier": "isolated", "to_schema": "s1"}), 422)
            .field("to_schema")
            .single_node(),
        call(Operator, POST, "/api/operator/tenants/{op_tenant}/move", json!({"to_tier": "galaxy"}), 422)
            .field("to_tier")
            .single_node(),
        call(Operator, POST, "/api/operator/tenants/{op_tenant}/move", json!({"to_tier": "isolated", "to": "x"}), 422)
            .field("to")
            .single_node(),
        call(Operator, POST, "/api/operator/tenants/{op_tenant}/move/abort", NONE, 404)
            .single_node(),
        call(Operator, POST, "/api/operator/tenants/{op_tenant}/move", json!({"to_tier": "isolated", "to_database": "op_isolated_never_made"}), 202)
            .save("op_move", "/move_id")
            .single_node(),
        call(Operator, POST, "/api/operator/tenants/{op_tenant}/move", json!({"to_tier": "isolated"}), 422)
            .field("tenant")
            .single_node(),
        call(Operator, GET, "/api/operator/moves/{op_move}", NONE, 200)
            .is("/to_tier", "isolated").is("/to_database", "op_isolated_never_made").is("/abort_requested", false)
            .single_node(),
        call(Operator, POST, "/api/operator/tenants/{op_tenant}/move/abort", NONE, 200)
            .is("/abort_requested", true)
            .single_node(),
        call(Operator, GET, "/api/operator/moves/{op_move}", NONE, 200)
            .is("/abort_requested", true)
            .single_node(),
        call(Operator, GET, "/api/operator/moves/{missing}", NONE, 404)
            .single_node(),
    ]
}
