//! The provider layer of the LLM gateway (`bizos_bff::llm::provider`)
//! against the stand-in on loopback: both wire formats, structured output,
//! error classification, timeouts, and the key never leaving its header.
//! No database.

use std::time::{Duration, Instant, SystemTime};

use bizos_bff::llm::provider::{
    estimate_tokens, ChatRequest, Client, EmbedRequest, Endpoint, Message, ProviderError, Wire,
};
use bizos_bff::llm::schema;
use bizos_tests::llm_standin::{count_tokens, echo_of, vector_of, Call, StandIn, Step};
use serde_json::{json, Value};

const KEY: &str = "sk-standin-SECRET-0123456789abcdef";
const WIRES: [Wire; 2] = [Wire::OpenAi, Wire::Gemini];

fn endpoint(s: &StandIn, wire: Wire) -> Endpoint {
    Endpoint {
        provider: format!("standin-{wire}"),
        wire,
        base_url: s.base_url(wire).to_string(),
    }
}

fn client() -> Client {
    Client::new(Duration::from_secs(2), Duration::from_secs(10))
}

fn model(wire: Wire) -> &'static str {
    match wire {
        Wire::OpenAi => "gpt-4o-mini",
        Wire::Gemini => "gemini-2.0-flash",
    }
}

fn chat(wire: Wire) -> ChatRequest {
    ChatRequest {
        model: model(wire).into(),
        messages: vec![
            Message::system("You summarise customer notes for a sales team."),
            Message::user("Customer [PHONE_1] asked for a quote on 40 units."),
            Message::assistant("Noted."),
            Message::user("Summarise the note for [NAME_1] in one line."),
        ],
        temperature: Some(0.2),
        max_output_tokens: Some(128),
        json_schema: None,
    }
}

fn digest_schema() -> Value {
    json!({
        "title": "Digest",
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "priority": {"type": "string", "enum": ["low", "high"]},
            "units": {"type": "integer", "minimum": 0}
        },
        "required": ["summary", "priority", "units"],
        "additionalProperties": false
    })
}

/// Words of every message: the stand-in's token rule for a prompt.
fn words_of(req: &ChatRequest) -> u64 {
    req.messages.iter().map(|m| count_tokens(&m.content)).sum()
}

