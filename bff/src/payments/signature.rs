//! The providers' webhook signatures, checked before anything of a
//! delivery is believed.
//!
//! - Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`,
//!   each `v1` an HMAC-SHA256 of `<t>.<raw body>` under an endpoint secret
//!   (`whsec_…`). While a secret is rolled Stripe signs with the old and
//!   the new one, so any `v1` under any configured secret is enough; a
//!   timestamp outside the tolerance window is refused (a replayed old
//!   delivery), as Stripe's own libraries do (300 s by default).
//! - Midtrans: the notification's `signature_key` is the SHA-512 (hex) of
//!   `order_id + status_code + gross_amount + server key`, with
//!   `gross_amount` exactly as the notification carries it ("10000.00"):
//!   re-formatting the number would refuse genuine notifications, and
//!   reading it as a number first would let "10000.0" pass for "10000.00".
//!
//! Digests are compared in constant time (`subtle`, through `hmac`'s
//! `verify_slice` and our own comparison of SHA-512 digests).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery's signature was refused (stored with the raw delivery;
/// never sent to the caller beyond "invalid signature").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No signature header or field.
    Missing,
    /// The header or field is not of the scheme's form.
    Malformed,
    /// The timestamp is outside the tolerance window.
    Expired,
    /// No signature matches any configured secret.
    Mismatch,
    /// No secret is configured for the provider.
    NotConfigured,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::Expired => "expired",
            Refusal::Mismatch => "mismatch",
            Refusal::NotConfigured => "not_configured",
        }
    }
}

/// Checks a `Stripe-Signature` header against the raw body: some `v1`
/// signature is the HMAC-SHA256 of `t.body` under one of `secrets`, and `t`
/// is within `tolerance_secs` of `now` (either side: a sender's clock may
/// be ahead). Other schemes in the header (`v0`) are ignored, as Stripe's
/// libraries do.
pub fn stripe_verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    tolerance_secs: i64,
    now: i64,
) -> Result<i64, Refusal> {
    if secrets.is_empty() {
        return Err(Refusal::NotConfigured);
    }
    let header = header.ok_or(Refusal::Missing)?;
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            return Err(Refusal::Malformed);
        };
        match k {
            "t" => timestamp = Some(v.parse().map_err(|_| Refusal::Malformed)?),
            "v1" => signatures.push(hex::decode(v).map_err(|_| Refusal::Malformed)?),
            _ => {}
        }
    }
    let t = timestamp.ok_or(Refusal::Malformed)?;
    if signatures.is_empty() {
        return Err(Refusal::Missing);
    }
    if (now - t).abs() > tolerance_secs {
        return Err(Refusal::Expired);
    }
    for secret in secrets {
        for sig in &signatures {
            // verify_slice compares in constant time.
            if stripe_mac(secret, t, body).verify_slice(sig).is_ok() {
                return Ok(t);
            }
        }
    }
    Err(Refusal::Mismatch)
}

