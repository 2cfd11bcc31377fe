//! The one loop behind the contract's tables: a [`Row`] is a call (who,
//! method, path, body, the status wanted) or a statement run as the owner,
//! and [`Runner::run`] sends each in turn, checks its response against the
//! OpenAPI document and remembers what later rows refer to.
//!
//! Paths, form fields and text files name what earlier rows saved in
//! braces (`/api/leads/{lead}`); a JSON body names one as a whole string
//! (`"customer_id": "{customer}"`). Known from the start: the callers' ids
//! (`{sales}`, `{admin}`, ...), `{tenant}`, the tenant's dates (`{today}`,
//! `{today-5}`, `{today-30}`, `{month}`, `{month_start}`, ...) and `{missing}`, a fresh
//! id nothing has.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::Location;
use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_tests::{spawn_app_with, TestApp, TestDb};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{postgres::PgRow, Row as _};
use uuid::Uuid;

pub const GET: Method = Method::GET;
pub const POST: Method = Method::POST;
pub const PUT: Method = Method::PUT;
pub const PATCH: Method = Method::PATCH;
pub const DELETE: Method = Method::DELETE;

/// Who calls: nobody (no token), the fleet's operator (its own token) or
/// one of the tenant's users, one per role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    Nobody,
    /// The operator API's token (BIZOS_OPERATOR_TOKEN), no tenant's.
    Operator,
    Marketing,
    /// The sales manager, `Sales`'s manager.
    Manager,
    /// A salesperson in `Manager`'s team.
    Sales,
    Ops,
    Finance,
    Director,
    Admin,
}

/// The Stripe webhook secret and Midtrans server key of the runner's
/// server (the rows of cases_payments sign with them in SQL).
pub const STRIPE_SECRET: &str = "whsec_contract_0123456789abcdef";
pub const MIDTRANS_KEY: &str = "SB-Mid-server-contract-0123456789";

/// The token of the runner's operator API.
const OPERATOR_TOKEN: &str = "contract-operator-token-0123456789abcdef";

impl Who {
    const USERS: [(Who, &'static str, &'static str); 7] = [
        (Who::Marketing, "marketing", "marketing_manager"),
        (Who::Manager, "manager", "sales_manager"),
        (Who::Sales, "sales", "salesperson"),
        (Who::Ops, "ops", "ops"),
        (Who::Finance, "finance", "finance"),
        (Who::Director, "director", "director"),
        (Who::Admin, "admin", "super_admin"),
    ];
}

