//! BM25 over the tenant's capabilities: the embedded ranker of `auto`, which needs no model.
//!
//! Each capability (deduplicated by name across agents: their texts are joined) is one
//! document made of its name (split at `-_.`, counted twice: it is the most telling text),
//! description, tags (twice, for the same reason) and examples. A message's text parts, and
//! the strings of its data parts, are the query. Tokens are lower-cased runs of letters and
//! digits, minus a small stop-word list, with a light stemming (plural `s`, `ies`, `ing`,
//! `ed`) applied alike to both sides.

use std::collections::{HashMap, HashSet};

use switchboard_core::api::{Capability, Part};

/// Term-frequency saturation.
const K1: f64 = 1.2;
/// Length normalisation.
const B: f64 = 0.75;

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "could", "do", "does", "for", "from", "have", "how",
    "i", "if", "in", "into", "is", "it", "its", "me", "my", "need", "needs", "of", "on", "or", "our", "please", "so",
    "some", "that", "the", "their", "them", "then", "there", "these", "this", "to", "us", "was", "we", "what", "when",
    "which", "who", "will", "with", "would", "you", "your", "want", "get", "got", "just", "also", "all", "any", "hi",
    "hello", "thanks", "thank", "should", "about", "up", "out", "help", "let", "make", "sure", "one", "been", "has",
    "had", "were", "than", "too", "very", "not", "no", "yes", "am", "here", "via", "per", "each", "other",
];

/// A word's stem: light suffix stripping, enough to meet `invoices`/`invoice`,
/// `translating`/`translate`d, `queries`/`query`.
fn stem(w: &str) -> String {
    let mut w = w.to_owned();
    let n = w.len();
    if n > 4 && w.ends_with("ies") {
        w.truncate(n - 3);
        w.push('y');
    } else if n > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") {
        w.truncate(n - 1);
    }
    let n = w.len();
    if n > 5 && w.ends_with("ing") {
        w.truncate(n - 3);
    } else if n > 4 && w.ends_with("ed") {
        w.truncate(n - 2);
    }
    // `translate`, `translated` and `translating` meet at `translat`.
    let n = w.len();
    if n > 4 && w.ends_with('e') {
        w.truncate(n - 1);
    }
    w
}

/// The tokens of a text, in order.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