#[tokio::test]
async fn chat_round_trips_on_both_wires() {
    let s = StandIn::start().await;
    let c = client();
    for wire in WIRES {
        let req = chat(wire);
        let r = c.chat(&endpoint(&s, wire), KEY, &req).await.unwrap();
        let expected = echo_of("Summarise the note for [NAME_1] in one line.");
        assert_eq!(r.text, expected, "{wire}");
        assert_eq!(r.json, None);
        assert_eq!(r.tokens_in, words_of(&req), "{wire}: tokens in");
        assert_eq!(r.tokens_out, count_tokens(&expected), "{wire}: tokens out");
        assert_eq!(r.model, model(wire));
        assert!(r.finish_reason.is_some());
    }
    let recorded = s.requests();
    assert_eq!(recorded.len(), 2);
    let (o, g) = (&recorded[0], &recorded[1]);
    assert_eq!(o.path, "/openai/v1/chat/completions");
    assert_eq!(o.model, "gpt-4o-mini");
    assert_eq!(o.body["messages"][0]["role"], "system");
    assert_eq!(o.body["messages"][2]["role"], "assistant");
    assert_eq!(
        o.body["temperature"].as_f64().map(|t| (t * 10.0).round()),
        Some(2.0)
    );
    assert_eq!(o.body["max_tokens"], 128);
    assert_eq!(
        g.path,
        "/gemini/v1beta/models/gemini-2.0-flash:generateContent"
    );
    assert_eq!(g.model, "gemini-2.0-flash");
    assert_eq!(
        g.body["systemInstruction"]["parts"][0]["text"],
        "You summarise customer notes for a sales team."
    );
    let roles: Vec<&str> = g.body["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "model", "user"]);
    assert_eq!(g.body["generationConfig"]["maxOutputTokens"], 128);
    // The counts the stand-in recorded are the ones the client returned.
    assert_eq!(o.tokens_in, words_of(&chat(Wire::OpenAi)));
    assert_eq!(g.tokens_out, o.tokens_out);
}

#[tokio::test]
async fn reported_token_counts_are_taken_as_reported() {
    let s = StandIn::start().await;
    let c = client();
    for wire in WIRES {
        s.script_wire(wire, Step::tokens(1234, 56));
        let r = c.chat(&endpoint(&s, wire), KEY, &chat(wire)).await.unwrap();
        assert_eq!((r.tokens_in, r.tokens_out), (1234, 56), "{wire}");
        // No usage at all: estimated from the text, never zero for a prompt.
        s.script_wire(wire, Step::Usage(Value::Null));
        let req = chat(wire);
        let r = c.chat(&endpoint(&s, wire), KEY, &req).await.unwrap();
        let prompt: String = req.messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(r.tokens_in, estimate_tokens(&prompt), "{wire}");
        assert_eq!(r.tokens_out, estimate_tokens(&r.text), "{wire}");
    }
    assert_eq!(s.pending(), 0);
}

#[tokio::test]
async fn embeddings_round_trip_on_both_wires() {
    let s = StandIn::start().await;
    let c = client();
    let inputs = vec![
        "Invoice 12 overdue by 30 days".to_string(),
        "Ticket about a broken printer".to_string(),
        "".to_string(),
    ];
    let expected: Vec<Vec<f32>> = inputs.iter().map(|t| vector_of(t)).collect();

    let req = EmbedRequest {
        model: "text-embedding-3-small".into(),
        inputs: inputs.clone(),
    };
    let r = c
        .embed(&endpoint(&s, Wire::OpenAi), KEY, &req)
        .await
        .unwrap();
    assert_eq!(r.vectors, expected);
    let words: u64 = inputs.iter().map(|t| count_tokens(t)).sum();
    assert_eq!(r.tokens_in, words);

    let req = EmbedRequest {
        model: "text-embedding-004".into(),
        inputs: inputs.clone(),
    };
    let r = c
        .embed(&endpoint(&s, Wire::Gemini), KEY, &req)
        .await
        .unwrap();
    assert_eq!(r.vectors, expected);
    // Gemini's batchEmbedContents reports no usage: the estimate.
    let estimated: u64 = inputs.iter().map(|t| estimate_tokens(t)).sum();
    assert_eq!(r.tokens_in, estimated);
    // ... and where a server reports it, the report.
    s.script_wire(Wire::Gemini, Step::tokens(99, 0));
    let r = c
        .embed(&endpoint(&s, Wire::Gemini), KEY, &req)
        .await
        .unwrap();
    assert_eq!(r.tokens_in, 99);

    let recorded = s.requests();
    assert_eq!(recorded[0].path, "/openai/v1/embeddings");
    assert_eq!(recorded[0].call, Call::Embed);
    assert_eq!(recorded[0].body["input"], json!(inputs));
    assert_eq!(
        recorded[1].path,
        "/gemini/v1beta/models/text-embedding-004:batchEmbedContents"
    );
    assert_eq!(
        recorded[1].body["requests"][1],
        json!({"model": "models/text-embedding-004",
               "content": {"parts": [{"text": "Ticket about a broken printer"}]}})
    );
}

#[tokio::test]
async fn the_json_schema_goes_where_each_wire_takes_it() {
    let s = StandIn::start().await;
    let c = client();
    for wire in WIRES {
        let req = ChatRequest {
            json_schema: Some(digest_schema()),
            ..chat(wire)
        };
        let r = c.chat(&endpoint(&s, wire), KEY, &req).await.unwrap();
        let json = r.json.expect("a structured answer");
        let echo = echo_of("Summarise the note for [NAME_1] in one line.");
        assert_eq!(
            json,
            json!({"summary": echo, "priority": "low", "units": 0}),
            "{wire}"
        );
    }
    let recorded = s.requests();
    let o = &recorded[0].body;
    assert_eq!(o["response_format"]["type"], "json_schema");
    assert_eq!(o["response_format"]["json_schema"]["name"], "Digest");
    assert_eq!(o["response_format"]["json_schema"]["strict"], true);
    assert_eq!(
        o["response_format"]["json_schema"]["schema"],
        digest_schema()
    );
    let g = &recorded[1].body["generationConfig"];
    assert_eq!(g["responseMimeType"], "application/json");
    assert_eq!(g["responseSchema"], schema::to_gemini(&digest_schema()));
    assert_eq!(g["responseSchema"]["type"], "OBJECT");
    assert!(g["responseSchema"].get("additionalProperties").is_none());
}

#[tokio::test]
async fn an_answer_off_the_schema_is_invalid_output() {
    let s = StandIn::start().await;
    let c = client();
    for wire in WIRES {
        let req = ChatRequest {
            json_schema: Some(digest_schema()),
            ..chat(wire)
        };
        for answer in [
            r#"{"summary": "fine", "priority": "urgent", "units": 3}"#,
            r#"{"summary": "fine", "priority": "low"}"#,
            r#"{"summary": "fine", "priority": "low", "units": -1}"#,
            "Sure! The customer wants 40 units.",
        ] {
            s.script_wire(wire, Step::text(answer));
            let e = c.chat(&endpoint(&s, wire), KEY, &req).await.unwrap_err();
            assert!(
                matches!(e, ProviderError::InvalidOutput(_)),
                "{wire} {answer}: {e:?}"
            );
            assert!(!e.retryable() && !e.cools_key());
        }
        // A fenced valid answer passes (models wrap JSON when unconstrained).
        s.script_wire(
            wire,
            Step::text("```json\n{\"summary\": \"s\", \"priority\": \"high\", \"units\": 2}\n```"),
        );
        let r = c.chat(&endpoint(&s, wire), KEY, &req).await.unwrap();
        assert_eq!(r.json.unwrap()["units"], 2);
    }
    // A schema that does not compile is refused before any call.
    let before = s.requests().len();
    let req = ChatRequest {
        json_schema: Some(json!({"type": 12})),
        ..chat(Wire::OpenAi)
    };
    let e = c
        .chat(&endpoint(&s, Wire::OpenAi), KEY, &req)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ProviderError::Rejected { status: 0, .. }),
        "{e:?}"
    );
    assert_eq!(s.requests().len(), before);
}

