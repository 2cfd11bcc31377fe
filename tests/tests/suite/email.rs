//! E-mail (migration V23): the outbox and its delivery over SMTP
//! to a real SMTP server on loopback (`scripts/lib/smtp_sink.py`, aiosmtpd,
//! started by `scripts/dev test` and `test-cluster`), which writes every
//! message it accepts to `BIZOS_TEST_SMTP_DIR` and refuses recipients
//! named `reject…` (550) and `defer…` (451).
//!
//! An e-mail queued in a committed transaction arrives with its recipients,
//! subject, both parts and the tenant's name, once; a rolled-back one never
//! exists; SMTP down and transient refusals are retryable and mark nothing
//! sent; a permanent refusal is not retryable; bad input is refused naming
//! the field, with nothing written; templates only use their variables;
//! only the sender, super_admins and directors read an e-mail.

use std::time::Duration;

use bizos_bff::auth::Caller;
use bizos_bff::email::{deliver, DeliveryError, MailSettings, Mailer};
use bizos_tests::{code, field, smtp_sink, TestDb};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

fn mailer_for(port: u16) -> Mailer {
    Mailer::new(&MailSettings {
        smtp_url: format!("smtp://127.0.0.1:{port}").into(),
        username: None,
        password: None,
        timeout: Duration::from_secs(5),
        from: "Bizos <noreply@bizos.test>".parse().unwrap(),
    })
    .expect("mailer")
}

