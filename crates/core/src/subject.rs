//! Topic subjects and wildcard patterns, as NATS has them: tokens separated by `.`; in a
//! pattern, `*` stands for exactly one token and `>`, last only, for one or more. A topic
//! name never holds a wildcard (`address::check_name` refuses `*` and `>`).
//!
//! [`PatternTrie`] answers "which subscriptions match this subject" by walking the subject's
//! tokens once per branch (`literal`, `*`, `>`), not by testing every pattern.

use std::collections::{BTreeSet, HashMap};

use crate::address::{AddressError, check_name};

/// Whether `s` is a pattern (has a `*` or `>` token) rather than a topic name.
pub fn is_pattern(s: &str) -> bool {
    s.split('.').any(|t| t == "*" || t == ">")
}

/// Checks a subscription's topic: a name, or a pattern whose wildcards are whole tokens
/// (`orders.*`, `orders.>`; not `ord*`, not `orders.>.eu`), with no empty token.
pub fn check_pattern(p: &str) -> Result<(), AddressError> {
    let tokens: Vec<&str> = p.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        match *t {
            "*" => {}
            ">" if i + 1 == tokens.len() => {}
            ">" => {
                return Err(AddressError(format!(
                    "`{p}` is not a valid topic pattern: `>` matches the rest of a subject, so it must be the last token \
                     (`orders.>`)"
                )));
            }
            _ if t.contains(['*', '>']) => {
                return Err(AddressError(format!(
                    "`{p}` is not a valid topic pattern: a wildcard is a whole token (`orders.*`, `orders.>`), not part \
                     of one (`{t}`)"
                )));
            }
            _ => {}
        }
    }
    // With each wildcard standing in for a one-letter token, a pattern follows the name rule
    // (characters, length, no empty token).
    let stand_in: Vec<&str> = tokens.iter().map(|t| if *t == "*" || *t == ">" { "x" } else { t }).collect();
    check_name("topic", &stand_in.join(".")).map_err(|e| AddressError(e.0.replace("topic name", "topic pattern")))
}