#[tokio::test]
async fn rate_limits_carry_retry_after_in_seconds_or_as_a_date() {
    let s = StandIn::start().await;
    let c = client();
    for wire in WIRES {
        let ep = endpoint(&s, wire);
        s.script_wire(wire, Step::rate_limited("7"));
        let e = c.chat(&ep, KEY, &chat(wire)).await.unwrap_err();
        assert_eq!(
            e,
            ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            },
            "{wire}"
        );
        assert!(e.retryable() && e.cools_key());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));

        let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        s.script_wire(wire, Step::rate_limited(date));
        let e = c.chat(&ep, KEY, &chat(wire)).await.unwrap_err();
        let after = e.retry_after().expect("an HTTP-date is read");
        assert!(
            after > Duration::from_secs(100) && after <= Duration::from_secs(120),
            "{wire}: {after:?}"
        );

        s.script_wire(wire, Step::status(429));
        let e = c.chat(&ep, KEY, &chat(wire)).await.unwrap_err();
        assert_eq!(e, ProviderError::RateLimited { retry_after: None });
    }
    // Gemini says it in the body when the header is missing.
    s.script_wire(
        Wire::Gemini,
        Step::status(429).with_body(
            json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
                   "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                "retryDelay": "13s"}]}})
            .to_string(),
        ),
    );
    let e = c
        .chat(&endpoint(&s, Wire::Gemini), KEY, &chat(Wire::Gemini))
        .await
        .unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(13)));
}

