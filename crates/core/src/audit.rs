//! C3: the tamper-evident audit chain, independent of PostgreSQL.
//!
//! Each tenant has a few parallel chains (so concurrent writers rarely wait
//! on each other); every entry carries the hash of the previous entry of its
//! chain, and its own hash covers that previous hash and a canonical,
//! length-prefixed encoding of every field. Editing an entry changes its
//! hash; deleting one leaves a gap in the sequence or a head that no longer
//! matches.

use sha2::{Digest, Sha256};

/// Hash before the first entry of every chain.
pub const GENESIS: [u8; 32] = [0; 32];

/// Version tag of the encoding, part of every hash.
const DOMAIN: &[u8] = b"bizos-audit-v1";

/// One audit entry as it is hashed. Text fields are exactly what the
/// database stores (jsonb values in PostgreSQL's canonical text output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub tenant_id: &'a str,
    pub chain: i16,
    pub seq: i64,
    pub table_name: &'a str,
    pub record_key: &'a str,
    pub action: &'a str,
    pub actor: Option<&'a str>,
    pub db_role: &'a str,
    pub txid: i64,
    /// Microseconds since 2000-01-01 UTC (PostgreSQL's timestamptz).
    pub at_micros: i64,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
    /// The request's `x-request-id` (setting `request.id`), since 0.3.0.
    /// Hashed only when present, so entries written before 0.3.0 (and
    /// entries outside a request) keep the hash they were written with.
    pub request_id: Option<&'a str>,
}

fn field(h: &mut Sha256, bytes: Option<&[u8]>) {
    match bytes {
        // A NULL differs from every string, including the empty one.
        None => h.update(u64::MAX.to_be_bytes()),
        Some(b) => {
            h.update((b.len() as u64).to_be_bytes());
            h.update(b);
        }
    }
}

/// `sha256(prev || canonical(entry))`.
pub fn entry_hash(prev: &[u8; 32], e: &Entry<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    field(&mut h, Some(DOMAIN));
    field(&mut h, Some(prev));
    field(&mut h, Some(e.tenant_id.as_bytes()));
    field(&mut h, Some(&e.chain.to_be_bytes()));
    field(&mut h, Some(&e.seq.to_be_bytes()));
    field(&mut h, Some(e.table_name.as_bytes()));
    field(&mut h, Some(e.record_key.as_bytes()));
    field(&mut h, Some(e.action.as_bytes()));
    field(&mut h, e.actor.map(str::as_bytes));
    field(&mut h, Some(e.db_role.as_bytes()));
    field(&mut h, Some(&e.txid.to_be_bytes()));
    field(&mut h, Some(&e.at_micros.to_be_bytes()));
    field(&mut h, e.before.map(str::as_bytes));
    field(&mut h, e.after.map(str::as_bytes));
    // A trailing field only when present: an entry with a request id never
    // hashes like one without (the inputs differ in length), and removing
    // or adding the id afterwards breaks the entry's hash.
    if let Some(id) = e.request_id {
        field(&mut h, Some(id.as_bytes()));
    }
    h.finalize().into()
}

/// What is wrong with a chain, at which sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub seq: i64,
    pub problem: String,
}

/// Walks one chain in sequence order. Feed every stored entry with its
/// stored `prev_hash` and `hash`, then call [`ChainVerifier::finish`] with
/// the chain's head.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev: [u8; 32],
    broken: Option<Break>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        ChainVerifier {
            expected_seq: 1,
            prev: GENESIS,
            broken: None,
        }
    }
}

