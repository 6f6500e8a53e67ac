//! `{{placeholder}}` substitution over JSON values (never over JSON text):
//! a string that is exactly `"{{name}}"` becomes the placeholder's typed
//! value (a number stays a number, `params` stays an object) and, when the
//! value is absent (no seed given), its object member or array element is
//! left out; inside a longer string the value is interpolated as text. A
//! literal `{{` is written `\{{`. Object keys are never substituted.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// What the placeholders of one request stand for.
pub trait Placeholders: Sync {
    /// `None` when the placeholder is known but has no value this time.
    fn value(&self, name: &str) -> Option<Value>;
}

impl Placeholders for std::collections::HashMap<&str, Value> {
    fn value(&self, name: &str) -> Option<Value> {
        self.get(name).cloned()
    }
}

/// A placeholder a template names that is not one we fill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPlaceholder(pub String);

/// One piece of a string template.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(std::borrow::Cow<'a, str>),
    Name(&'a str),
}

/// Splits a string into text and placeholder names; an unclosed `{{` is text.
fn pieces(raw: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = raw;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("\\{{") {
            text.push_str("{{");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("{{")
            && let Some(end) = after.find("}}")
        {
            if !text.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut text).into()));
            }
            out.push(Piece::Name(after[..end].trim()));
            rest = &after[end + 2..];
        } else {
            let c = rest.chars().next().expect("not empty");
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text.into()));
    }
    out
}

/// Every placeholder a template names, in strings at any depth.
pub fn names(template: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    collect(template, &mut found);
    found
}

/// The placeholders of a string template (a URL path).
pub fn names_in(template: &str) -> BTreeSet<String> {
    pieces(template)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Name(n) => Some(n.to_owned()),
            Piece::Text(_) => None,
        })
        .collect()
}

fn collect(value: &Value, found: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => found.extend(names_in(s)),
        Value::Array(items) => items.iter().for_each(|v| collect(v, found)),
        Value::Object(members) => members.values().for_each(|v| collect(v, found)),
        _ => {}
    }
}

/// The template with every placeholder filled. Returns `None` only for a
/// whole-value placeholder without a value (its parent leaves it out).
pub fn fill(template: &Value, with: &dyn Placeholders) -> Option<Value> {
    Some(match template {
        Value::String(s) => {
            let pieces = pieces(s);
            if let [Piece::Name(name)] = pieces.as_slice() {
                return with.value(name);
            }
            Value::String(interpolate(&pieces, with, |s| s.to_owned()))
        }
        Value::Array(items) => Value::Array(items.iter().filter_map(|v| fill(v, with)).collect()),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .filter_map(|(k, v)| fill(v, with).map(|v| (k.clone(), v)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    })
}

/// A string template filled as text, each value passed through `encode`
/// (percent-encoding for URLs).
pub fn fill_text(
    template: &str,
    with: &dyn Placeholders,
    encode: impl Fn(&str) -> String,
) -> String {
    interpolate(&pieces(template), with, encode)
}

fn interpolate(
    pieces: &[Piece<'_>],
    with: &dyn Placeholders,
    encode: impl Fn(&str) -> String,
) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Name(name) => match with.value(name) {
                Some(Value::String(s)) => out.push_str(&encode(&s)),
                Some(Value::Null) | None => {}
                Some(other) => out.push_str(&encode(&other.to_string())),
            },
        }
    }
    out
}

/// Checks that every placeholder is one of `known` (a trailing `.*` entry
/// admits any dotted name under it, e.g. `params.*` for `params.width`).
pub fn check_names(found: &BTreeSet<String>, known: &[&str]) -> Result<(), UnknownPlaceholder> {
    for name in found {
        let ok = known.iter().any(|k| match k.strip_suffix(".*") {
            Some(prefix) => name
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|r| !r.is_empty() && r.split('.').all(|s| !s.is_empty())),
            None => name == k,
        });
        if !ok {
            return Err(UnknownPlaceholder(name.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn values() -> HashMap<&'static str, Value> {
        HashMap::from([
            ("prompt", json!("a fox \"in\" snow")),
            ("seed", json!(42)),
            ("params", json!({"width": 640, "style": "ink"})),
            ("params.width", json!(640)),
        ])
    }

    #[test]
    fn whole_placeholders_keep_their_type_and_nest() {
        let template = json!({
            "input": {"prompt": "{{prompt}}", "seed": "{{ seed }}", "all": "{{params}}",
                      "sizes": ["{{params.width}}", 1]},
            "model": "m-1"
        });
        assert_eq!(
            fill(&template, &values()).unwrap(),
            json!({
                "input": {"prompt": "a fox \"in\" snow", "seed": 42,
                          "all": {"width": 640, "style": "ink"}, "sizes": [640, 1]},
                "model": "m-1"
            })
        );
    }

    #[test]
    fn absent_values_leave_their_member_out_and_interpolate_as_nothing() {
        let template = json!({"seed": "{{parent_asset_url}}", "list": ["{{parent_asset_url}}", "x"],
                              "note": "from <{{parent_asset_url}}>"});
        assert_eq!(
            fill(&template, &values()).unwrap(),
            json!({"list": ["x"], "note": "from <>"})
        );
    }

    #[test]
    fn inside_text_values_are_interpolated_and_quotes_stay_data() {
        let template = json!({"text": "{{prompt}} / seed {{seed}} / {{params}}"});
        assert_eq!(
            fill(&template, &values()).unwrap()["text"],
            json!("a fox \"in\" snow / seed 42 / {\"width\":640,\"style\":\"ink\"}")
        );
        let path = fill_text("/q?task={{prompt}}", &values(), |s| {
            s.replace(' ', "%20").replace('"', "%22")
        });
        assert_eq!(path, "/q?task=a%20fox%20%22in%22%20snow");
    }

    #[test]
    fn escaped_braces_and_unclosed_ones_are_text() {
        let template = json!({"a": "\\{{prompt}}", "b": "{{prompt", "{{prompt}}": "key kept"});
        let filled = fill(&template, &values()).unwrap();
        assert_eq!(filled["a"], "{{prompt}}");
        assert_eq!(filled["b"], "{{prompt");
        assert_eq!(filled["{{prompt}}"], "key kept");
        assert_eq!(
            names(&template),
            BTreeSet::new(),
            "escaped, unclosed and keys name nothing"
        );
        assert_eq!(names(&json!({"a": "\\{{x}}"})), BTreeSet::new());
    }

    #[test]
    fn names_are_checked_against_the_known_ones() {
        let known = ["prompt", "seed", "params", "params.*"];
        let found = names(&json!({"a": "{{prompt}}", "b": ["{{params.width}}", "{{params.a.b}}"]}));
        assert_eq!(check_names(&found, &known), Ok(()));
        for bad in [
            "{{promt}}",
            "{{params.}}",
            "{{params..x}}",
            "{{paramsx}}",
            "{{}}",
        ] {
            let found = names(&json!({ "a": bad }));
            assert!(check_names(&found, &known).is_err(), "{bad}");
        }
    }
}
