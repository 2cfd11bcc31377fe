//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of
//! "{webhook-id}.{webhook-timestamp}.{body}">`, keyed with the secret's
//! bytes (the base64 after `whsec_`).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `webhook-id` of an event: the same for every attempt and replay.
pub fn message_id(event_id: uuid::Uuid) -> String {
    format!("msg_{}", event_id.simple())
}

/// One `v1,` signature of `body` under the key `secret`.
pub fn sign(secret: &[u8], msg_id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// The `webhook-signature` header: one signature per key, space-separated
/// (the current secret and, during a rotation's overlap, the previous).
pub fn signature_header<'a>(
    keys: impl IntoIterator<Item = &'a [u8]>,
    msg_id: &str,
    timestamp: i64,
    body: &str,
) -> String {
    keys.into_iter()
        .map(|k| sign(k, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_signs_alike() {
        // The reference implementations' test vector (standardwebhooks on
        // PyPI gives the same for this secret, id, timestamp and body).
        let key =
            crate::webhooks::secrets::key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_key_signs_once() {
        let h = signature_header([&b"k1"[..], &b"k2"[..]], "msg_1", 1, "{}");
        let parts: Vec<&str> = h.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(b"k1", "msg_1", 1, "{}"));
        assert_eq!(parts[1], sign(b"k2", "msg_1", 1, "{}"));
        assert_ne!(parts[0], parts[1]);
        assert_eq!(
            message_id("0a1b2c3d-0000-4000-8000-00000000000f".parse().unwrap()),
            "msg_0a1b2c3d00004000800000000000000f"
        );
    }
}