fn sink() -> Mailer {
    mailer_for(smtp_sink::port())
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A fresh address of the test (the sink is shared by every test).
fn address(local: &str) -> String {
    format!("{local}-{}@example.test", Uuid::new_v4().simple())
}

/// The one message delivered to `rcpt` (deliver has returned, so the sink
/// has written it; a short wait covers the file system).
async fn the_message_to(rcpt: &str) -> String {
    for _ in 0..50 {
        let mut found = smtp_sink::messages_to(rcpt);
        if !found.is_empty() {
            assert_eq!(found.len(), 1, "more than one message to {rcpt}");
            return found.remove(0);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no message to {rcpt} in {:?}", smtp_sink::dir());
}

fn header<'a>(message: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    message
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} header in\n{message}"))
}

/// The message with quoted-printable undone (soft line breaks, `=XX`), to
/// read the HTML part; other text passes unchanged.
fn unquote(message: &str) -> String {
    let bytes = message.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if bytes[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3).unwrap_or_default())
                .ok()
                .filter(|h| {
                    h.chars()
                        .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
                })
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(byte) = hex {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn enqueue(
    db: &TestDb,
    who: &Caller,
    template: &str,
    to: &[&str],
    vars: Value,
    cc: &[&str],
) -> Result<Uuid, sqlx::Error> {
    let mut tx = db.as_user(who).await;
    let id = sqlx::query_scalar("select email_enqueue($1, $2, $3, $4)")
        .bind(template)
        .bind(to)
        .bind(vars)
        .bind(cc)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await.unwrap();
    Ok(id)
}

fn welcome_vars() -> Value {
    json!({"full_name": "Dewi <b>Kartika</b> & co", "sign_in_url": "https://acme.example/login?a=1&b=2"})
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

async fn row(db: &TestDb, email_id: Uuid) -> Value {
    sqlx::query_scalar(
        "select jsonb_build_object('status', status, 'attempts', attempts, 'last_error', last_error,
                'sent_at', sent_at, 'failed_at', failed_at, 'message_id', message_id)
           from emails where email_id = $1",
    )
    .bind(email_id)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

fn worker(db: &TestDb) -> PgPool {
    db.pool_as("bizos_worker")
}

#[tokio::test]
async fn a_committed_email_arrives_once_with_recipients_subject_both_parts_and_the_tenants_name() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    sqlx::query("update tenants set name = 'Acme & Sons <Logistik>' where tenant_id = $1")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    let admin = db.create_user(tenant, "super_admin").await;
    let to = address("dewi");
    let cc = address("boss");

    let id = enqueue(&db, &admin, "user.welcome", &[&to], welcome_vars(), &[&cc])
        .await
        .unwrap();
    // Queued with its job, in the same transaction.
    let job: Value = sqlx::query_scalar(
        "select jsonb_build_object('kind', j.kind, 'payload', j.payload, 'status', j.status)
           from emails e join jobs j on j.tenant_id = e.tenant_id and j.job_id = e.job_id
          where e.email_id = $1",
    )
    .bind(id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        job,
        json!({"kind": "email.send", "payload": {"email_id": id}, "status": "queued"})
    );
    assert_eq!(row(&db, id).await["status"], "queued");

    let pool = worker(&db);
    deliver(&pool, &sink(), tenant, id).await.unwrap();

    let message = the_message_to(&to).await;
    assert!(
        header(&message, "X-Sink-Rcpt-To").contains(&cc),
        "cc is a recipient: {message}"
    );
    assert_eq!(header(&message, "To"), to);
    assert_eq!(header(&message, "Cc"), cc);
    assert_eq!(
        header(&message, "Subject"),
        "Welcome to Acme & Sons <Logistik>"
    );
    // The display name is the tenant's name (RFC 2047-encoded: it has
    // specials), the address the environment's default sender.
    assert_eq!(
        header(&message, "From"),
        "=?utf-8?b?QWNtZSAmIFNvbnMgPExvZ2lzdGlrPg==?= <noreply@bizos.test>"
    );
    assert!(message.contains("multipart/alternative"), "{message}");
    // The plain part: the values as they are.
    assert!(
        message.contains("Hello Dewi <b>Kartika</b> & co,"),
        "{message}"
    );
    assert!(
        message.contains("you now have an account of Acme & Sons <Logistik> on bizos."),
        "{message}"
    );
    // The HTML part: the same values escaped, the tenant's name too.
    let html = unquote(&message);
    assert!(
        html.contains("<p>Hello Dewi &lt;b&gt;Kartika&lt;/b&gt; &amp; co,</p>"),
        "{html}"
    );
    assert!(
        html.contains("<strong>Acme &amp; Sons &lt;Logistik&gt;</strong>"),
        "{html}"
    );
    assert!(
        html.contains("href=\"https://acme.example/login?a=1&amp;b=2\""),
        "{html}"
    );

    let sent = row(&db, id).await;
    assert_eq!(sent["status"], "sent");
    let message_id = format!("<{}@bizos.test>", id.simple());
    assert_eq!(sent["message_id"], json!(message_id));
    assert_eq!(header(&message, "Message-ID"), message_id);

    // Delivered again (a job run twice): not sent again.
    deliver(&pool, &sink(), tenant, id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp_sink::messages_to(&to).len(), 1);

    // The sender can read what was sent.
    let mut tx = db.as_user(&admin).await;
    let subject: String = sqlx::query_scalar("select subject from emails where email_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(subject, "Welcome to Acme & Sons <Logistik>");
}

#[tokio::test]
async fn a_tenants_sender_and_wording_are_its_own() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let finance = db.create_user(tenant, "finance").await;

    // The tenant's super_admin sets the sender and rewords the reminder.
    let mut tx = db.as_user(&admin).await;
    sqlx::query(
        "insert into tenant_mail_settings (tenant_id, from_address, from_name, reply_to)
         values ($1, 'billing@acme.example', 'Acme Billing', 'ar@acme.example')",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "insert into email_template_overrides (tenant_id, template, subject)
         values ($1, 'invoice.reminder', 'Pengingat {{ invoice_no }} dari {{tenant_name}}')",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let to = address("customer");
    let id = enqueue(
        &db,
        &finance,
        "invoice.reminder",
        &[&to],
        json!({"customer_name": "PT Maju", "invoice_no": "INV-2026-000007",
               "amount_due": 1250000.5, "due_date": "2026-12-31"}),
        &[],
    )
    .await
    .unwrap();
    deliver(&worker(&db), &sink(), tenant, id).await.unwrap();

    let message = the_message_to(&to).await;
    assert_eq!(
        header(&message, "From"),
        "\"Acme Billing\" <billing@acme.example>"
    );
    assert_eq!(header(&message, "Reply-To"), "ar@acme.example");
    assert_eq!(header(&message, "X-Sink-Mail-From"), "billing@acme.example");
    assert_eq!(
        header(&message, "Subject"),
        "Pengingat INV-2026-000007 dari Tenant acme"
    );
    assert_eq!(
        header(&message, "Message-ID"),
        format!("<{}@acme.example>", id.simple())
    );
    // The bodies are still the catalogue's; numbers are inserted as JSON has them.
    assert!(
        message.contains(
            "invoice INV-2026-000007 of Tenant acme over 1250000.5 is due on 2026-12-31."
        ),
        "{message}"
    );
}

#[tokio::test]
async fn an_email_queued_in_a_rolled_back_transaction_never_exists() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let to = address("ghost");

    let mut tx = db.as_user(&admin).await;
    let id: Uuid = sqlx::query_scalar("select email_enqueue('user.welcome', $1, $2)")
        .bind([&to])
        .bind(welcome_vars())
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    assert_eq!(count(&db, "select count(*) from emails").await, 0);
    assert_eq!(count(&db, "select count(*) from jobs").await, 0);
    match deliver(&worker(&db), &sink(), tenant, id).await {
        Err(e @ DeliveryError::NotFound { .. }) => assert!(!e.retryable()),
        other => panic!("a rolled-back e-mail was found: {other:?}"),
    }
    assert!(smtp_sink::messages_to(&to).is_empty());
}

#[tokio::test]
async fn smtp_down_is_retryable_marks_nothing_sent_and_leaves_the_business_transaction_alone() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let to = address("later");

    // A business change and its e-mail, one transaction.
    let mut tx = db.as_user(&admin).await;
    sqlx::query(
        "insert into tenant_mail_settings (tenant_id, from_name) values ($1, 'Acme Support')",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await
    .unwrap();
    let id: Uuid = sqlx::query_scalar("select email_enqueue('user.welcome', $1, $2)")
        .bind([&to])
        .bind(welcome_vars())
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let pool = worker(&db);
    let err = deliver(&pool, &mailer_for(closed_port()), tenant, id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Smtp(_)) && err.retryable(),
        "{err:?}"
    );
    let state = row(&db, id).await;
    assert_eq!(state["status"], "queued", "{state}");
    assert_eq!(state["attempts"], 1);
    assert_eq!(state["sent_at"], Value::Null);
    assert_eq!(state["message_id"], Value::Null);
    assert!(
        state["last_error"].as_str().unwrap().contains("SMTP"),
        "{state}"
    );
    // The change that queued it stands.
    assert_eq!(
        count(
            &db,
            "select count(*) from tenant_mail_settings where from_name = 'Acme Support'"
        )
        .await,
        1
    );
    assert!(smtp_sink::messages_to(&to).is_empty());

    // The server is back: the next attempt sends it.
    deliver(&pool, &sink(), tenant, id).await.unwrap();
    the_message_to(&to).await;
    let state = row(&db, id).await;
    assert_eq!(state["status"], "sent", "{state}");
    assert_eq!(state["attempts"], 1);
}

#[tokio::test]
async fn a_permanent_refusal_is_not_retryable_a_transient_one_is() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let pool = worker(&db);

    // 550 from the server: permanent, the e-mail is failed.
    let rejected = address("reject");
    let id = enqueue(
        &db,
        &admin,
        "user.welcome",
        &[&rejected],
        welcome_vars(),
        &[],
    )
    .await
    .unwrap();
    let err = deliver(&pool, &sink(), tenant, id).await.unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Smtp(e) if e.is_permanent()),
        "{err:?}"
    );
    assert!(!err.retryable());
    let state = row(&db, id).await;
    assert_eq!(state["status"], "failed", "{state}");
    assert_eq!(state["sent_at"], Value::Null);
    assert!(
        state["last_error"].as_str().unwrap().contains("550"),
        "{state}"
    );

    // 451 from the server: transient, still queued.
    let deferred = address("defer");
    let id = enqueue(
        &db,
        &admin,
        "user.welcome",
        &[&deferred],
        welcome_vars(),
        &[],
    )
    .await
    .unwrap();
    let err = deliver(&pool, &sink(), tenant, id).await.unwrap_err();
    assert!(
        matches!(&err, DeliveryError::Smtp(e) if e.is_transient()),
        "{err:?}"
    );
    assert!(err.retryable());
    let state = row(&db, id).await;
    assert_eq!(state["status"], "queued", "{state}");
    assert!(
        state["last_error"].as_str().unwrap().contains("451"),
        "{state}"
    );
    assert!(
        smtp_sink::messages_to(&rejected).is_empty()
            && smtp_sink::messages_to(&deferred).is_empty()
    );
}

