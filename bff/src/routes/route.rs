//! How a route is declared when it is one of the API's common shapes: a
//! write that is one SQL RPC ([`rpc_route!`]), a read that is one SQL
//! function ([`read_route!`]) and a keyset-paginated list of one view
//! ([`list_route!`]). Each writes the handler and its
//! `#[utoipa::path]` from one declaration, so what a route is (method,
//! path, body, function, answers) is said once and the parts every such
//! route shares (the idempotency key, the `id` path parameter, the page
//! parameters, the transaction) are written here only.

/// A write route that runs one SQL RPC in one idempotent transaction (see
/// [`super::write::rpc`]):
///
/// ```ignore
/// rpc_route! {
///     patch "/api/tickets/{id}", tag = "tickets",
///     fn update_ticket(id, TicketPatch) = "select ticket_update($1, $2)",
///     responses((status = 200, description = "the changed ticket", body = Ticket),
///               (status = 422, description = "a field is invalid", body = ErrorResponse))
/// }
/// ```
///
/// The arguments say what the function gets: `(Body)` the JSON body as
/// `$1`, `(id)` the `{id}` of the path as `$1`, `(id, Body)` both as `$1,
/// $2`. The first response's status is the route's: 201 answers Created,
/// 200 OK. The document gets the `Idempotency-Key` header, the body and the
/// `id` path parameter from the declaration.
macro_rules! rpc_route {
    (
        $(#[$meta:meta])*
        $method:ident $path:literal, tag = $tag:literal,
        fn $name:ident(id) = $sql:literal,
        responses((status = $status:tt $($ok:tt)*) $(, $more:tt)*) $(,)?
    ) => {
        $(#[$meta])*
        #[utoipa::path($method, path = $path, tag = $tag,
            params(("id" = Uuid, Path), $crate::idempotency::IdempotencyKey),
            responses((status = $status $($ok)*) $(, $more)*))]
        async fn $name(
            write: $crate::routes::write::Writer,
            $crate::extract::Path(id): $crate::extract::Path<uuid::Uuid>,
        ) -> $crate::error::Result<axum::response::Response> {
            let args = $crate::routes::write::Args::Id(id);
            $crate::routes::route::rpc_route!(@run write, $method, $status, $sql, args)
        }
    };
    (
        $(#[$meta:meta])*
        $method:ident $path:literal, tag = $tag:literal,
        fn $name:ident(id, $body:ty) = $sql:literal,
        responses((status = $status:tt $($ok:tt)*) $(, $more:tt)*) $(,)?
    ) => {
        $(#[$meta])*
        #[utoipa::path($method, path = $path, tag = $tag, request_body = $body,
            params(("id" = Uuid, Path), $crate::idempotency::IdempotencyKey),
            responses((status = $status $($ok)*) $(, $more)*))]
        async fn $name(
            write: $crate::routes::write::Writer,
            $crate::extract::Path(id): $crate::extract::Path<uuid::Uuid>,
            $crate::extract::Json(body): $crate::extract::Json<$body>,
        ) -> $crate::error::Result<axum::response::Response> {
            let args = $crate::routes::write::Args::IdBody(id, $crate::routes::write::body(&body)?);
            $crate::routes::route::rpc_route!(@run write, $method, $status, $sql, args)
        }
    };
    (
        $(#[$meta:meta])*
        $method:ident $path:literal, tag = $tag:literal,
        fn $name:ident($body:ty) = $sql:literal,
        responses((status = $status:tt $($ok:tt)*) $(, $more:tt)*) $(,)?
    ) => {
        $(#[$meta])*
        #[utoipa::path($method, path = $path, tag = $tag, request_body = $body,
            params($crate::idempotency::IdempotencyKey),
            responses((status = $status $($ok)*) $(, $more)*))]
        async fn $name(
            write: $crate::routes::write::Writer,
            $crate::extract::Json(body): $crate::extract::Json<$body>,
        ) -> $crate::error::Result<axum::response::Response> {
            let args = $crate::routes::write::Args::Body($crate::routes::write::body(&body)?);
            $crate::routes::route::rpc_route!(@run write, $method, $status, $sql, args)
        }
    };
    (@run $write:ident, $method:ident, $status:tt, $sql:literal, $args:ident) => {
        $write
            .rpc($crate::routes::route::rpc_route!(@status $status,
                $crate::routes::write::Call::$method($sql, $args)))
            .await
    };
    (@status 201, $call:expr) => {
        $call.created()
    };
    (@status 200, $call:expr) => {
        $call
    };
}

