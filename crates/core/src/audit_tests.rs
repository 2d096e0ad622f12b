//! The audit chain's pure half: canonical form, hashing and verification.

use super::*;
use serde_json::json;

fn new(action: AuditAction, target: &str, detail: Value) -> NewAuditEvent {
    NewAuditEvent {
        tenant: "t1".into(),
        at: 1_795_000_000_123,
        actor: "admin".into(),
        action,
        target: target.into(),
        detail,
    }
}

fn chain(n: usize) -> Vec<AuditEvent> {
    let mut out: Vec<AuditEvent> = Vec::new();
    for i in 0..n {
        let prev = out.last().map(|e| (e.seq, e.hash.as_str()));
        let next = chain_next(
            prev,
            &new(AuditAction::AgentRegister, &crate::Recipient::agent_text(&format!("a{i}").into()), json!({"i": i})),
        );
        out.push(next);
    }
    out
}

/// The canonical form is a contract with whoever verifies an export: these exact bytes.
#[test]
fn canonical_form_is_pinned() {
    let detail = json!({"z": [1, 2.5, null, true], "a": {"y": "é\"\n", "b": false}});
    let e = chain_next(None, &new(AuditAction::AgentDelete, "agent:a1", detail));
    assert_eq!(
        canonical_form(&e),
        r#"{"action":"agent.delete","actor":"admin","at":"2026-11-18T11:06:40.123Z","detail":{"a":{"b":false,"y":"é\"\n"},"z":[1,2.5,null,true]},"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","seq":1,"target":"agent:a1"}"#
    );
    // hash = SHA-256("000…0" || canonical), computed independently with `sha256sum`.
    assert_eq!(e.hash, "4585bd1869564962428a6f727dc67a1600eb217c75d597af402348dae6873cca");
}

#[test]
fn appended_entries_link_to_their_predecessor() {
    let c = chain(3);
    assert_eq!(c[0].prev_hash, GENESIS_HASH);
    assert_eq!((c[1].seq, c[1].prev_hash.as_str()), (2, c[0].hash.as_str()));
    assert_eq!(verify(&c), Ok(()));
    assert_eq!(verify(&[]), Ok(()));
}

#[test]
fn an_edited_entry_is_named() {
    let mut c = chain(3);
    c[1].detail = json!({"i": 99});
    assert_eq!(verify(&c), Err(ChainBreak { seq: 2, kind: BreakKind::Edited }));
    let mut c = chain(3);
    c[2].actor = "agent:mallory".into();
    assert_eq!(verify(&c), Err(ChainBreak { seq: 3, kind: BreakKind::Edited }));
}

#[test]
fn a_removed_entry_is_named() {
    let mut c = chain(4);
    c.remove(1);
    assert_eq!(verify(&c), Err(ChainBreak { seq: 3, kind: BreakKind::Removed { from: 2, to: 2 } }));
    let mut c = chain(2);
    c.remove(0);
    assert_eq!(verify(&c), Err(ChainBreak { seq: 2, kind: BreakKind::Removed { from: 1, to: 1 } }));
}

#[test]
fn a_removed_tail_is_named_against_the_head() {
    let c = chain(2);
    let mut check = ChainCheck::default();
    c.iter().for_each(|e| check.next(e).unwrap());
    assert_eq!(check.finish(2), Ok(()));
    assert_eq!(check.finish(4), Err(ChainBreak { seq: 2, kind: BreakKind::Removed { from: 3, to: 4 } }));
    assert_eq!(check.finish(1), Err(ChainBreak { seq: 2, kind: BreakKind::BeyondHead { head: 1 } }));
}

#[test]
fn swapped_entries_are_named_as_reordered() {
    // Rows 2 and 3 swap their seq: read in seq order, the old entry 3 comes second.
    let mut c = chain(4);
    c.swap(1, 2);
    (c[1].seq, c[2].seq) = (2, 3);
    assert_eq!(verify(&c), Err(ChainBreak { seq: 2, kind: BreakKind::Reordered }));
    // Read in stored order without renumbering.
    let mut c = chain(3);
    c.swap(1, 2);
    assert_eq!(verify(&c), Err(ChainBreak { seq: 3, kind: BreakKind::Removed { from: 2, to: 2 } }));
    let mut c = chain(3);
    c[2].seq = 1;
    assert_eq!(verify(&c), Err(ChainBreak { seq: 1, kind: BreakKind::OutOfOrder { previous: 2 } }));
}

#[test]
fn breaks_say_what_is_wrong() {
    let b = ChainBreak { seq: 7, kind: BreakKind::Edited };
    assert_eq!(b.to_string(), "entry 7 was edited: its content does not match its hash");
    let b = ChainBreak { seq: 7, kind: BreakKind::Removed { from: 5, to: 6 } };
    assert_eq!(b.to_string(), "entries 5 to 6 were removed (found at entry 7)");
    let b = ChainBreak { seq: 4, kind: BreakKind::Removed { from: 5, to: 5 } };
    assert_eq!(b.to_string(), "entry 5 was removed (the chain ends at entry 4, but its head records 5)");
    let b = ChainBreak { seq: 0, kind: BreakKind::Removed { from: 1, to: 2 } };
    assert_eq!(b.to_string(), "entries 1 to 2 were removed (none is left, but the chain's head records 2)");
    assert_eq!(
        serde_json::to_value(ChainBreak { seq: 3, kind: BreakKind::Reordered }).unwrap(),
        json!({"seq": 3, "kind": "reordered"})
    );
}

#[test]
fn actions_round_trip_their_text() {
    for a in AuditAction::ALL {
        assert_eq!(AuditAction::parse(a.as_str()), Some(a));
    }
    assert_eq!(AuditAction::parse("agent.explode"), None);
}

#[test]
fn detail_hashes_the_same_after_a_store_round_trip() {
    let e = chain_next(None, &new(AuditAction::PolicySet, "policy", json!({"b": 1e300, "a": u64::MAX})));
    let stored = canonical_json(&e.detail);
    let mut read = e.clone();
    read.detail = serde_json::from_str(&stored).unwrap();
    assert_eq!(entry_hash(&read), e.hash);
}