/// template, to, vars, cc, the field the refusal names.
type Case<'a> = (&'a str, Vec<&'a str>, Value, Vec<&'a str>, &'a str);

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_nothing_is_written() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let ok = "dewi@example.test";
    let vars = welcome_vars();

    let cases: Vec<Case> = vec![
        (
            "user.welcome",
            vec![ok, "not an address"],
            vars.clone(),
            vec![],
            "to[1]",
        ),
        (
            "user.welcome",
            vec!["a@b.test\r\nBcc: x@y.test"],
            vars.clone(),
            vec![],
            "to[0]",
        ),
        (
            "user.welcome",
            vec!["<a@b.test>"],
            vars.clone(),
            vec![],
            "to[0]",
        ),
        (
            "user.welcome",
            vec!["a..b@b.test"],
            vars.clone(),
            vec![],
            "to[0]",
        ),
        (
            "user.welcome",
            vec![ok],
            vars.clone(),
            vec!["a@localhost"],
            "cc[0]",
        ),
        ("user.welcome", vec![], vars.clone(), vec![], "to"),
        ("user.nothing", vec![ok], vars.clone(), vec![], "template"),
        (
            "user.welcome",
            vec![ok],
            json!({"sign_in_url": "https://x.test"}),
            vec![],
            "vars.full_name",
        ),
        (
            "user.welcome",
            vec![ok],
            json!({"full_name": "A", "sign_in_url": "https://x.test", "bcc": "x@y.test"}),
            vec![],
            "vars.bcc",
        ),
        (
            "user.welcome",
            vec![ok],
            json!({"full_name": {"a": 1}, "sign_in_url": "u"}),
            vec![],
            "vars.full_name",
        ),
        (
            "user.welcome",
            vec![ok],
            json!({"full_name": " ", "sign_in_url": "u"}),
            vec![],
            "vars.full_name",
        ),
        (
            "user.welcome",
            vec![ok],
            json!(["full_name"]),
            vec![],
            "vars",
        ),
    ];
    for (template, to, vars, cc, want) in cases {
        let err = enqueue(&db, &admin, template, &to, vars.clone(), &cc)
            .await
            .expect_err(&format!("{template} {to:?} {vars} {cc:?} was taken"));
        assert_eq!(code(&err), "P0001", "{want}: {err}");
        assert_eq!(field(&err).as_deref(), Some(want), "{err}");
        assert!(err.to_string().contains(want), "{err}");
    }
    assert_eq!(count(&db, "select count(*) from emails").await, 0);
    assert_eq!(count(&db, "select count(*) from jobs").await, 0);
    // Not vacuous: the same call with good input is taken.
    enqueue(&db, &admin, "user.welcome", &[ok], welcome_vars(), &[])
        .await
        .unwrap();
    assert_eq!(count(&db, "select count(*) from emails").await, 1);
}