/// The text of a message that auto-routing reads: text parts, and the strings (and keys) of
/// data parts. Files are not read.
pub fn message_text(parts: &[Part]) -> String {
    fn walk(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::String(s) => {
                out.push_str(s);
                out.push(' ');
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    out.push_str(k);
                    out.push(' ');
                    walk(x, out);
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    for p in parts {
        match p {
            Part::Text { text } => {
                out.push_str(text);
                out.push(' ');
            }
            Part::Data { data } => walk(data, &mut out),
            Part::File { .. } | Part::Sealed { .. } => {}
        }
    }
    out
}

/// One capability as the ranker knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    pub name: String,
    /// Its description (the first one seen), for a model's prompt.
    pub description: String,
    /// Everything it is ranked on, as one text (for embeddings).
    pub text: String,
    terms: HashMap<String, f64>,
    len: f64,
}

/// The index of one tenant's capabilities.
#[derive(Debug, Clone, Default)]
pub struct Index {
    pub docs: Vec<Doc>,
    idf: HashMap<String, f64>,
    avg_len: f64,
}

impl Index {
    /// Builds the index from every capability of the tenant's agents; capabilities of one
    /// name are one document.
    pub fn build<'a>(caps: impl IntoIterator<Item = &'a Capability>) -> Index {
        let mut by_name: Vec<(String, Vec<&Capability>)> = Vec::new();
        for c in caps {
            match by_name.iter_mut().find(|(n, _)| *n == c.name) {
                Some((_, v)) => v.push(c),
                None => by_name.push((c.name.clone(), vec![c])),
            }
        }
        by_name.sort_by(|a, b| a.0.cmp(&b.0));
        let mut docs = Vec::with_capacity(by_name.len());
        for (name, caps) in by_name {
            let mut weighted: Vec<String> = Vec::new();
            let mut text = name.replace(['-', '_', '.'], " ");
            let name_tokens = tokens(&text);
            weighted.extend(name_tokens.iter().cloned());
            weighted.extend(name_tokens);
            let mut seen_desc = HashSet::new();
            let mut description = String::new();
            for c in &caps {
                if let Some(d) = &c.description
                    && seen_desc.insert(d.clone())
                {
                    if description.is_empty() {
                        description = d.clone();
                    }
                    weighted.extend(tokens(d));
                    text.push_str(". ");
                    text.push_str(d);
                }
                for t in &c.tags {
                    let tt = tokens(t);
                    weighted.extend(tt.iter().cloned());
                    weighted.extend(tt);
                    text.push_str(". ");
                    text.push_str(t);
                }
                for e in &c.examples {
                    weighted.extend(tokens(e));
                    text.push_str(". ");
                    text.push_str(e);
                }
            }
            let mut terms: HashMap<String, f64> = HashMap::new();
            for t in &weighted {
                *terms.entry(t.clone()).or_default() += 1.0;
            }
            docs.push(Doc { name, description, text, len: weighted.len() as f64, terms });
        }
        let n = docs.len() as f64;
        let mut df: HashMap<String, f64> = HashMap::new();
        for d in &docs {
            for t in d.terms.keys() {
                *df.entry(t.clone()).or_default() += 1.0;
            }
        }
        let idf = df.into_iter().map(|(t, f)| (t, (1.0 + (n - f + 0.5) / (f + 0.5)).ln())).collect();
        let avg_len = if docs.is_empty() { 0.0 } else { docs.iter().map(|d| d.len).sum::<f64>() / n };
        Index { docs, idf, avg_len }
    }

    /// Every capability's score for the query, best first (ties by name); zero scores too.
    pub fn rank(&self, query: &str) -> Vec<(String, f64)> {
        let q: HashSet<String> = tokens(query).into_iter().collect();
        let mut out: Vec<(String, f64)> = self
            .docs
            .iter()
            .map(|d| {
                let norm = K1 * (1.0 - B + B * d.len / self.avg_len.max(1.0));
                let score = q
                    .iter()
                    .filter_map(|t| {
                        let f = *d.terms.get(t)?;
                        Some(self.idf.get(t).copied().unwrap_or(0.0) * f * (K1 + 1.0) / (f + norm))
                    })
                    .fold(0.0, |a, b| a + b);
                (d.name.clone(), score)
            })
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

/// Whether the best of a ranking is clear enough to route: at least `threshold`, and ahead
/// of the runner-up by at least `margin` of itself.
pub fn confident(ranked: &[(String, f64)], threshold: f64, margin: f64) -> bool {
    let Some((_, top)) = ranked.first() else { return false };
    let second = ranked.get(1).map_or(0.0, |r| r.1);
    *top > 0.0 && *top >= threshold && (top - second) / top >= margin
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(name: &str, description: &str, tags: &[&str], examples: &[&str]) -> Capability {
        Capability {
            description: Some(description.into()),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            examples: examples.iter().map(|t| t.to_string()).collect(),
            ..Capability::named(name)
        }
    }

    #[test]
    fn tokens_drop_stopwords_and_meet_at_their_stem() {
        assert_eq!(tokens("Please translate the Invoices!"), ["translat", "invoic"]);
        assert_eq!(tokens("invoice translated"), ["invoic", "translat"]);
        assert_eq!(tokens("translating queries"), ["translat", "query"]);
        assert_eq!(tokens("status class"), ["status", "class"]);
    }

    #[test]
    fn the_relevant_capability_ranks_first_and_confidence_needs_a_margin() {
        let caps = [
            cap("translation", "Translate text between languages", &["language"], &["translate this into French"]),
            cap("invoice-processing", "Extract totals from invoices", &["finance"], &["process this invoice"]),
        ];
        let index = Index::build(caps.iter());
        let ranked = index.rank("Could you translate this paragraph into German?");
        assert_eq!(ranked[0].0, "translation");
        assert!(confident(&ranked, 0.5, 0.2), "{ranked:?}");
        let none = index.rank("what is the weather like");
        assert!(none.iter().all(|(_, s)| *s == 0.0));
        assert!(!confident(&none, 0.5, 0.2));
        assert!(!confident(&[("a".into(), 3.0), ("b".into(), 2.9)], 1.0, 0.2), "too close to call");
        assert!(!confident(&[("a".into(), 0.4)], 1.0, 0.0), "below the threshold");
    }

    #[test]
    fn capabilities_of_one_name_are_one_document() {
        let a = cap("translation", "Translate text", &[], &[]);
        let b = cap("translation", "Translate documents", &["language"], &[]);
        let index = Index::build([&a, &b]);
        assert_eq!(index.docs.len(), 1);
        assert!(index.docs[0].text.contains("documents") && index.docs[0].text.contains("language"));
    }

    #[test]
    fn data_parts_are_read_as_text() {
        let parts = vec![Part::text("hi"), Part::Data { data: serde_json::json!({ "task": ["refund", 3] }) }];
        assert_eq!(message_text(&parts), "hi task refund ");
    }
}
