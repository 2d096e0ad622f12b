//! `/openapi.json` describes the API as the hub serves it: every path parameter declared,
//! every error answer listed as `application/problem+json`, and, tried against the real hub,
//! no answer with a status the document does not list for that operation.

mod common;

use std::collections::{BTreeSet, HashSet};

use common::{ADMIN, TestHub};
use reqwest::Method;
use serde_json::Value;

const PROBLEM_JSON: &str = "application/problem+json";
const PROBLEM_SCHEMA: &str = "#/components/schemas/Problem";

async fn document(hub: &TestHub) -> Value {
    let res = reqwest::get(format!("{}/openapi.json", hub.url())).await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// One operation of the document.
struct Op<'a> {
    path: &'a str,
    method: &'a str,
    op: &'a Value,
    /// Parameters of the operation and of its path item, `$ref`s resolved.
    params: Vec<&'a Value>,
}

impl Op<'_> {
    fn name(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }

    fn is_public(&self) -> bool {
        // `security: [{}]` opts out of the document-wide bearer requirement.
        self.op.get("security").and_then(Value::as_array).is_some_and(|s| s.iter().all(|r| r == &serde_json::json!({})))
    }

    /// The OAuth2 token endpoint: it reads a form and answers RFC 6749 errors
    /// (`application/json` `OAuthError`), which OAuth2 clients expect, instead of problems.
    fn is_oauth_form(&self) -> bool {
        self.op["requestBody"]["content"].get("application/x-www-form-urlencoded").is_some()
    }

    fn params_in(&self, place: &str) -> Vec<&Value> {
        self.params.iter().copied().filter(|p| p["in"] == place).collect()
    }

    fn statuses(&self) -> BTreeSet<u16> {
        let responses = self.op["responses"].as_object().expect("operation has responses");
        responses.keys().map(|k| k.parse().unwrap_or_else(|_| panic!("{}: response key `{k}`", self.name()))).collect()
    }
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];

fn operations(doc: &Value) -> Vec<Op<'_>> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let params = item["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(op["parameters"].as_array().into_iter().flatten())
                .map(|p| resolve(doc, p))
                .collect();
            ops.push(Op { path, method, op, params });
        }
    }
    assert!(ops.len() >= 30, "only {} operations in the document", ops.len());
    ops
}

/// Follows a local `$ref` (`#/components/…`), failing the test if it points at nothing.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {r}"));
            resolve(doc, doc.pointer(pointer).unwrap_or_else(|| panic!("$ref {r} points at nothing")))
        }
        None => v,
    }
}

/// The `{names}` in a path template.
fn template_params(path: &str) -> BTreeSet<&str> {
    path.split('{').skip(1).map(|rest| rest.split_once('}').expect("closed {").0).collect()
}

#[tokio::test]
async fn every_path_parameter_is_declared_on_every_operation() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    assert_eq!(doc["openapi"], "3.1.0");
    for op in operations(&doc) {
        let declared: BTreeSet<&str> = op.params_in("path").iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(declared, template_params(op.path), "{}: declared path parameters", op.name());
        for p in op.params_in("path") {
            assert_eq!(p["required"], true, "{}: path parameter {} must be required", op.name(), p["name"]);
        }
    }
    hub.stop().await;
}

#[tokio::test]
async fn operations_have_unique_ids_and_every_ref_resolves() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    let mut ids = HashSet::new();
    for op in operations(&doc) {
        let id = op.op["operationId"].as_str().unwrap_or_else(|| panic!("{} has no operationId", op.name()));
        assert!(ids.insert(id), "operationId {id} is used twice");
    }
    fn walk(doc: &Value, v: &Value) {
        match v {
            Value::Object(m) => {
                if m.contains_key("$ref") {
                    resolve(doc, v);
                }
                m.values().for_each(|v| walk(doc, v));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(doc, v)),
            _ => {}
        }
    }
    walk(&doc, &doc);
    hub.stop().await;
}