#[tokio::test]
async fn templates_use_only_their_variables() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;

    // The catalogue itself passes its check.
    let bad: i64 = count(
        &db,
        "select count(*)
           from email_templates t, lateral (values (t.subject), (t.text_body), (t.html_body)) b (body)
          where email_template_placeholders(b.body) is null
             or not (email_template_placeholders(b.body) <@ array_prepend('tenant_name', t.variables))",
    )
    .await;
    assert_eq!(bad, 0);
    assert!(count(&db, "select count(*) from email_templates").await >= 2);

    for (column, text) in [
        ("html_body", "<p>{{password}}</p>"),
        ("text_body", "Hello {{full_name}"),
        ("subject", "{{ Tenant_Name }}"),
    ] {
        let mut tx = db.as_user(&admin).await;
        let err = sqlx::query(&format!(
            "insert into email_template_overrides (tenant_id, template, {column}) values ($1, 'user.welcome', $2)"
        ))
        .bind(tenant)
        .bind(text)
        .execute(&mut *tx)
        .await
        .expect_err(text);
        assert_eq!(code(&err), "P0001", "{err}");
        assert_eq!(field(&err).as_deref(), Some(column), "{err}");
    }
    // A placeholder's value is not read for placeholders itself.
    let to = address("literal");
    let id = enqueue(
        &db,
        &admin,
        "user.welcome",
        &[&to],
        json!({"full_name": "{{tenant_name}}", "sign_in_url": "https://x.test"}),
        &[],
    )
    .await
    .unwrap();
    let text: String = sqlx::query_scalar("select text_body from emails where email_id = $1")
        .bind(id)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(text.starts_with("Hello {{tenant_name}},"), "{text}");
}