/// The bytes of a file or a raw body.
pub enum Bytes {
    /// A PDF of about this many bytes.
    Pdf(usize),
    /// A one-pixel PNG.
    Png,
    /// Text, with `{fixtures}` filled in.
    Text(&'static str),
    /// This many spaces.
    Blank(usize),
    Literal(&'static [u8]),
}

/// What a request carries.
pub enum Send {
    None,
    /// JSON; a string that is exactly `{name}` becomes that fixture.
    Json(Value),
    /// A body with this content type.
    Raw(&'static str, Bytes),
    /// A multipart form: text fields (`{fixtures}` filled in), then `file`.
    Form(&'static [(&'static str, &'static str)], &'static str, Bytes),
    /// A body with this content type and one more header (a provider's
    /// signature), `{fixtures}` filled in.
    Signed(&'static str, &'static str, &'static str, Bytes),
}

/// No body.
pub const NONE: Send = Send::None;

impl From<Value> for Send {
    fn from(v: Value) -> Send {
        Send::Json(v)
    }
}

pub fn raw(content_type: &'static str, bytes: Bytes) -> Send {
    Send::Raw(content_type, bytes)
}

pub fn signed(
    content_type: &'static str,
    header: &'static str,
    value: &'static str,
    bytes: Bytes,
) -> Send {
    Send::Signed(content_type, header, value, bytes)
}

pub fn form(fields: &'static [(&'static str, &'static str)], file: &'static str, b: Bytes) -> Send {
    Send::Form(fields, file, b)
}

/// The statuses a row accepts: one (`201`) or any of a few (`[200, 202]`).
pub struct Want(Vec<u16>);

impl From<u16> for Want {
    fn from(s: u16) -> Want {
        Want(vec![s])
    }
}

impl<const N: usize> From<[u16; N]> for Want {
    fn from(s: [u16; N]) -> Want {
        Want(s.to_vec())
    }
}

/// What a response body must hold, at a JSON pointer (`""` is the whole).
#[derive(Debug)]
enum Expect {
    Is(&'static str, Value),
    Len(&'static str, usize),
    AtLeast(&'static str, usize),
    /// A non-empty string, array or object.
    Filled(&'static str),
    Kind(&'static str, &'static str),
    Prefix(&'static str, &'static str),
    /// Some item of the array has this value at the inner pointer.
    Any(&'static str, &'static str, Value),
}

impl Expect {
    fn holds(&self, body: &Value) -> bool {
        let at = |p: &str| body.pointer(p).unwrap_or(&Value::Null);
        let len = |v: &Value| match v {
            Value::Array(a) => Some(a.len()),
            Value::Object(o) => Some(o.len()),
            Value::String(s) => Some(s.chars().count()),
            _ => None,
        };
        match self {
            Expect::Is(p, v) => at(p) == v,
            Expect::Len(p, n) => at(p).as_array().map(Vec::len) == Some(*n),
            Expect::AtLeast(p, n) => at(p).as_array().is_some_and(|a| a.len() >= *n),
            Expect::Filled(p) => len(at(p)).is_some_and(|n| n > 0),
            Expect::Kind(p, kind) => match *kind {
                "string" => at(p).is_string(),
                "object" => at(p).is_object(),
                "array" => at(p).is_array(),
                other => panic!("no such kind {other}"),
            },
            Expect::Prefix(p, s) => at(p).as_str().is_some_and(|v| v.starts_with(s)),
            Expect::Any(p, inner, v) => at(p)
                .as_array()
                .is_some_and(|a| a.iter().any(|i| i.pointer(inner) == Some(v))),
        }
    }
}

/// On the Citus cluster, where imports are not supported (docs/citus.md).
enum OnCitus {
    Same,
    /// Answered with this status instead; nothing is saved or checked.
    Status(u16),
    /// Not sent at all.
    Skip,
}

enum Step {
    Http {
        who: Who,
        method: Method,
        path: &'static str,
        body: Send,
    },
    /// A statement run as the table owner with fixtures bound as text;
    /// its value is the first column of its first row (null for none).
    Sql {
        sql: &'static str,
        binds: &'static [&'static str],
    },
}

/// One row of a table.
pub struct Row {
    at: &'static Location<'static>,
    step: Step,
    want: Want,
    on_citus: OnCitus,
    saves: Vec<(&'static str, &'static str)>,
    expects: Vec<Expect>,
    poll: bool,
    why: Option<&'static str>,
}

/// A call: `who` sends `body` with `method` to `path`; the status must be
/// one of `want`.
#[track_caller]
pub fn call(
    who: Who,
    method: Method,
    path: &'static str,
    body: impl Into<Send>,
    want: impl Into<Want>,
) -> Row {
    Row::new(
        Step::Http {
            who,
            method,
            path,
            body: body.into(),
        },
        want.into(),
    )
}

/// A statement run as the owner: the data no route writes (a score, a
/// digest the worker would write) and the ids no response carries.
#[track_caller]
pub fn sql(sql: &'static str, binds: &'static [&'static str]) -> Row {
    Row::new(Step::Sql { sql, binds }, Want(Vec::new()))
}

impl Row {
    #[track_caller]
    fn new(step: Step, want: Want) -> Row {
        Row {
            at: Location::caller(),
            step,
            want,
            on_citus: OnCitus::Same,
            saves: Vec::new(),
            expects: Vec::new(),
            poll: false,
            why: None,
        }
    }

    /// Saves the value at `pointer` of the response as the fixture `name`.
    pub fn save(mut self, name: &'static str, pointer: &'static str) -> Row {
        self.saves.push((name, pointer));
        self
    }

    pub fn is(mut self, pointer: &'static str, v: impl Into<Value>) -> Row {
        self.expects.push(Expect::Is(pointer, v.into()));
        self
    }

    pub fn len(mut self, pointer: &'static str, n: usize) -> Row {
        self.expects.push(Expect::Len(pointer, n));
        self
    }

    pub fn at_least(mut self, pointer: &'static str, n: usize) -> Row {
        self.expects.push(Expect::AtLeast(pointer, n));
        self
    }

    pub fn filled(mut self, pointer: &'static str) -> Row {
        self.expects.push(Expect::Filled(pointer));
        self
    }

    /// The value at `pointer` is a `"string"`, an `"object"` or an `"array"`.
    pub fn a(mut self, pointer: &'static str, kind: &'static str) -> Row {
        self.expects.push(Expect::Kind(pointer, kind));
        self
    }

    pub fn prefix(mut self, pointer: &'static str, s: &'static str) -> Row {
        self.expects.push(Expect::Prefix(pointer, s));
        self
    }

    /// Some item of the array at `pointer` has `v` at `inner`.
    pub fn any(mut self, pointer: &'static str, inner: &'static str, v: impl Into<Value>) -> Row {
        self.expects.push(Expect::Any(pointer, inner, v.into()));
        self
    }

    /// An error naming `field`, with a message.
    pub fn field(self, field: &'static str) -> Row {
        self.is("/error/field", field).filled("/error/message")
    }

    /// Sends again until the expectations hold (work of the worker).
    pub fn poll(mut self) -> Row {
        self.poll = true;
        self
    }

    /// Why the status is what it is, said when it is not.
    pub fn why(mut self, why: &'static str) -> Row {
        self.why = Some(why);
        self
    }

    /// On Citus the route answers `status` (imports need a single node).
    pub fn on_citus(mut self, status: u16) -> Row {
        self.on_citus = OnCitus::Status(status);
        self
    }

    /// Not sent on Citus (it follows a row that is refused there).
    pub fn single_node(mut self) -> Row {
        self.on_citus = OnCitus::Skip;
        self
    }
}

/// The document's operations and what the tests saw of them.
struct Contract {
    doc: Value,
    validators: BTreeMap<String, jsonschema::Validator>,
    /// (method, path template) → statuses seen.
    seen: BTreeMap<(String, String), BTreeSet<u16>>,
    /// Operations not supported on Citus, seen refused there.
    unsupported: BTreeSet<(String, String)>,
    failures: Vec<String>,
}

impl Contract {
    /// The operations of the document, the operator's (tag `operator`)
    /// included.
    fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    ops.push((method.clone(), path.clone()));
                }
            }
        }
        ops
    }

    /// The documented path `path` (with `{fixtures}` and a query) is an
    /// instance of: a literal segment of the document matches only itself,
    /// a parameter matches any value, and the most literal match wins, as
    /// in the router.
    fn template(&self, method: &str, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap();
        let segments: Vec<&str> = path.split('/').collect();
        let mut best: Option<(usize, &String)> = None;
        for (template, item) in self.doc["paths"].as_object().unwrap() {
            if !item[method].is_object() {
                continue;
            }
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let fits = parts.iter().zip(&segments).all(|(t, s)| {
                if t.starts_with('{') {
                    true
                } else {
                    literal += 1;
                    t == s
                }
            });
            if fits && best.is_none_or(|(n, _)| literal > n) {
                best = Some((literal, template));
            }
        }
        best.map(|(_, t)| t.clone())
    }

    fn check(
        &mut self,
        method: &str,
        template: &str,
        status: u16,
        content_type: &str,
        body: &Value,
    ) {
        let key = (method.to_owned(), template.to_owned());
        self.seen.entry(key.clone()).or_default().insert(status);
        let op = &self.doc["paths"][template][method];
        let response = &op["responses"][status.to_string()];
        if !response.is_object() {
            self.failures.push(format!(
                "{method} {template}: status {status} is not documented ({body})"
            ));
            return;
        }
        let Some(schema) = response["content"]["application/json"]["schema"]
            .as_object()
            .cloned()
        else {
            // A documented non-JSON response (a file download).
            if content_type.starts_with("application/json") {
                self.failures.push(format!(
                    "{method} {template} {status}: JSON sent where the document says otherwise"
                ));
            }
            return;
        };
        if !content_type.starts_with("application/json") {
            self.failures.push(format!(
                "{method} {template} {status}: content-type {content_type}, documented JSON"
            ));
            return;
        }
        let id = format!("{method} {template} {status}");
        if !self.validators.contains_key(&id) {
            let mut schema = Value::Object(schema);
            schema["components"] = self.doc["components"].clone();
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{id}: the documented schema does not compile: {e}"));
            self.validators.insert(id.clone(), validator);
        }
        let errors: Vec<String> = self.validators[&id]
            .iter_errors(body)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        if !errors.is_empty() {
            self.failures.push(format!(
                "{id}: the response does not match the document:\n  {}\n  body: {body}",
                errors.join("\n  ")
            ));
        }
    }
}

/// A tenant with one user per [`Who`], a running BFF and the contract.
pub struct Runner {
    pub db: TestDb,
    pub app: TestApp,
    callers: BTreeMap<Who, Caller>,
    fixtures: BTreeMap<String, String>,
    contract: Contract,
}

impl Runner {
    /// The tenant and its users on `db`, and a BFF with `env` over the
    /// tests' settings and the operator API on (acting as `db`'s owner,
    /// whose own clusters resolve without secrets).
    pub async fn start(db: TestDb, env: &[(&str, &str)]) -> Runner {
        let tenant = db.create_tenant("acme").await;
        let mut callers = BTreeMap::new();
        let mut fixtures = BTreeMap::new();
        for (who, name, role) in Who::USERS {
            let caller = db.create_user(tenant, role).await;
            fixtures.insert(name.to_owned(), caller.user_id.to_string());
            callers.insert(who, caller);
        }
        db.set_manager(&callers[&Who::Sales], &callers[&Who::Manager])
            .await;
        fixtures.insert("tenant".into(), tenant.to_string());
        let today = bizos_tests::tenant_today();
        for (name, day) in [
            ("today", today),
            ("today-1", today - chrono::Days::new(1)),
            ("today+1", today + chrono::Days::new(1)),
            ("today-5", today - chrono::Days::new(5)),
            ("today-30", today - chrono::Days::new(30)),
            ("today-90", today - chrono::Days::new(90)),
        ] {
            fixtures.insert(name.into(), day.to_string());
        }
        fixtures.insert("month".into(), today.format("%Y-%m").to_string());
        fixtures.insert("month_start".into(), today.format("%Y-%m-01").to_string());
        let owner = db.url("bizos_owner");
        let mut env = env.to_vec();
        env.push(("BIZOS_OPERATOR_TOKEN", OPERATOR_TOKEN));
        env.push(("BIZOS_OPERATOR_DATABASE_URL", &owner));
        env.push(("BIZOS_PUBLIC_URL", "https://app.contract.test"));
        // The payment providers' secrets (cases_payments signs with them).
        env.push(("BIZOS_STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET));
        env.push(("BIZOS_MIDTRANS_SERVER_KEYS", MIDTRANS_KEY));
        let app = spawn_app_with(&db, &env).await;
        let doc = super::document::document(&app).await;
        Runner {
            db,
            app,
            callers,
            fixtures,
            contract: Contract {
                doc,
                validators: BTreeMap::new(),
                seen: BTreeMap::new(),
                unsupported: BTreeSet::new(),
                failures: Vec::new(),
            },
        }
    }

    /// Runs the rows in order. A status or body other than the row wants
    /// stops the test at once (later rows build on it); a response that
    /// does not match the document is noted for [`Runner::finish`].
    pub async fn run(&mut self, rows: Vec<Row>) {
        for row in rows {
            self.row(row).await;
        }
    }

    async fn row(&mut self, row: Row) {
        let citus = self.db.is_citus();
        if citus && matches!(row.on_citus, OnCitus::Skip) {
            if let Step::Http { method, path, .. } = &row.step {
                self.excuse(method, path);
            }
            return;
        }
        let started = Instant::now();
        let body = loop {
            let (status, body) = self.step(&row.step).await;
            let want: &[u16] = match row.on_citus {
                OnCitus::Status(ref s) if citus => std::slice::from_ref(s),
                _ => &row.want.0,
            };
            if !want.is_empty() && !want.contains(&status) {
                let why = row.why.map(|w| format!(" ({w})")).unwrap_or_default();
                self.stop(&row, format!("got {status}, want {want:?}{why}: {body}"));
            }
            if let (OnCitus::Status(_), true, Step::Http { method, path, .. }) =
                (&row.on_citus, citus, &row.step)
            {
                self.excuse(method, path);
                return;
            }
            let failed: Vec<&Expect> = row.expects.iter().filter(|e| !e.holds(&body)).collect();
            if failed.is_empty() {
                break body;
            }
            if !row.poll || started.elapsed() > Duration::from_secs(120) {
                self.stop(&row, format!("{failed:?} in {body}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        for (name, pointer) in &row.saves {
            let value = match body.pointer(pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ Value::Number(_)) => v.to_string(),
                _ => self.stop(&row, format!("no {pointer} to save in {body}")),
            };
            self.fixtures.insert((*name).to_owned(), value);
        }
    }

    fn excuse(&mut self, method: &Method, path: &str) {
        let method = method.as_str().to_lowercase();
        if let Some(template) = self.contract.template(&method, path) {
            self.contract.unsupported.insert((method, template));
        }
    }

    /// Stops the test at `row`, with what the document check found so far.
    fn stop(&self, row: &Row, what: String) -> ! {
        let mut failures = self.contract.failures.clone();
        failures.insert(0, format!("{}: {what}", self.describe(row)));
        panic!("{}", failures.join("\n"))
    }

    fn describe(&self, row: &Row) -> String {
        let what = match &row.step {
            Step::Http {
                who, method, path, ..
            } => format!("{method} {path} as {who:?}"),
            Step::Sql { sql, .. } => sql.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        format!("{}:{}: {what}", row.at.file(), row.at.line())
    }

    async fn step(&mut self, step: &Step) -> (u16, Value) {
        match step {
            Step::Http {
                who,
                method,
                path,
                body,
            } => self.send(*who, method, path, body).await,
            Step::Sql { sql, binds } => {
                let mut q = sqlx::query(sql);
                for name in *binds {
                    q = q.bind(self.fixture(name));
                }
                let row = q.fetch_optional(&self.db.owner).await;
                let row = row.unwrap_or_else(|e| panic!("{sql}: {e}"));
                (0, row.as_ref().map_or(Value::Null, scalar))
            }
        }
    }

    async fn send(&mut self, who: Who, method: &Method, path: &str, body: &Send) -> (u16, Value) {
        let url = self.app.url(&self.fill(path));
        let mut req = self.app.http.request(method.clone(), url);
        if who == Who::Operator {
            req = req.bearer_auth(OPERATOR_TOKEN);
        } else if let Some(caller) = self.callers.get(&who) {
            req = req.bearer_auth(self.app.token(caller));
        }
        req = match body {
            Send::None => req,
            Send::Json(v) => req.json(&self.fill_json(v)),
            Send::Raw(ct, bytes) => req.header("content-type", *ct).body(self.bytes(bytes)),
            Send::Signed(ct, header, value, bytes) => req
                .header("content-type", *ct)
                .header(*header, self.fill(value))
                .body(self.bytes(bytes)),
            Send::Form(fields, file_name, bytes) => {
                let mut form = reqwest::multipart::Form::new();
                for (k, v) in *fields {
                    form = form.text(*k, self.fill(v));
                }
                form = form.part(
                    "file",
                    reqwest::multipart::Part::bytes(self.bytes(bytes)).file_name(*file_name),
                );
                req.multipart(form)
            }
        };
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = res.bytes().await.expect("body");
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let method = method.as_str().to_lowercase();
        match self.contract.template(&method, path) {
            Some(template) => self
                .contract
                .check(&method, &template, status, &content_type, &json),
            None => self
                .contract
                .failures
                .push(format!("{method} {path}: not in the document")),
        }
        (status, json)
    }

    fn fixture(&self, name: &str) -> String {
        if name == "missing" {
            return Uuid::new_v4().to_string();
        }
        match self.fixtures.get(name) {
            Some(v) => v.clone(),
            None => panic!("no fixture {{{name}}} (not saved by an earlier row)"),
        }
    }

    /// `text` with every `{name}` replaced by its fixture.
    fn fill(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .unwrap_or_else(|| panic!("an unclosed {{ in {text}"));
            out.push_str(&rest[..open]);
            out.push_str(&self.fixture(&rest[open + 1..open + close]));
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// `v` with every string that is exactly `{name}` replaced by its fixture.
    fn fill_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) if fixture_name(s).is_some() => {
                json!(self.fixture(fixture_name(s).unwrap()))
            }
            Value::Array(a) => Value::Array(a.iter().map(|i| self.fill_json(i)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, i)| (k.clone(), self.fill_json(i)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn bytes(&self, b: &Bytes) -> Vec<u8> {
        match b {
            Bytes::Pdf(len) => {
                let mut bytes = b"%PDF-1.7\n".to_vec();
                bytes.extend((0..*len).map(|i| (i % 251) as u8));
                bytes
            }
            Bytes::Png => {
                let mut png =
                    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
                png.extend([7u8; 64]);
                png
            }
            Bytes::Text(t) => self.fill(t).into_bytes(),
            Bytes::Blank(n) => vec![b' '; *n],
            Bytes::Literal(b) => b.to_vec(),
        }
    }

    /// Fails on any response that did not match the document.
    pub fn finish_responses(self) {
        let failures = &self.contract.failures;
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Fails on any response that did not match the document, and on any
    /// operation of the document never answered with a success (but those
    /// seen refused on Citus, where they are not supported).
    pub fn finish(self) {
        let mut failures = self.contract.failures.clone();
        for op in self.contract.operations() {
            let succeeded = self
                .contract
                .seen
                .get(&op)
                .is_some_and(|s| s.iter().any(|c| (200..300).contains(c)));
            if !succeeded && !self.contract.unsupported.contains(&op) {
                let (method, path) = op;
                failures.push(format!(
                    "{method} {path}: never called successfully by this test"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// `name` when `s` is exactly `{name}`.
fn fixture_name(s: &str) -> Option<&str> {
    let name = s.strip_prefix('{')?.strip_suffix('}')?;
    let fits = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c));
    fits.then_some(name)
}

/// The first column of a row as JSON.
fn scalar(row: &PgRow) -> Value {
    if let Ok(v) = row.try_get::<Option<i64>, _>(0) {
        return json!(v);
    }
    if let Ok(v) = row.try_get::<Option<i32>, _>(0) {
        return json!(v);
    }
    if let Ok(v) = row.try_get::<Option<Uuid>, _>(0) {
        return json!(v);
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(0) {
        return json!(v);
    }
    if let Ok(v) = row.try_get::<Option<bool>, _>(0) {
        return json!(v);
    }
    panic!("a column of a type the tables do not read")
}