#[tokio::test]
async fn authenticated_operations_declare_the_bearer_scheme_and_401() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["type"], "http");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    let ops = operations(&doc);
    let public: BTreeSet<String> = ops.iter().filter(|o| o.is_public()).map(Op::name).collect();
    let expected: BTreeSet<String> = [
        "GET /health",
        "GET /ready",
        "GET /.well-known/switchboard-keys.json",
        // Signing in needs no token; signing out needs only the session's cookie.
        "POST /v1/auth/login",
        "POST /v1/auth/logout",
        "GET /.well-known/jwks.json",
        "GET /.well-known/oauth-authorization-server",
        "POST /oauth/token",
    ]
    .map(String::from)
    .into();
    assert_eq!(public, expected, "the operations open to anyone");
    for op in ops.iter().filter(|o| !o.is_public()) {
        assert!(op.statuses().contains(&401), "{} needs a token but does not list 401", op.name());
    }
    hub.stop().await;
}

#[tokio::test]
async fn every_error_response_is_a_problem_document() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    for op in operations(&doc) {
        let errors: Vec<u16> = op.statuses().into_iter().filter(|s| *s >= 400).collect();
        // /health answers while the process runs, and the OAuth2 metadata is made from the
        // configuration alone, so they have no error to list.
        let errorless = ["/health", "/.well-known/oauth-authorization-server"].contains(&op.path);
        assert!(!errors.is_empty() || errorless, "{} lists no error response", op.name());
        for status in errors {
            let res = resolve(&doc, &op.op["responses"][status.to_string()]);
            assert!(!res["description"].as_str().unwrap_or("").is_empty(), "{} {status}: no description", op.name());
            if op.is_oauth_form() {
                let schema = &res["content"]["application/json"]["schema"];
                assert_eq!(schema["$ref"], "#/components/schemas/OAuthError", "{} {status}", op.name());
                continue;
            }
            let schema = &res["content"][PROBLEM_JSON]["schema"];
            assert_eq!(schema["$ref"], PROBLEM_SCHEMA, "{} {status}: not a {PROBLEM_JSON} Problem", op.name());
        }
        if op.is_oauth_form() {
            continue;
        }
        // What every extractor can refuse: the query string, the JSON body.
        let statuses = op.statuses();
        if !op.params_in("query").is_empty() {
            assert!(statuses.contains(&400), "{} takes query parameters but does not list 400", op.name());
        }
        if op.op.get("requestBody").is_some() {
            for s in [400, 413, 422] {
                assert!(statuses.contains(&s), "{} takes a JSON body but does not list {s}", op.name());
            }
        }
    }
    hub.stop().await;
}

#[tokio::test]
async fn the_constraints_the_server_enforces_are_in_the_schema() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    let schemas = &doc["components"]["schemas"];
    let name = &schemas["RegisterAgent"]["properties"]["name"];
    assert_eq!((name["pattern"].as_str(), name["maxLength"].as_u64()), (Some("^[A-Za-z0-9._-]{1,200}$"), Some(200)));
    assert_eq!(schemas["SendMessage"]["properties"]["parts"]["minItems"], 1);
    assert!(schemas["SendMessage"]["properties"]["to"]["pattern"].as_str().is_some_and(|p| p.contains("topic")));
    assert_eq!(schemas["SendBatch"]["properties"]["messages"]["maxItems"], 1000);
    assert_eq!(schemas["AckRequest"]["properties"]["ids"]["minItems"], 1);
    assert_eq!(schemas["SendMessage"]["properties"]["ttl_seconds"]["maximum"], 2_592_000);
    let op = operations(&doc).into_iter().find(|o| o.path == "/v1/inbox").unwrap();
    let wait = op.params_in("query").into_iter().find(|p| p["name"] == "wait_ms").unwrap();
    assert_eq!(wait["schema"]["maximum"], 60_000);
    let op = operations(&doc).into_iter().find(|o| o.path == "/v1/topics/{topic}/subscribers").unwrap();
    let topic = op.params_in("path").into_iter().find(|p| p["name"] == "topic").unwrap();
    assert!(topic["schema"]["pattern"].is_string(), "topic names have a pattern");
    hub.stop().await;
}