#[tokio::test]
async fn only_permitted_roles_send_and_only_the_sender_admins_and_directors_read() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let other = db.create_tenant("other").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let director = db.create_user(tenant, "director").await;
    let seller = db.create_user(tenant, "salesperson").await;
    let colleague = db.create_user(tenant, "salesperson").await;
    let stranger = db.create_user(other, "super_admin").await;
    let reminder = json!({"customer_name": "PT Maju", "invoice_no": "INV-1",
                          "amount_due": "Rp 1.000", "due_date": "2026-12-31"});

    // The template's permission: welcome needs profile.manage, a reminder collection.create.
    for (who, template, vars) in [
        (&seller, "user.welcome", welcome_vars()),
        (&director, "invoice.reminder", reminder.clone()),
    ] {
        let err = enqueue(&db, who, template, &["x@example.test"], vars, &[])
            .await
            .unwrap_err();
        assert_eq!(code(&err), "42501", "{err}");
    }
    let id = enqueue(
        &db,
        &seller,
        "invoice.reminder",
        &["x@example.test"],
        reminder,
        &[],
    )
    .await
    .unwrap();

    let visible = |who: Caller| {
        let db = &db;
        async move {
            let mut tx = db.as_user(&who).await;
            sqlx::query_scalar::<_, i64>("select count(*) from emails where email_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .unwrap()
        }
    };
    assert_eq!(visible(seller.clone()).await, 1);
    assert_eq!(visible(admin.clone()).await, 1);
    assert_eq!(visible(director.clone()).await, 1);
    assert_eq!(visible(colleague.clone()).await, 0);
    assert_eq!(visible(stranger.clone()).await, 0);

    // Nobody writes the outbox directly, nor calls the worker's functions.
    for sql in [
        format!(
            "insert into emails (tenant_id, template, from_name, to_addresses, subject, text_body, html_body)
             values ('{tenant}', 'user.welcome', 'x', '{{x@example.test}}', 's', 't', 'h')"
        ),
        format!("update emails set subject = 'changed' where email_id = '{id}'"),
        format!("delete from emails where email_id = '{id}'"),
        format!("select * from email_for_delivery('{tenant}', '{id}')"),
        format!("select email_mark_sent('{tenant}', '{id}', '<x@y.test>')"),
        format!("select email_mark_failed('{tenant}', '{id}', 'x', true)"),
    ] {
        let mut tx = db.as_user(&admin).await;
        let err = sqlx::query(&sql).execute(&mut *tx).await.unwrap_err();
        assert_eq!(code(&err), "42501", "{sql}: {err}");
    }
    // Another tenant's admin cannot set this tenant's sender.
    let mut tx = db.as_user(&stranger).await;
    let err =
        sqlx::query("insert into tenant_mail_settings (tenant_id, from_name) values ($1, 'x')")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .unwrap_err();
    assert_eq!(code(&err), "42501", "{err}");
    drop(tx);
    // Nor may a salesperson of the tenant.
    let mut tx = db.as_user(&seller).await;
    let err =
        sqlx::query("insert into tenant_mail_settings (tenant_id, from_name) values ($1, 'x')")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .unwrap_err();
    assert_eq!(code(&err), "42501", "{err}");
    assert_eq!(row(&db, id).await["status"], "queued");
}

// ------------------------------------------------------- through the worker