impl ChainVerifier {
    /// Checks the next stored entry; returns false once the chain is broken.
    pub fn push(&mut self, e: &Entry<'_>, stored_prev: &[u8], stored_hash: &[u8]) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let problem = if e.seq != self.expected_seq {
            Some(if e.seq > self.expected_seq {
                format!(
                    "entries {}..{} are missing (deleted)",
                    self.expected_seq,
                    e.seq - 1
                )
            } else {
                format!("entry {} appears twice", e.seq)
            })
        } else if stored_prev != self.prev {
            Some(format!(
                "entry {} does not link to the entry before it",
                e.seq
            ))
        } else if stored_hash != entry_hash(&self.prev, e) {
            Some(format!("entry {} was modified after it was written", e.seq))
        } else {
            None
        };
        match problem {
            Some(p) => {
                self.broken = Some(Break {
                    seq: e.seq.min(self.expected_seq),
                    problem: p,
                });
                false
            }
            None => {
                self.prev = entry_hash(&self.prev, e);
                self.expected_seq += 1;
                true
            }
        }
    }

    /// The first break, checking the head last: a head ahead of the last
    /// entry means the newest entries were deleted.
    pub fn finish(self, head_seq: i64, head_hash: &[u8]) -> Option<Break> {
        if self.broken.is_some() {
            return self.broken;
        }
        let last = self.expected_seq - 1;
        if head_seq != last {
            return Some(Break {
                seq: last + 1,
                problem: if head_seq > last {
                    format!("entries {}..{} are missing (deleted)", last + 1, head_seq)
                } else {
                    format!("the chain head is behind entry {last}")
                },
            });
        }
        if head_hash != self.prev {
            return Some(Break {
                seq: last,
                problem: format!("entry {last} does not match the chain head"),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, after: &'static str) -> Entry<'static> {
        Entry {
            tenant_id: "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab",
            chain: 0,
            seq,
            table_name: "public.leads",
            record_key: r#"{"id": 1}"#,
            action: "INSERT",
            actor: Some("0b8f6a57-1f43-4f4e-9a38-6d2f4b6b8c01"),
            db_role: "bizos_app",
            txid: 1000 + seq,
            at_micros: 800_000_000_000_000 + seq,
            before: None,
            after: Some(after),
            request_id: None,
        }
    }

    /// Builds a chain of `n` entries: (entry, prev, hash).
    fn chain(n: i64) -> Vec<(Entry<'static>, [u8; 32], [u8; 32])> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|i| {
                let e = entry(i, r#"{"a": 1}"#);
                let h = entry_hash(&prev, &e);
                let row = (e, prev, h);
                prev = h;
                row
            })
            .collect()
    }

    fn verify(rows: &[(Entry<'_>, [u8; 32], [u8; 32])], head: (i64, [u8; 32])) -> Option<Break> {
        let mut v = ChainVerifier::default();
        for (e, p, h) in rows {
            v.push(e, p, h);
        }
        v.finish(head.0, &head.1)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let rows = chain(5);
        let head = (5, rows[4].2);
        assert_eq!(verify(&rows, head), None);
        assert_eq!(verify(&[], (0, GENESIS)), None);
    }

    #[test]
    fn every_field_is_covered() {
        let base = entry(1, "{}");
        let h = entry_hash(&GENESIS, &base);
        let variants = [
            Entry {
                tenant_id: "x",
                ..base.clone()
            },
            Entry {
                chain: 1,
                ..base.clone()
            },
            Entry {
                seq: 2,
                ..base.clone()
            },
            Entry {
                table_name: "public.other",
                ..base.clone()
            },
            Entry {
                record_key: r#"{"id": 2}"#,
                ..base.clone()
            },
            Entry {
                action: "DELETE",
                ..base.clone()
            },
            Entry {
                actor: None,
                ..base.clone()
            },
            Entry {
                actor: Some(""),
                ..base.clone()
            },
            Entry {
                db_role: "postgres",
                ..base.clone()
            },
            Entry {
                txid: 7,
                ..base.clone()
            },
            Entry {
                at_micros: 1,
                ..base.clone()
            },
            Entry {
                before: Some("{}"),
                ..base.clone()
            },
            Entry {
                after: None,
                ..base.clone()
            },
            Entry {
                request_id: Some(""),
                ..base.clone()
            },
            Entry {
                request_id: Some("req-1"),
                ..base.clone()
            },
        ];
        for v in &variants {
            assert_ne!(entry_hash(&GENESIS, v), h, "{v:?}");
        }
        assert_ne!(entry_hash(&[1; 32], &base), h);
    }

    #[test]
    fn entries_without_a_request_id_hash_as_before_0_3_0() {
        // The hash 0.2.0 wrote for this entry: chains written before the
        // request id existed still verify.
        let h = entry_hash(&GENESIS, &entry(1, "{}"));
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "d3d3e6f48304e5600990cc66a747aca388159413b1631e85edf7aa551dd0e10b"
        );
        let with_id = Entry {
            request_id: Some("req-1"),
            ..entry(1, "{}")
        };
        let other_id = Entry {
            request_id: Some("req-2"),
            ..entry(1, "{}")
        };
        assert_ne!(entry_hash(&GENESIS, &with_id), h);
        assert_ne!(
            entry_hash(&GENESIS, &with_id),
            entry_hash(&GENESIS, &other_id)
        );
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let a = Entry {
            table_name: "ab",
            record_key: "c",
            ..entry(1, "{}")
        };
        let b = Entry {
            table_name: "a",
            record_key: "bc",
            ..entry(1, "{}")
        };
        assert_ne!(entry_hash(&GENESIS, &a), entry_hash(&GENESIS, &b));
    }

    #[test]
    fn an_edited_entry_is_named() {
        let mut rows = chain(5);
        rows[2].0.after = Some(r#"{"a": 2}"#);
        let head = (5, rows[4].2);
        let b = verify(&rows, head).unwrap();
        assert_eq!(b.seq, 3);
        assert!(b.problem.contains("modified"), "{}", b.problem);
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
        let mut rows = chain(5);
        rows[2].0.after = Some(r#"{"a": 2}"#);
        rows[2].2 = entry_hash(&rows[2].1, &rows[2].0);
        let head = (5, rows[4].2);
        let b = verify(&rows, head).unwrap();
        assert_eq!(b.seq, 4);
        assert!(b.problem.contains("does not link"), "{}", b.problem);
    }

    #[test]
    fn deleted_entries_are_named() {
        let rows = chain(5);
        let head = (5, rows[4].2);
        let mut middle = rows.clone();
        middle.remove(1);
        let b = verify(&middle, head).unwrap();
        assert_eq!(b.seq, 2);
        assert!(b.problem.contains("missing"), "{}", b.problem);

        let newest = &rows[..4];
        let b = verify(newest, head).unwrap();
        assert_eq!(b.seq, 5);
        assert!(b.problem.contains("missing"), "{}", b.problem);
    }

    #[test]
    fn a_forged_head_is_named() {
        let rows = chain(3);
        let b = verify(&rows, (3, [9; 32])).unwrap();
        assert_eq!(b.seq, 3);
    }
}