/// A keyset-paginated list of one table or view (see [`super::list`]):
/// the route's filter struct is its query parameters, the block narrows
/// the list with them.
///
/// ```ignore
/// list_route! {
///     get "/api/tickets", tag = "tickets",
///     fn list_tickets("v_tickets" by "ticket_id") |list, f: TicketFilter| {
///         list.filter("priority", "=", f.priority.map(Priority::into_string));
///     },
///     responses((status = 200, description = "tickets, newest first", body = TicketPage))
/// }
/// ```
macro_rules! list_route {
    (
        $(#[$meta:meta])*
        get $path:literal, tag = $tag:literal,
        fn $name:ident($relation:literal by $key:literal) |$list:ident, $f:ident: $filter:ty| { $($narrow:tt)* },
        responses($($responses:tt)*) $(,)?
    ) => {
        $(#[$meta])*
        #[utoipa::path(get, path = $path, tag = $tag,
            params($filter, $crate::routes::list::Page),
            responses($($responses)*))]
        async fn $name(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            caller: $crate::auth::Caller,
            $crate::extract::Query($f): $crate::extract::Query<$filter>,
            $crate::extract::Query(page): $crate::extract::Query<$crate::routes::list::Page>,
        ) -> $crate::error::Result<$crate::extract::Json<$crate::routes::list::Paged>> {
            let mut $list = $crate::routes::list::List::new($relation, $key, caller.tenant_id);
            $($narrow)*
            let page = $crate::db::read_as(&state.pool, &caller, async |tx| {
                $list.fetch(tx, page).await
            })
            .await?;
            Ok($crate::extract::Json(page))
        }
    };
}

/// A read that answers the jsonb of one SQL function, run as the caller:
/// `fn name(id) = "select f($1)"` with the `{id}` of the path as `$1`,
/// `fn name(tenant) = "select .. where tenant_id = $1"` with the caller's
/// tenant as `$1`, or `fn name() = "select f()"`. With `missing = "no ticket"`, the query
/// (`$1` the id, `$2` the caller's tenant) gives one row or none, and none
/// is 404 with that message and the id.
macro_rules! read_route {
    (
        $(#[$meta:meta])*
        get $path:literal, tag = $tag:literal,
        fn $name:ident(id) = $sql:literal, $(missing = $missing:literal,)?
        responses($($responses:tt)*) $(,)?
    ) => {
        $(#[$meta])*
        #[utoipa::path(get, path = $path, tag = $tag, params(("id" = Uuid, Path)),
            responses($($responses)*))]
        async fn $name(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            caller: $crate::auth::Caller,
            $crate::extract::Path(id): $crate::extract::Path<uuid::Uuid>,
        ) -> $crate::error::Result<$crate::extract::Json<serde_json::Value>> {
            let query = sqlx::query_scalar($sql).bind(id);
            $crate::routes::route::read_route!(@found state, caller, query, id $(, $missing)?)
        }
    };
    (@found $state:ident, $caller:ident, $query:ident, $id:ident, $missing:literal) => {{
        let query = $query.bind($caller.tenant_id);
        let found: Option<serde_json::Value> =
            $crate::db::read_optional(&$state.pool, &$caller, query).await?;
        found
            .map($crate::extract::Json)
            .ok_or_else(|| $crate::error::ApiError::NotFound(format!("{} {}", $missing, $id)))
    }};
    (@found $state:ident, $caller:ident, $query:ident, $id:ident) => {{
        let found: serde_json::Value = $crate::db::read_one(&$state.pool, &$caller, $query).await?;
        Ok($crate::extract::Json(found))
    }};
    (
        $(#[$meta:meta])*
        get $path:literal, tag = $tag:literal,
        fn $name:ident($($tenant:ident)?) = $sql:literal,
        responses($($responses:tt)*) $(,)?
    ) => {
        $(#[$meta])*
        #[utoipa::path(get, path = $path, tag = $tag, responses($($responses)*))]
        async fn $name(
            axum::extract::State(state): axum::extract::State<$crate::state::AppState>,
            caller: $crate::auth::Caller,
        ) -> $crate::error::Result<$crate::extract::Json<serde_json::Value>> {
            let query = sqlx::query_scalar($sql)
                $(.bind($crate::routes::route::read_route!(@arg caller, $tenant)))?;
            let found: serde_json::Value = $crate::db::read_one(&state.pool, &caller, query).await?;
            Ok($crate::extract::Json(found))
        }
    };
    (@arg $caller:ident, tenant) => {
        $caller.tenant_id
    };
}

pub(crate) use list_route;
pub(crate) use read_route;
pub(crate) use rpc_route;