fn stripe_mac(secret: &str, t: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `v1` signature Stripe would send for `body` at `t` under `secret`
/// (the tests' and the benchmark's sender).
pub fn stripe_sign(secret: &str, t: i64, body: &[u8]) -> String {
    hex::encode(stripe_mac(secret, t, body).finalize().into_bytes())
}

/// A whole `Stripe-Signature` header signed with every one of `secrets`
/// (as Stripe sends during a secret's roll).
pub fn stripe_header(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut h = format!("t={t}");
    for s in secrets {
        h.push_str(",v1=");
        h.push_str(&stripe_sign(s, t, body));
    }
    h
}

/// The `signature_key` Midtrans sends: SHA-512 hex of the four strings as
/// given.
pub fn midtrans_signature(
    order_id: &str,
    status_code: &str,
    gross_amount: &str,
    server_key: &str,
) -> String {
    let mut h = Sha512::new();
    h.update(order_id.as_bytes());
    h.update(status_code.as_bytes());
    h.update(gross_amount.as_bytes());
    h.update(server_key.as_bytes());
    hex::encode(h.finalize())
}

/// Checks a Midtrans notification's `signature_key` under any of the
/// configured server keys (several while a key is being replaced).
pub fn midtrans_verify(
    order_id: &str,
    status_code: &str,
    gross_amount: &str,
    signature_key: Option<&str>,
    server_keys: &[String],
) -> Result<(), Refusal> {
    if server_keys.is_empty() {
        return Err(Refusal::NotConfigured);
    }
    let given = signature_key.ok_or(Refusal::Missing)?;
    let given = hex::decode(given.trim()).map_err(|_| Refusal::Malformed)?;
    if given.len() != 64 {
        return Err(Refusal::Malformed);
    }
    let mut ok = subtle::Choice::from(0u8);
    for key in server_keys {
        let mut h = Sha512::new();
        h.update(order_id.as_bytes());
        h.update(status_code.as_bytes());
        h.update(gross_amount.as_bytes());
        h.update(key.as_bytes());
        let digest: [u8; 64] = h.finalize().into();
        ok |= digest.ct_eq(given.as_slice());
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000;

    fn secrets(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stripe_accepts_its_own_signature_and_refuses_the_rest() {
        let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
        let header = stripe_header(&["whsec_a"], NOW, body);
        assert_eq!(
            stripe_verify(Some(&header), body, &secrets(&["whsec_a"]), 300, NOW + 10),
            Ok(NOW)
        );
        // tampered body
        assert_eq!(
            stripe_verify(
                Some(&header),
                br#"{"id":"evt_1","type":"invoice.paid "}"#,
                &secrets(&["whsec_a"]),
                300,
                NOW
            ),
            Err(Refusal::Mismatch)
        );
        // wrong secret
        assert_eq!(
            stripe_verify(Some(&header), body, &secrets(&["whsec_b"]), 300, NOW),
            Err(Refusal::Mismatch)
        );
        // expired, either side of the window
        assert_eq!(
            stripe_verify(Some(&header), body, &secrets(&["whsec_a"]), 300, NOW + 301),
            Err(Refusal::Expired)
        );
        assert_eq!(
            stripe_verify(Some(&header), body, &secrets(&["whsec_a"]), 300, NOW - 301),
            Err(Refusal::Expired)
        );
        assert_eq!(
            stripe_verify(None, body, &secrets(&["whsec_a"]), 300, NOW),
            Err(Refusal::Missing)
        );
        assert_eq!(
            stripe_verify(Some("t=x,v1=00"), body, &secrets(&["whsec_a"]), 300, NOW),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            stripe_verify(Some(&header), body, &[], 300, NOW),
            Err(Refusal::NotConfigured)
        );
    }

    #[test]
    fn stripe_rotation_accepts_any_v1_under_any_secret() {
        let body = b"{}";
        // Stripe signs with the old and the new secret during a roll.
        let both = stripe_header(&["whsec_old", "whsec_new"], NOW, body);
        assert!(stripe_verify(Some(&both), body, &secrets(&["whsec_new"]), 300, NOW).is_ok());
        assert!(stripe_verify(Some(&both), body, &secrets(&["whsec_old"]), 300, NOW).is_ok());
        // We hold both while the roll lasts; the sender only the new one.
        let new_only = stripe_header(&["whsec_new"], NOW, body);
        assert!(stripe_verify(
            Some(&new_only),
            body,
            &secrets(&["whsec_old", "whsec_new"]),
            300,
            NOW
        )
        .is_ok());
        // v0 signatures are not ours to check.
        let v0 = format!("t={NOW},v0={}", stripe_sign("whsec_new", NOW, body));
        assert_eq!(
            stripe_verify(Some(&v0), body, &secrets(&["whsec_new"]), 300, NOW),
            Err(Refusal::Missing)
        );
    }

    /// Midtrans's documented example: order "Postman-1578568851",
    /// status 200, gross_amount "10000.00", server key
    /// "askvnoibnosifnboseofinbofinfgbiufglnbfg".
    #[test]
    fn midtrans_signature_is_over_the_amount_as_given() {
        let key = "askvnoibnosifnboseofinbofinfgbiufglnbfg";
        let sig = midtrans_signature("Postman-1578568851", "200", "10000.00", key);
        assert_eq!(sig.len(), 128);
        let keys = secrets(&[key]);
        assert_eq!(
            midtrans_verify("Postman-1578568851", "200", "10000.00", Some(&sig), &keys),
            Ok(())
        );
        // The same number spelt otherwise is another message.
        assert_eq!(
            midtrans_verify("Postman-1578568851", "200", "10000.0", Some(&sig), &keys),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            midtrans_verify(
                "Postman-1578568851",
                "200",
                "10000.00",
                Some(&sig),
                &secrets(&["other"])
            ),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            midtrans_verify("Postman-1578568851", "200", "10000.00", Some("zz"), &keys),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            midtrans_verify("Postman-1578568851", "200", "10000.00", None, &keys),
            Err(Refusal::Missing)
        );
    }
}
