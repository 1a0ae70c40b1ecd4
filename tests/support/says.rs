//! What a text (a report, an error, a finding's evidence) must say, checked phrase by phrase.

/// `text` holds each of `facts`; a failure names the first one missing, then the whole text.
pub fn assert_says(text: &str, facts: &[&str]) {
    for fact in facts {
        assert!(text.contains(fact), "{fact:?} missing from:\n{text}");
    }
}
