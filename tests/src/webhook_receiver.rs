//! The tests' webhook receiver (`scripts/lib/webhook_receiver.py`, started
//! by `scripts/dev test` and `test-cluster`, which export its address as
//! `BIZOS_TEST_WEBHOOK_URL`): a real HTTP server on 127.0.0.1 that
//! verifies every delivery with the `standardwebhooks` package from PyPI,
//! an implementation independent of bizos. Each [`Receiver`] is an
//! endpoint of its own name there, with the secrets it verifies with and
//! the status it answers.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The receiver's base URL.
pub fn base_url() -> String {
    std::env::var("BIZOS_TEST_WEBHOOK_URL").unwrap_or_else(|_| {
        panic!(
            "BIZOS_TEST_WEBHOOK_URL is not set: run the tests with `scripts/dev test`, or \
             `scripts/dev test-cluster` and its exports"
        )
    })
}

/// One delivery as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
    pub content_type: Option<String>,
    pub body: Value,
    /// Per configured secret, in order: whether standardwebhooks verified
    /// the delivery with it.
    pub verified: Vec<bool>,
    /// Per configured secret: the package's error, if any.
    pub errors: Vec<Option<String>>,
    /// The status the receiver answered with.
    pub answered: u16,
}

/// An endpoint of the receiver: `url()` is what bizos POSTs to.
pub struct Receiver {
    http: reqwest::Client,
    name: String,
}

impl Receiver {
    /// A new endpoint (answering 200, verifying with no secret yet).
    pub async fn new() -> Receiver {
        let r = Receiver {
            http: reqwest::Client::new(),
            name: uuid::Uuid::new_v4().simple().to_string(),
        };
        r.configure(&[], 200).await;
        r
    }

    pub fn url(&self) -> String {
        format!("{}/hooks/{}", base_url(), self.name)
    }

    /// Verify with `secrets` (whsec_…) and answer `status` from now on.
    pub async fn configure(&self, secrets: &[&str], status: u16) {
        let res = self
            .http
            .put(format!("{}/_endpoints/{}", base_url(), self.name))
            .json(&json!({"secrets": secrets, "status": status}))
            .send()
            .await
            .expect("the webhook receiver answers");
        assert_eq!(res.status().as_u16(), 204);
    }

    /// Everything received so far, in arrival order.
    pub async fn received(&self) -> Vec<Received> {
        let v: Value = self
            .http
            .get(format!("{}/_endpoints/{}", base_url(), self.name))
            .send()
            .await
            .expect("the webhook receiver answers")
            .json()
            .await
            .expect("JSON");
        v["received"]
            .as_array()
            .expect("received")
            .iter()
            .map(|r| Received {
                id: r["id"].as_str().unwrap_or_default().to_owned(),
                timestamp: r["timestamp"].as_str().unwrap_or_default().to_owned(),
                signature: r["signature"].as_str().unwrap_or_default().to_owned(),
                content_type: r["content_type"].as_str().map(str::to_owned),
                body: r["body"].clone(),
                verified: r["verified"]
                    .as_array()
                    .map(|a| a.iter().map(|b| b.as_bool() == Some(true)).collect())
                    .unwrap_or_default(),
                errors: r["errors"]
                    .as_array()
                    .map(|a| a.iter().map(|e| e.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default(),
                answered: r["answered"].as_u64().unwrap_or(0) as u16,
            })
            .collect()
    }

    /// Waits (up to `within`) until at least `n` deliveries arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received().await;
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < within,
                "{} of {n} deliveries arrived within {within:?}: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