#[tokio::test]
async fn server_errors_are_retryable_and_refusals_are_not() {
    let s = StandIn::start().await;
    let c = client();
    for wire in WIRES {
        let ep = endpoint(&s, wire);
        s.script_wire(wire, Step::status(500));
        let e = c.chat(&ep, KEY, &chat(wire)).await.unwrap_err();
        assert_eq!(
            e,
            ProviderError::Server {
                status: 500,
                retry_after: None
            }
        );
        assert!(e.retryable() && !e.cools_key(), "{wire}");

        s.script_wire(
            wire,
            Step::Status {
                code: 503,
                retry_after: Some("2".into()),
                body: Some("<html>Service Unavailable</html>".into()),
            },
        );
        let e = c.chat(&ep, KEY, &chat(wire)).await.unwrap_err();
        assert_eq!(
            e,
            ProviderError::Server {
                status: 503,
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert!(e.retryable() && !e.cools_key());

        for code in [401, 403] {
            s.script_wire(wire, Step::status(code));
            let e = c.chat(&ep, KEY, &chat(wire)).await.unwrap_err();
            assert_eq!(e, ProviderError::Unauthorized { status: code });
            assert!(e.cools_key() && !e.retryable(), "{wire} {code}");
        }

        s.script_wire(
            wire,
            Step::status(400).with_body(
                json!({"error": {"message": "max_tokens is too large", "code": 400}}).to_string(),
            ),
        );
        let e = c.chat(&ep, KEY, &chat(wire)).await.unwrap_err();
        assert_eq!(
            e,
            ProviderError::Rejected {
                status: 400,
                message: "max_tokens is too large".into()
            }
        );
        assert!(!e.retryable() && !e.cools_key());

        // A redirect is not followed (it would carry the key elsewhere).
        s.script_wire(wire, Step::status(307));
        let e = c.chat(&ep, KEY, &chat(wire)).await.unwrap_err();
        assert!(
            matches!(e, ProviderError::Rejected { status: 307, .. }),
            "{e:?}"
        );
    }
    // The same classification for embeddings.
    s.script_wire(Wire::OpenAi, Step::status(502));
    let req = EmbedRequest {
        model: "m".into(),
        inputs: vec!["x".into()],
    };
    let e = c
        .embed(&endpoint(&s, Wire::OpenAi), KEY, &req)
        .await
        .unwrap_err();
    assert!(e.retryable());
    assert_eq!(s.pending(), 0);
}

#[tokio::test]
async fn a_hanging_provider_times_out_within_the_total_timeout() {
    let s = StandIn::start().await;
    let c = Client::new(Duration::from_secs(1), Duration::from_millis(300));
    for wire in WIRES {
        s.script_wire(wire, Step::Hang);
        let started = Instant::now();
        let e = c
            .chat(&endpoint(&s, wire), KEY, &chat(wire))
            .await
            .unwrap_err();
        // Generous: the point is that the call ends, not how fast.
        assert!(started.elapsed() < Duration::from_secs(5), "{wire}");
        assert_eq!(e, ProviderError::Timeout, "{wire}");
        assert!(e.retryable() && !e.cools_key());
        // A slow answer past the total timeout is a timeout too.
        s.script_wire(wire, Step::delayed(Duration::from_secs(3)));
        let e = c
            .chat(&endpoint(&s, wire), KEY, &chat(wire))
            .await
            .unwrap_err();
        assert_eq!(e, ProviderError::Timeout, "{wire}");
    }
    // Nobody listening: a connection error, retryable.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let ep = Endpoint {
        provider: "nobody".into(),
        wire: Wire::OpenAi,
        base_url: format!("http://{closed}/v1"),
    };
    let e = c.chat(&ep, KEY, &chat(Wire::OpenAi)).await.unwrap_err();
    assert!(matches!(e, ProviderError::Connect(_)), "{e:?}");
    assert!(e.retryable() && !e.cools_key());
}

#[tokio::test]
async fn malformed_answers_are_malformed() {
    let s = StandIn::start().await;
    let c = client();
    for wire in WIRES {
        let ep = endpoint(&s, wire);
        s.script_wire(wire, Step::Malformed);
        let e = c.chat(&ep, KEY, &chat(wire)).await.unwrap_err();
        assert!(matches!(e, ProviderError::Malformed(_)), "{wire}: {e:?}");
        assert!(!e.retryable() && !e.cools_key());

        // Wrong token counts: negative, text, fractions.
        let (field_in, field_out) = match wire {
            Wire::OpenAi => ("prompt_tokens", "completion_tokens"),
            Wire::Gemini => ("promptTokenCount", "candidatesTokenCount"),
        };
        for (tin, tout) in [
            (json!(-3), json!(1)),
            (json!("ten"), json!(1)),
            (json!(4), json!(1.5)),
        ] {
            s.script_wire(wire, Step::Usage(json!({field_in: tin, field_out: tout})));
            let e = c.chat(&ep, KEY, &chat(wire)).await.unwrap_err();
            assert!(matches!(e, ProviderError::Malformed(_)), "{wire}: {e:?}");
        }

        // JSON, but not the wire's shape.
        s.script_wire(
            wire,
            Step::Status {
                code: 200,
                retry_after: None,
                body: Some("{\"hello\": 1}".into()),
            },
        );
        let e = c.chat(&ep, KEY, &chat(wire)).await.unwrap_err();
        assert!(matches!(e, ProviderError::Malformed(_)), "{wire}: {e:?}");

        // Embeddings: fewer vectors than inputs.
        s.script_wire(wire, Step::Status { code: 200, retry_after: None, body: Some(match wire {
            Wire::OpenAi => json!({"data": [{"index": 0, "embedding": [0.5]}], "usage": {"prompt_tokens": 1}}),
            Wire::Gemini => json!({"embeddings": [{"values": [0.5]}]}),
        }.to_string()) });
        let req = EmbedRequest {
            model: "m".into(),
            inputs: vec!["a".into(), "b".into()],
        };
        let e = c.embed(&ep, KEY, &req).await.unwrap_err();
        assert!(matches!(e, ProviderError::Malformed(_)), "{wire}: {e:?}");
    }
    assert_eq!(s.pending(), 0);
}

/// True when `text` holds the key or 8 or more characters of it in a row.
fn leaks(text: &str) -> bool {
    let chars: Vec<char> = KEY.chars().collect();
    (0..=chars.len() - 8).any(|i| text.contains(&chars[i..i + 8].iter().collect::<String>()))
}

#[tokio::test]
async fn the_key_travels_in_its_header_and_never_in_an_error() {
    let s = StandIn::start().await;
    let c = client();
    for wire in WIRES {
        c.chat(&endpoint(&s, wire), KEY, &chat(wire)).await.unwrap();
    }
    let req = EmbedRequest {
        model: "e".into(),
        inputs: vec!["x".into()],
    };
    for wire in WIRES {
        c.embed(&endpoint(&s, wire), KEY, &req).await.unwrap();
    }
    for r in s.requests() {
        let (header, value) = match r.wire {
            Wire::OpenAi => ("authorization", format!("Bearer {KEY}")),
            Wire::Gemini => ("x-goog-api-key", KEY.to_string()),
        };
        assert_eq!(r.api_key.as_deref(), Some(KEY), "{}", r.path);
        assert_eq!(r.key_header, Some(header), "{}", r.path);
        let sent: Vec<&str> = r
            .headers
            .iter()
            .filter(|(k, _)| k == header)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(sent, [value.as_str()], "{}", r.path);
        // Only there: not in the path, the query, another header or the body.
        assert!(!leaks(&r.path) && r.query.is_none(), "{}", r.path);
        let others = r.headers.iter().filter(|(k, _)| k != header);
        assert!(others.clone().all(|(_, v)| !leaks(v)), "{}", r.path);
        assert!(!leaks(&r.body.to_string()), "{}", r.path);
    }

    // Every error class, including bodies that echo the key.
    let echo = |code: u16| {
        Step::status(code).with_body(
            json!({"error": {"message": format!("Incorrect API key provided: {KEY}."),
                             "code": code}})
            .to_string(),
        )
    };
    let short = Client::new(Duration::from_secs(1), Duration::from_millis(300));
    for wire in WIRES {
        let ep = endpoint(&s, wire);
        let steps = vec![
            Step::rate_limited("1"),
            echo(401),
            echo(403),
            echo(400),
            echo(404),
            echo(500),
            Step::Status {
                code: 200,
                retry_after: None,
                body: Some(format!("not json {KEY}")),
            },
            Step::Malformed,
            Step::Usage(json!({"prompt_tokens": KEY, "promptTokenCount": KEY})),
            Step::text(format!(
                "{{\"summary\": \"{KEY}\", \"priority\": \"{KEY}\"}}"
            )),
            Step::Hang,
        ];
        for step in steps {
            let req = ChatRequest {
                json_schema: Some(digest_schema()),
                ..chat(wire)
            };
            let label = format!("{wire} {step:?}");
            s.script_wire(wire, step);
            let e = short.chat(&ep, KEY, &req).await.unwrap_err();
            let (display, debug) = (e.to_string(), format!("{e:?}"));
            assert!(!leaks(&display), "{label}: {display}");
            assert!(!leaks(&debug), "{label}: {debug}");
        }
    }
    // A connection error names no key either.
    let ep = Endpoint {
        provider: "nobody".into(),
        wire: Wire::Gemini,
        base_url: "http://127.0.0.1:9/v1beta".into(),
    };
    let e = short.chat(&ep, KEY, &chat(Wire::Gemini)).await.unwrap_err();
    assert!(!leaks(&format!("{e} {e:?}")));
    assert!(!leaks(&format!("{c:?} {ep:?}")));
}