#[tokio::test]
async fn send_documents_the_reply_wait_answers() {
    let hub = TestHub::start().await;
    let doc = document(&hub).await;
    let op = operations(&doc).into_iter().find(|o| o.path == "/v1/messages" && o.method == "post").unwrap();
    assert!(op.statuses().is_superset(&BTreeSet::from([200, 202, 504])), "{:?}", op.statuses());
    let ok = resolve(&doc, &op.op["responses"]["200"]);
    let schema = resolve(&doc, &ok["content"]["application/json"]["schema"]);
    assert!(schema["required"].as_array().unwrap().iter().any(|r| r == "reply"), "{schema}");
    let timeout = resolve(&doc, &op.op["responses"]["504"]);
    assert!(timeout["content"][PROBLEM_JSON].is_object(), "{timeout}");
    let timeout_ms = op.params_in("query").into_iter().find(|p| p["name"] == "timeout_ms").unwrap();
    assert_eq!(timeout_ms["schema"]["maximum"], 300_000);
    let wait = op.params_in("query").into_iter().find(|p| p["name"] == "wait").unwrap();
    let wait = resolve(&doc, &wait["schema"]);
    assert!(wait.to_string().contains("reply"), "{wait}");
    let props = &doc["components"]["schemas"]["SendMessage"]["properties"];
    assert!(props["priority"].is_object() && props["require_active"].is_object(), "{props}");
    hub.stop().await;
}

/// Fills a path template with ids that name nothing.
fn concrete(path: &str) -> String {
    path.replace("{id}", "no-such-id").replace("{agent_id}", "no-such-agent").replace("{topic}", "no-such-topic")
}

/// Asks the hub `method path` and fails if the answer's status is not listed for `op`, or an
/// error answer is not a problem document.
async fn probe(
    http: &reqwest::Client,
    url: &str,
    op: &Op<'_>,
    token: Option<&str>,
    query: &str,
    body: Option<Vec<u8>>,
) {
    let method = Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
    let mut req = http.request(method, format!("{url}{}{query}", concrete(op.path)));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let what = format!("{} (token: {}, query: `{query}`)", op.name(), token.is_some());
    assert!(op.statuses().contains(&status), "{what} answered {status}, which the document does not list");
    if status >= 400 {
        let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        let want = if op.is_oauth_form() { "application/json" } else { PROBLEM_JSON };
        assert_eq!(ct, want, "{what} answered {status} as `{ct}`");
    }
}

#[tokio::test]
async fn the_hub_answers_only_statuses_its_document_lists() {
    let hub = TestHub::start_with(|c| c.max_message_bytes = 4096).await;
    let doc = document(&hub).await;
    let (url, http) = (hub.url(), reqwest::Client::new());
    let too_big = vec![b' '; 2 * 1024 * 1024];
    for op in operations(&doc) {
        let body = op.op.get("requestBody").map(|_| b"{}".to_vec());
        if !op.is_public() {
            probe(&http, &url, &op, None, "", body.clone()).await;
        }
        probe(&http, &url, &op, Some(ADMIN), "", body.clone()).await;
        if !op.params_in("query").is_empty() {
            probe(&http, &url, &op, Some(ADMIN), "?no_such_parameter=1", body.clone()).await;
        }
        if body.is_some() {
            probe(&http, &url, &op, Some(ADMIN), "", Some(b"{\"unterminated".to_vec())).await;
            probe(&http, &url, &op, Some(ADMIN), "", Some(too_big.clone())).await;
        }
    }
    hub.stop().await;
}
