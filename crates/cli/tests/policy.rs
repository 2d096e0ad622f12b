//! `switchboard policy …` and `switchboard limits …` against the real binary: set from a
//! file, show as a table and as JSON, check names the deciding rule, and a bad rule fails
//! naming its field.

use std::process::{Child, Command, Output};

mod common;

use common::{ADMIN, start_hub};
use switchboard_core::api::RegisterAgent;
use switchboard_core::limits::TenantLimits;
use switchboard_core::policy::PolicyRules;

fn switchboard(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("SWITCHBOARD_URL", url)
        .env("SWITCHBOARD_TOKEN", ADMIN)
        .output()
        .expect("run switchboard")
}

fn succeeded(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn policy_and_limits_commands_set_show_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let (child, admin) = start_hub(dir.path(), &[]).await;
    let _hub = Killed(child);
    let a = admin.register_agent(&RegisterAgent { name: "a".into(), ..Default::default() }).await.unwrap();
    let url = admin.base_url().to_owned();
    let from = format!("agent:{}", a.agent.id);

    assert_eq!(succeeded(&switchboard(&url, &["policy", "show"])), "no policy: everything in the tenant is allowed\n");
    let file = dir.path().join("policy.json");
    let policy = serde_json::json!({ "rules": [
        { "id": "no-ops", "from": from, "to": "topic:ops.>", "effect": "deny" },
        { "from": "*", "to": "*", "effect": "allow", "actions": ["send"] },
    ]});
    std::fs::write(&file, policy.to_string()).unwrap();
    let shown = succeeded(&switchboard(&url, &["policy", "set", file.to_str().unwrap()]));
    let lines: Vec<&str> = shown.lines().collect();
    assert!(lines[0].starts_with("#  ID") && lines[1].contains("no-ops") && lines[1].contains("deny"), "{shown}");
    assert!(lines[2].ends_with("send") && lines[3] == "anything else: denied", "{shown}");
    let json: PolicyRules =
        serde_json::from_str(&succeeded(&switchboard(&url, &["policy", "show", "--json"]))).unwrap();
    assert_eq!(serde_json::to_value(&json).unwrap(), policy);

    let out = succeeded(&switchboard(&url, &["policy", "check", "--from", &from, "--to", "topic:ops.eu"]));
    assert_eq!(out, "denied by rules[0] (no-ops)\n");
    let out = succeeded(&switchboard(&url, &["policy", "check", "--from", &from, "--to", "agent:x"]));
    assert_eq!(out, "allowed by rules[1]\n");
    let args = ["policy", "check", "--from", &from, "--to", "topic:x", "--action", "subscribe", "--json"];
    let d: serde_json::Value = serde_json::from_str(&succeeded(&switchboard(&url, &args))).unwrap();
    assert_eq!(d, serde_json::json!({ "allowed": false, "rule": null }));

    std::fs::write(&file, r#"{"rules": [{"from": "robot:x", "to": "*", "effect": "allow"}]}"#).unwrap();
    let out = switchboard(&url, &["policy", "set", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rules[0].from"), "{}", String::from_utf8_lossy(&out.stderr));

    let limits = dir.path().join("limits.json");
    std::fs::write(&limits, r#"{"send_rate": {"per_second": 5, "burst": 10}, "max_streams": 3}"#).unwrap();
    let out = succeeded(&switchboard(&url, &["limits", "set", limits.to_str().unwrap()]));
    assert!(out.contains("send_rate            5/s, burst 10") && out.contains("max_streams          3"), "{out}");
    assert!(out.contains("api_rate             off"), "{out}");
    let json: TenantLimits =
        serde_json::from_str(&succeeded(&switchboard(&url, &["limits", "show", "--json"]))).unwrap();
    assert_eq!(json.max_streams, Some(3));
}
