//! A person's inbox and conversation statuses on every backend: newest first with a cursor,
//! unread only, by sender, by text (case-insensitive, `%` and `_` taken literally), the
//! router's items only; statuses vanish when they expire.

use switchboard_store::inbox::InboxQuery;
use switchboard_store::prelude::*;

use super::{T, message};

pub async fn a_persons_inbox_is_newest_first_filtered_and_searched(s: &dyn Store) {
    let me = "user:ann";
    let texts = ["Quarterly NUMBERS ready", "50% off_sale", "lunch?", "numbers again"];
    for (i, text) in texts.iter().enumerate() {
        let mut m = message(T, &format!("m{i}"), me, None);
        m.parts = serde_json::json!([{ "kind": "text", "text": text }]).to_string();
        m.sender = if i % 2 == 0 { "agent:a".into() } else { "agent:b".into() };
        if i == 2 {
            m.to = "auto".into();
        }
        s.accept(vec![m]).await.unwrap();
    }
    // Someone else's message is never in Ann's inbox.
    s.accept(vec![message(T, "other", "user:bo", None)]).await.unwrap();
    let q = |f: fn(&mut InboxQuery)| {
        let mut q = InboxQuery { recipient: me.into(), limit: 10, ..Default::default() };
        f(&mut q);
        q
    };
    let ids =
        |items: Vec<switchboard_store::inbox::InboxItem>| items.into_iter().map(|i| i.message.id).collect::<Vec<_>>();
    let all = s.person_inbox(T, q(|_| {})).await.unwrap();
    assert_eq!(ids(all.clone()), ["m3", "m2", "m1", "m0"], "newest first");
    let page = s.person_inbox(T, InboxQuery { before: Some(all[1].seq), ..q(|_| {}) }).await.unwrap();
    assert_eq!(ids(page), ["m1", "m0"], "the cursor pages on");
    assert_eq!(ids(s.person_inbox(T, q(|q| q.from = Some("agent:b".into()))).await.unwrap()), ["m3", "m1"]);
    assert_eq!(ids(s.person_inbox(T, q(|q| q.text = Some("numbers".into()))).await.unwrap()), ["m3", "m0"]);
    assert_eq!(ids(s.person_inbox(T, q(|q| q.text = Some("50%".into()))).await.unwrap()), ["m1"]);
    assert!(s.person_inbox(T, q(|q| q.text = Some("5_%".into()))).await.unwrap().is_empty(), "`_` is literal");
    assert_eq!(ids(s.person_inbox(T, q(|q| q.auto_only = true)).await.unwrap()), ["m2"]);

    assert_eq!(s.person_unread(T, me).await.unwrap(), 4);
    s.ack(T, me, vec!["m0".into(), "m3".into()], 2000, None).await.unwrap();
    assert_eq!(s.person_unread(T, me).await.unwrap(), 2, "read (acknowledged) ones are not counted");
    assert_eq!(ids(s.person_inbox(T, q(|q| q.unread_only = true)).await.unwrap()), ["m2", "m1"]);
    assert!(s.person_inbox("t2", q(|_| {})).await.unwrap().is_empty(), "another tenant's inbox is its own");
}

pub async fn working_statuses_expire(s: &dyn Store) {
    s.set_status(T, "c1", "agent:a", Some(("summarizing…".into(), 5_000)), 1_000).await.unwrap();
    s.set_status(T, "c1", "agent:b", Some(("reading".into(), 2_000)), 1_000).await.unwrap();
    let now = s.statuses(T, "c1", 1_500).await.unwrap();
    assert_eq!(now.iter().map(|s| s.text.as_str()).collect::<Vec<_>>(), ["summarizing…", "reading"]);
    let later = s.statuses(T, "c1", 2_000).await.unwrap();
    assert_eq!(later.len(), 1, "an expired status is gone: {later:?}");
    s.set_status(T, "c1", "agent:a", Some(("writing".into(), 9_000)), 2_500).await.unwrap();
    assert_eq!(s.statuses(T, "c1", 3_000).await.unwrap()[0].text, "writing", "a new status replaces the old");
    s.set_status(T, "c1", "agent:a", None, 3_000).await.unwrap();
    assert!(s.statuses(T, "c1", 3_000).await.unwrap().is_empty(), "cleared");
    assert!(s.statuses("t2", "c1", 1_500).await.unwrap().is_empty(), "per tenant");
}
