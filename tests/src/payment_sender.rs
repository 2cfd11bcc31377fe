//! A local stand-in for the payment providers' senders: signs deliveries
//! as Stripe and Midtrans document it, with its own HMAC and SHA-512 (not
//! the BFF's code), so a mistake in the BFF's verification cannot be
//! mirrored here. Used by suite/payments and the payments benchmark.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// `Stripe-Signature: t=<t>,v1=<sig under secrets[0]>[,v1=<sig under secrets[1]>…]`.
pub fn stripe_header(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut header = format!("t={t}");
    for secret in secrets {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        header.push_str(&format!(",v1={}", hex::encode(mac.finalize().into_bytes())));
    }
    header
}

/// Midtrans's `signature_key`: SHA-512 hex of order_id + status_code +
/// gross_amount + server key.
pub fn midtrans_signature(
    order_id: &str,
    status_code: &str,
    gross_amount: &str,
    server_key: &str,
) -> String {
    hex::encode(Sha512::digest(
        format!("{order_id}{status_code}{gross_amount}{server_key}").as_bytes(),
    ))
}

/// Seconds since the epoch now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
