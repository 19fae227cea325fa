//! Route patterns: `/users/{id}` captures one path segment, `/static/{*path}` the rest of
//! the path. A pattern matches the whole raw path (as sent, before percent-decoding), so
//! an encoded `/` (`%2F`) stays inside its segment; captures are percent-decoded after
//! the match.

use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text that must be there as is.
    Literal(String),
    /// One segment: at least one character, no `/`.
    Segment(String),
    /// The rest of the path (possibly empty), slashes included.
    Rest(String),
}

/// A parsed route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    parts: Vec<Part>,
}

impl Pattern {
    /// Parses `pattern`.
    ///
    /// # Panics
    ///
    /// On a malformed pattern (unclosed brace, empty name, `{*rest}` not last): a
    /// programming error in the route table.
    pub(crate) fn parse(pattern: &str) -> Pattern {
        let mut parts = Vec::new();
        let mut rest = pattern;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let close = rest
                        .find('}')
                        .unwrap_or_else(|| panic!("unclosed '{{' in route {pattern:?}"));
                    let name = &rest[1..close];
                    rest = &rest[close + 1..];
                    if let Some(name) = name.strip_prefix('*') {
                        assert!(!name.is_empty(), "empty capture name in {pattern:?}");
                        assert!(rest.is_empty(), "{{*{name}}} must end route {pattern:?}");
                        parts.push(Part::Rest(name.to_owned()));
                    } else {
                        assert!(!name.is_empty(), "empty capture name in {pattern:?}");
                        parts.push(Part::Segment(name.to_owned()));
                    }
                }
                Some(open) => {
                    parts.push(Part::Literal(rest[..open].to_owned()));
                    rest = &rest[open..];
                }
                None => {
                    parts.push(Part::Literal(rest.to_owned()));
                    rest = "";
                }
            }
        }
        Pattern { parts }
    }

    /// The captures if `path` matches the whole pattern, percent-decoded.
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let mut captures = Vec::new();
        let mut rest = path;
        for (i, part) in self.parts.iter().enumerate() {
            match part {
                Part::Literal(text) => rest = rest.strip_prefix(text.as_str())?,
                Part::Rest(name) => {
                    captures.push((name.clone(), decode(rest)));
                    rest = "";
                }
                Part::Segment(name) => {
                    // The segment ends at the next `/`, or at the next literal's start.
                    let end = match self.parts.get(i + 1) {
                        Some(Part::Literal(next)) => {
                            let slash = rest.find('/').unwrap_or(rest.len());
                            rest[..slash].find(next.as_str()).unwrap_or(slash)
                        }
                        _ => rest.find('/').unwrap_or(rest.len()),
                    };
                    if end == 0 {
                        return None;
                    }
                    captures.push((name.clone(), decode(&rest[..end])));
                    rest = &rest[end..];
                }
            }
        }
        rest.is_empty().then_some(captures)
    }
}

fn decode(raw: &str) -> String {
    percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captures(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        Pattern::parse(pattern).matches(path)
    }

    #[test]
    fn literals_match_the_whole_path() {
        assert_eq!(captures("/plaintext", "/plaintext"), Some(vec![]));
        assert_eq!(captures("/plaintext", "/plaintext/"), None);
        assert_eq!(captures("/plaintext", "/plain"), None);
        assert_eq!(captures("/", "/"), Some(vec![]));
    }

    #[test]
    fn a_segment_capture_is_decoded_after_matching() {
        assert_eq!(
            captures("/users/{id}", "/users/a%2Fb"),
            Some(vec![("id".into(), "a/b".into())])
        );
        assert_eq!(captures("/users/{id}", "/users/"), None);
        assert_eq!(captures("/users/{id}", "/users/a/b"), None);
        assert_eq!(
            captures("/users/{id}.json", "/users/7.json"),
            Some(vec![("id".into(), "7".into())])
        );
        assert_eq!(
            captures("/users/{id}", "/users/%E5%BC%82"),
            Some(vec![("id".into(), "异".into())])
        );
    }

    #[test]
    fn a_rest_capture_takes_the_rest() {
        assert_eq!(
            captures("/static/{*path}", "/static/css/a.css"),
            Some(vec![("path".into(), "css/a.css".into())])
        );
        assert_eq!(
            captures("/static/{*path}", "/static/"),
            Some(vec![("path".into(), "".into())])
        );
        assert_eq!(captures("/static/{*path}", "/other"), None);
    }

    #[test]
    #[should_panic(expected = "must end")]
    fn a_rest_capture_must_be_last() {
        Pattern::parse("/{*a}/b");
    }
}