/// Whether subject `name` (no wildcards) matches pattern `p` (NATS rules). The plain
/// matcher: [`PatternTrie`] gives the same answers without scanning.
pub fn matches(p: &str, name: &str) -> bool {
    let mut tokens = name.split('.');
    let pat: Vec<&str> = p.split('.').collect();
    for (i, t) in pat.iter().enumerate() {
        if *t == ">" {
            return i + 1 == pat.len() && tokens.next().is_some();
        }
        match tokens.next() {
            Some(n) if *t == "*" || *t == n => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

#[derive(Debug, Default)]
struct Node {
    literal: HashMap<String, Node>,
    star: Option<Box<Node>>,
    /// Subscribers of the pattern that ends here with `>`.
    rest: BTreeSet<String>,
    /// Subscribers of the pattern that ends here.
    here: BTreeSet<String>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.literal.is_empty() && self.star.is_none() && self.rest.is_empty() && self.here.is_empty()
    }
}

/// The subscriptions of one tenant's patterns, as a token trie: pattern → subscriber ids.
#[derive(Debug, Default)]
pub struct PatternTrie {
    root: Node,
    len: usize,
}

impl PatternTrie {
    /// How many (pattern, subscriber) pairs the trie holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `who`'s subscription to pattern `p` (checked by [`check_pattern`]).
    pub fn insert(&mut self, p: &str, who: &str) {
        let mut node = &mut self.root;
        let tokens: Vec<&str> = p.split('.').collect();
        for (i, t) in tokens.iter().enumerate() {
            if *t == ">" && i + 1 == tokens.len() {
                if node.rest.insert(who.to_owned()) {
                    self.len += 1;
                }
                return;
            }
            node = match *t {
                "*" => node.star.get_or_insert_with(Box::default),
                _ => node.literal.entry((*t).to_owned()).or_default(),
            };
        }
        if node.here.insert(who.to_owned()) {
            self.len += 1;
        }
    }

    /// Removes `who`'s subscription to pattern `p`, pruning emptied branches.
    pub fn remove(&mut self, p: &str, who: &str) {
        let tokens: Vec<&str> = p.split('.').collect();
        if remove_in(&mut self.root, &tokens, who) {
            self.len -= 1;
        }
    }

    /// Every subscriber of a pattern that matches subject `name`, each once, added to `out`.
    pub fn matching(&self, name: &str, out: &mut BTreeSet<String>) {
        let tokens: Vec<&str> = name.split('.').collect();
        collect(&self.root, &tokens, out);
    }
}

fn remove_in(node: &mut Node, tokens: &[&str], who: &str) -> bool {
    match tokens {
        [] => node.here.remove(who),
        [">"] => node.rest.remove(who),
        [t, rest @ ..] => {
            let (removed, empty) = if *t == "*" {
                let Some(child) = node.star.as_deref_mut() else { return false };
                (remove_in(child, rest, who), child.is_empty())
            } else {
                let Some(child) = node.literal.get_mut(*t) else { return false };
                (remove_in(child, rest, who), child.is_empty())
            };
            if empty {
                if *t == "*" {
                    node.star = None;
                } else {
                    node.literal.remove(*t);
                }
            }
            removed
        }
    }
}

fn collect(node: &Node, tokens: &[&str], out: &mut BTreeSet<String>) {
    let Some((first, rest)) = tokens.split_first() else {
        out.extend(node.here.iter().cloned());
        return;
    };
    out.extend(node.rest.iter().cloned());
    if let Some(child) = node.literal.get(*first) {
        collect(child, rest, out);
    }
    if let Some(child) = node.star.as_deref() {
        collect(child, rest, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_checked_token_by_token() {
        for ok in ["orders", "orders.*", "orders.>", "*.eu", ">", "*", "a.*.c.>"] {
            assert!(check_pattern(ok).is_ok(), "{ok}");
        }
        for bad in ["orders.", ".orders", "orders..eu", "ord*", "orders.>.eu", "orders.e>", "*x", "", "a b"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
        assert!(is_pattern("orders.*") && is_pattern("a.>") && !is_pattern("orders.eu"));
    }

    #[test]
    fn nats_matching() {
        assert!(matches("orders.>", "orders.eu.created"));
        assert!(!matches("orders.*", "orders.eu.created"));
        assert!(matches("orders.*", "orders.eu"));
        assert!(!matches("orders.>", "orders"));
        assert!(!matches("orders.*", "orders"));
        assert!(matches(">", "a"));
    }

    /// A small deterministic generator (xorshift), so the test needs no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    const WORDS: [&str; 4] = ["a", "b", "c", "orders"];

    fn subject(r: &mut Rng) -> String {
        (0..1 + r.next(4)).map(|_| WORDS[r.next(WORDS.len())]).collect::<Vec<_>>().join(".")
    }

    fn pattern(r: &mut Rng) -> String {
        let n = 1 + r.next(4);
        let mut t: Vec<&str> = (0..n).map(|_| if r.next(3) == 0 { "*" } else { WORDS[r.next(WORDS.len())] }).collect();
        if r.next(3) == 0 {
            t[n - 1] = ">";
        }
        t.join(".")
    }

    #[test]
    fn trie_agrees_with_brute_force() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        for _round in 0..50 {
            let mut trie = PatternTrie::default();
            let mut subs: BTreeSet<(String, String)> = BTreeSet::new();
            for _ in 0..40 {
                let (p, who) = (pattern(&mut r), format!("agent{}", r.next(8)));
                assert!(check_pattern(&p).is_ok(), "{p}");
                trie.insert(&p, &who);
                subs.insert((p, who));
            }
            // Remove some, as unsubscribes do (and some that were never there).
            for _ in 0..15 {
                let (p, who) = (pattern(&mut r), format!("agent{}", r.next(8)));
                trie.remove(&p, &who);
                subs.remove(&(p, who));
            }
            let victims: Vec<_> = subs.iter().take(5).cloned().collect();
            for (p, who) in victims {
                trie.remove(&p, &who);
                subs.remove(&(p, who));
            }
            assert_eq!(trie.len(), subs.len());
            for _ in 0..200 {
                let s = subject(&mut r);
                let mut got = BTreeSet::new();
                trie.matching(&s, &mut got);
                let want: BTreeSet<String> =
                    subs.iter().filter(|(p, _)| matches(p, &s)).map(|(_, w)| w.clone()).collect();
                assert_eq!(got, want, "subject {s}");
            }
        }
        // Everything removed leaves an empty trie behind, pruned.
        let mut trie = PatternTrie::default();
        trie.insert("a.*.>", "x");
        trie.remove("a.*.>", "x");
        assert!(trie.is_empty() && trie.root.is_empty());
    }
}
