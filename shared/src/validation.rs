//! Shared input rules. Each returns the cleaned value or the reason a field
//! is refused, so handlers can collect every field error into one 400.

/// A display name (project, box): trimmed, 1..=`max` characters, no control
/// characters (they break exports and log lines).
pub fn display_name(raw: &str, max: usize) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    let chars = name.chars().count();
    if chars > max {
        return Err(format!("must be at most {max} characters (got {chars})"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    unspoofable(name)?;
    Ok(name.to_owned())
}

/// Refuses what makes text show other than it is: direction overrides,
/// embeddings, isolates and marks (`a\u{202E}gnp.exe` shows as `aexe.png`),
/// invisible characters (zero-width space, word joiner, BOM, soft hyphen,
/// invisible operators), and U+FFFD, which only a broken encoding leaves
/// (a gateway that repairs bad UTF-8 instead of refusing it). Zero-width
/// joiners and non-joiners stay: emoji sequences and Indic and Persian
/// scripts need them; so do emoji tag characters (subdivision flags).
pub fn unspoofable(text: &str) -> Result<(), String> {
    let spoofing = |c: char| {
        matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{00AD}'
                | '\u{180E}'
                | '\u{200B}'
                | '\u{2060}'..='\u{2064}'
                | '\u{206A}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{FFFD}'
                | '\u{E0001}'
        )
    };
    match text.chars().find(|c| spoofing(*c)) {
        Some(c) => Err(format!(
            "must not contain invisible, direction-changing or replacement characters (U+{:04X})",
            c as u32
        )),
        None => Ok(()),
    }
}

/// Free text (prompts, comments): trimmed, at most `max` characters, line
/// breaks and tabs allowed but no other control characters (invalid in the
/// .docx export's XML, and noise in logs). `None` when empty.
pub fn multiline_text(raw: &str, max: usize) -> Result<Option<String>, String> {
    let text = raw.trim();
    let chars = text.chars().count();
    if chars > max {
        return Err(format!("must be at most {max} characters (got {chars})"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err("must not contain control characters other than line breaks and tabs".into());
    }
    unspoofable(text)?;
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// Ids are ULIDs. Anything else cannot name a record, so callers answer 404
/// exactly as for an unknown id.
pub fn is_ulid(raw: &str) -> bool {
    raw.len() == 26 && ulid::Ulid::from_string(raw).is_ok()
}

/// A new ULID. Monotonic within this process, so ids made in the same
/// millisecond still sort in creation order (lists are ordered by id).
pub fn new_id() -> String {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut generator = GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    generator
        .get_or_insert_with(ulid::Generator::new)
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_trims_and_bounds() {
        assert_eq!(display_name("  Shot 1 ", 10).unwrap(), "Shot 1");
        assert_eq!(display_name("   ", 10).unwrap_err(), "must not be empty");
        assert!(display_name(&"x".repeat(11), 10).is_err());
        assert_eq!(display_name(&"é".repeat(10), 10).unwrap(), "é".repeat(10));
        assert!(display_name("a\u{0007}b", 10).is_err());
    }

    #[test]
    fn names_that_show_other_than_they_are_are_refused() {
        for spoof in [
            "a\u{202E}gnp.exe",
            "a\u{2067}b",
            "a\u{200F}b",
            "shot\u{200B}1",
            "\u{FEFF}shot",
            "caf\u{FFFD}",
            "soft\u{00AD}hyphen",
        ] {
            assert!(display_name(spoof, 50).is_err(), "{spoof:?}");
            assert!(multiline_text(spoof, 50).is_err(), "{spoof:?}");
        }
        // Joiners that real text needs stay.
        for fine in ["👩\u{200D}💻 shot", "می\u{200C}خواهم", "שלום 1", "東京"] {
            assert_eq!(display_name(fine, 50).unwrap(), fine);
        }
    }

    #[test]
    fn multiline_text_keeps_line_breaks_only() {
        assert_eq!(
            multiline_text("  a\nb\tc ", 10).unwrap().as_deref(),
            Some("a\nb\tc")
        );
        assert_eq!(multiline_text("   ", 10).unwrap(), None);
        assert!(multiline_text("a\u{0b}b", 10).is_err());
        assert!(multiline_text("a\u{1b}[31m", 10).is_err());
        assert!(multiline_text(&"x".repeat(11), 10).is_err());
    }

    #[test]
    fn ids_sort_in_creation_order() {
        let ids: Vec<String> = (0..1000).map(|_| new_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn ulid_check() {
        assert!(is_ulid(&new_id()));
        assert!(!is_ulid("not-a-ulid"));
        assert!(!is_ulid("01ARZ3NDEKTSV4RRFFQ69G5FA"));
    }
}
