//! The optional model of a tenant: an OpenAI-compatible endpoint asked to pick a capability
//! (chat completions) or to embed the message and the capabilities (embeddings). Every
//! failure (timeout, transport, status, an answer that does not parse) comes back as a short
//! reason, and BM25 decides instead. The key is sent as a bearer token and never logged or
//! put in a reason.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::api::ModelKind;

use super::bm25::Doc;

/// A configured model, with its key.
#[derive(Clone)]
pub struct Model {
    pub kind: ModelKind,
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout_ms: u64,
    pub min_similarity: f64,
}

/// What the model decided: a capability, or none of them; with its scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub chosen: Option<String>,
    pub scores: Vec<(String, f64)>,
    pub reason: String,
}

/// Most characters of the message sent to a model.
const MAX_QUERY_CHARS: usize = 8000;

/// Capability embeddings, by (base URL, model, capability text): computed once per node.
#[derive(Default)]
pub struct EmbeddingCache {
    vectors: Mutex<HashMap<(String, String, String), Vec<f64>>>,
}

fn url(base: &str, path: &str) -> String {
    format!("{}/{path}", base.trim_end_matches('/'))
}

async fn post(http: &reqwest::Client, m: &Model, path: &str, body: Value) -> Result<Value, String> {
    let mut req = http
        .post(url(&m.base_url, path))
        .timeout(Duration::from_millis(m.timeout_ms))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Some(k) = &m.api_key {
        req = req.bearer_auth(k);
    }
    let res = req.send().await.map_err(|e| {
        if e.is_timeout() {
            format!("the model did not answer within {} ms", m.timeout_ms)
        } else {
            format!("the model could not be reached ({})", e.without_url())
        }
    })?;
    let status = res.status();
    if !status.is_success() {
        return Err(format!("the model answered HTTP {}", status.as_u16()));
    }
    let bytes = res.bytes().await.map_err(|e| {
        if e.is_timeout() {
            format!("the model did not answer within {} ms", m.timeout_ms)
        } else {
            format!("the model's answer broke off ({})", e.without_url())
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|_| "the model's answer is not JSON".to_owned())
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(MAX_QUERY_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Asks a chat model to name one of `docs` or `none`.
pub async fn chat(http: &reqwest::Client, m: &Model, docs: &[Doc], query: &str) -> Result<Answer, String> {
    let list: String = docs.iter().map(|d| format!("- {}: {}\n", d.name, d.description)).collect();
    let system = format!(
        "You route requests to the one capability that should handle them. The capabilities are:\n{list}\
         Answer with exactly one capability name from the list, or `none` if no capability clearly fits. \
         Answer with the name only."
    );
    let body = json!({
        "model": m.model,
        "temperature": 0,
        "messages": [
            { "role": "system", "content": system },
            { "role": "user", "content": clip(query) },
        ],
    });
    let v = post(http, m, "chat/completions", body).await?;
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .ok_or_else(|| "the model's answer has no choices[0].message.content".to_owned())?;
    let said = text.trim().trim_matches(|c: char| c == '`' || c == '"' || c == '\'' || c == '.').to_lowercase();
    if said == "none" {
        return Ok(Answer {
            chosen: None,
            scores: Vec::new(),
            reason: "the model found no capability that fits".into(),
        });
    }
    match docs.iter().find(|d| d.name.to_lowercase() == said) {
        Some(d) => Ok(Answer {
            chosen: Some(d.name.clone()),
            scores: vec![(d.name.clone(), 1.0)],
            reason: format!("the model chose `{}`", d.name),
        }),
        None => Err("the model named no capability of the list".into()),
    }
}

fn vectors(v: &Value, n: usize) -> Result<Vec<Vec<f64>>, String> {
    let data = v["data"].as_array().ok_or_else(|| "the model's answer has no `data` list".to_owned())?;
    let mut out: Vec<(usize, Vec<f64>)> = Vec::with_capacity(data.len());
    for (i, d) in data.iter().enumerate() {
        let index = d["index"].as_u64().map_or(i, |x| x as usize);
        let e = d["embedding"].as_array().ok_or_else(|| "an embedding is not a list of numbers".to_owned())?;
        let e: Option<Vec<f64>> = e.iter().map(Value::as_f64).collect();
        out.push((index, e.ok_or_else(|| "an embedding is not a list of numbers".to_owned())?));
    }
    out.sort_by_key(|(i, _)| *i);
    if out.len() != n {
        return Err(format!("the model returned {} embeddings for {n} inputs", out.len()));
    }
    Ok(out.into_iter().map(|(_, e)| e).collect())
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return 0.0;
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let (na, nb) = (a.iter().map(|x| x * x).sum::<f64>().sqrt(), b.iter().map(|x| x * x).sum::<f64>().sqrt());
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na * nb) }
}

/// Ranks `docs` by cosine similarity to the query; capability vectors come from `cache`
/// when it has them. Routes when the best reaches `min_similarity` and leads by `margin`.
pub async fn embeddings(
    http: &reqwest::Client,
    cache: &EmbeddingCache,
    m: &Model,
    docs: &[Doc],
    query: &str,
    margin: f64,
) -> Result<Answer, String> {
    let key = |d: &Doc| (m.base_url.clone(), m.model.clone(), d.text.clone());
    let missing: Vec<&Doc> = {
        let have = cache.vectors.lock().expect("embedding cache poisoned");
        docs.iter().filter(|d| !have.contains_key(&key(d))).collect()
    };
    let mut inputs: Vec<&str> = vec![clip(query)];
    inputs.extend(missing.iter().map(|d| clip(&d.text)));
    let v = post(http, m, "embeddings", json!({ "model": m.model, "input": inputs })).await?;
    let mut got = vectors(&v, inputs.len())?.into_iter();
    let q = got.next().unwrap_or_default();
    let mut have = cache.vectors.lock().expect("embedding cache poisoned");
    if have.len() > 10_000 {
        have.clear();
    }
    for (d, e) in missing.iter().zip(got) {
        have.insert(key(d), e);
    }
    let mut scores: Vec<(String, f64)> =
        docs.iter().map(|d| (d.name.clone(), have.get(&key(d)).map_or(0.0, |e| cosine(&q, e)))).collect();
    drop(have);
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let chosen = super::bm25::confident(&scores, m.min_similarity, margin).then(|| scores[0].0.clone());
    let reason = match &chosen {
        Some(c) => format!("closest by embeddings: `{c}`"),
        None => format!(
            "no capability is close enough by embeddings (similarity {:.2} of at least {:.2}, with a lead of {:.0}%)",
            scores.first().map_or(0.0, |s| s.1),
            m.min_similarity,
            margin * 100.0
        ),
    };
    Ok(Answer { chosen, scores, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_vectors() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-9);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 2.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn embeddings_come_back_in_input_order() {
        let v = json!({ "data": [ { "index": 1, "embedding": [2.0] }, { "index": 0, "embedding": [1.0] } ] });
        assert_eq!(vectors(&v, 2).unwrap(), vec![vec![1.0], vec![2.0]]);
        assert!(vectors(&v, 3).is_err());
        assert!(vectors(&json!({}), 1).is_err());
    }
}
