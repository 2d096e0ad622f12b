//! The A2A area on every backend: the task index lists one agent's tasks newest first, by
//! owner and context, without duplicates; push configs are stored per task, replaced by id,
//! deleted once, and listed across tenants for a starting node.

use switchboard_store::a2a::{A2aPushConfigRecord, A2aTaskFilter, A2aTaskRecord};
use switchboard_store::prelude::*;

use super::T;

fn task(id: &str, owner: &str, ctx: &str, at: i64) -> A2aTaskRecord {
    A2aTaskRecord {
        tenant: T.into(),
        id: id.into(),
        agent_id: "bob".into(),
        owner: owner.into(),
        context_id: ctx.into(),
        created_at: at,
    }
}

fn config(task: &str, id: &str, url: &str, at: i64) -> A2aPushConfigRecord {
    A2aPushConfigRecord {
        tenant: T.into(),
        task_id: task.into(),
        id: id.into(),
        owner: "agent:alice".into(),
        url: url.into(),
        token: Some("tok".into()),
        auth_scheme: Some("Bearer".into()),
        auth_credentials: Some("secret".into()),
        created_at: at,
    }
}

pub async fn a2a_tasks_and_push_configs_are_kept(s: &dyn Store) {
    s.record_a2a_task(task("t1", "agent:alice", "c1", 1)).await.unwrap();
    s.record_a2a_task(task("t2", "agent:alice", "c2", 2)).await.unwrap();
    s.record_a2a_task(task("t3", "agent:carol", "c1", 3)).await.unwrap();
    s.record_a2a_task(task("t1", "agent:alice", "c1", 9)).await.unwrap(); // again: nothing
    let list = |owner: Option<&str>, ctx: Option<&str>| A2aTaskFilter {
        agent_id: "bob".into(),
        owner: owner.map(str::to_owned),
        context_id: ctx.map(str::to_owned),
        limit: 10,
    };
    let ids = |v: Vec<A2aTaskRecord>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(s.list_a2a_tasks(T, list(None, None)).await.unwrap()), ["t3", "t2", "t1"]);
    assert_eq!(ids(s.list_a2a_tasks(T, list(Some("agent:alice"), None)).await.unwrap()), ["t2", "t1"]);
    assert_eq!(ids(s.list_a2a_tasks(T, list(Some("agent:alice"), Some("c1"))).await.unwrap()), ["t1"]);
    assert!(s.list_a2a_tasks("other", list(None, None)).await.unwrap().is_empty());

    s.put_a2a_push_config(config("t1", "a", "https://x/1", 5)).await.unwrap();
    s.put_a2a_push_config(config("t1", "b", "https://x/2", 6)).await.unwrap();
    s.put_a2a_push_config(config("t1", "a", "https://x/3", 7)).await.unwrap(); // replaces `a`
    let got = s.a2a_push_configs(T, "t1").await.unwrap();
    assert_eq!(got.iter().map(|c| c.url.as_str()).collect::<Vec<_>>(), ["https://x/3", "https://x/2"]);
    assert_eq!(got[0].auth_credentials.as_deref(), Some("secret"));
    assert_eq!(s.all_a2a_push_configs(i64::MIN, 10).await.unwrap().len(), 2);
    assert_eq!(s.all_a2a_push_configs(5, 10).await.unwrap().len(), 1, "paged by creation time");
    assert!(s.delete_a2a_push_config(T, "t1", "a").await.unwrap());
    assert!(!s.delete_a2a_push_config(T, "t1", "a").await.unwrap());
    assert_eq!(s.a2a_push_configs(T, "t1").await.unwrap().len(), 1);
    assert!(s.a2a_push_configs(T, "t2").await.unwrap().is_empty());
}