/// `bizos worker` for `db`, sending through `smtp_port`, until the returned
/// sender is dropped or fired.
async fn start_worker(db: &TestDb, smtp_port: u16) -> tokio::sync::oneshot::Sender<()> {
    use bizos_bff::worker::{Worker, WorkerSettings};
    let settings = WorkerSettings {
        concurrency: 2,
        poll_interval: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(5),
        name: format!("email-test-{}", Uuid::new_v4().simple()),
        mail: Some(MailSettings {
            smtp_url: format!("smtp://127.0.0.1:{smtp_port}").into(),
            username: None,
            password: None,
            timeout: Duration::from_secs(5),
            from: "Bizos <noreply@bizos.test>".parse().unwrap(),
        }),
        ..bizos_tests::worker_settings(
            db,
            100,
            bizos_bff::config::StorageSettings::Local {
                root: std::env::temp_dir().join("bizos-email-test-files"),
            },
        )
    };
    let worker = Worker::build(settings).await.expect("worker");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    stop
}

/// The e-mail's and its job's state once `done` holds of them (15 s at most).
async fn wait_for(db: &TestDb, email_id: Uuid, done: impl Fn(&Value) -> bool) -> Value {
    let mut state = Value::Null;
    for _ in 0..150 {
        state = sqlx::query_scalar(
            "select jsonb_build_object('email', e.status, 'email_attempts', e.attempts,
                    'last_error', e.last_error, 'job', j.status, 'job_attempts', j.attempts,
                    'job_error', j.last_error, 'job_id', j.job_id)
               from emails e join jobs j on j.tenant_id = e.tenant_id and j.job_id = e.job_id
              where e.email_id = $1",
        )
        .bind(email_id)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        if done(&state) {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not reached in time: {state}");
}

#[tokio::test]
async fn the_worker_delivers_a_queued_email() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let _worker = start_worker(&db, smtp_sink::port()).await;

    let to = address("worker");
    let id = enqueue(&db, &admin, "user.welcome", &[&to], welcome_vars(), &[])
        .await
        .unwrap();
    let state = wait_for(&db, id, |s| s["job"] == "succeeded").await;
    assert_eq!(state["email"], "sent", "{state}");
    assert_eq!(state["job_attempts"], 1, "{state}");
    let message = the_message_to(&to).await;
    assert_eq!(header(&message, "Subject"), "Welcome to Tenant acme");
}

/// `bizos_emails_total{outcome}` of this process (what the worker's
/// `/metrics` renders): other tests add to it too, so compare.
fn emails_total(outcome: &str) -> f64 {
    let label = format!("outcome=\"{outcome}\"");
    bizos_bff::metrics::render()
        .lines()
        .filter(|l| l.starts_with("bizos_emails_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn smtp_down_the_worker_retries_then_dead_letters_and_a_retry_sends_it() {
    let (failed, sent) = (emails_total("failed"), emails_total("sent"));
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    // Two attempts, a short backoff: the test's own database.
    sqlx::query(
        "update job_kinds set max_attempts = 2, backoff_secs = 0.1 where kind = 'email.send'",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    let down = start_worker(&db, closed_port()).await;

    let to = address("outage");
    let id = enqueue(&db, &admin, "user.welcome", &[&to], welcome_vars(), &[])
        .await
        .unwrap();
    let state = wait_for(&db, id, |s| s["job"] == "dead").await;
    assert_eq!(state["job_attempts"], 2, "{state}");
    assert_eq!(state["email_attempts"], 2, "{state}");
    assert_eq!(state["email"], "failed", "{state}");
    assert!(
        state["job_error"].as_str().unwrap().contains("SMTP"),
        "{state}"
    );
    assert!(smtp_sink::messages_to(&to).is_empty());
    assert!(emails_total("failed") >= failed + 1.0, "counted as failed");
    // The transaction that queued it was committed whatever happened since.
    assert_eq!(count(&db, "select count(*) from emails").await, 1);
    drop(down);

    // The server is back and the operator retries the dead job.
    let _up = start_worker(&db, smtp_sink::port()).await;
    let job_id: Uuid = state["job_id"].as_str().unwrap().parse().unwrap();
    sqlx::query("select job_retry($1)")
        .bind(job_id)
        .execute(&db.owner)
        .await
        .unwrap();
    let state = wait_for(&db, id, |s| s["job"] == "succeeded").await;
    assert_eq!(state["email"], "sent", "{state}");
    the_message_to(&to).await;
    assert!(emails_total("sent") >= sent + 1.0, "counted as sent");
}
