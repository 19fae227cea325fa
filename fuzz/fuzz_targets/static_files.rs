//! The static-file handler: path resolution, `Range`, `If-Range` and `If-None-Match` /
//! `If-Modified-Since`.
//!
//! Properties:
//! - no relative path resolves outside the root, whatever its `..`, absolute parts,
//!   NULs or symbolic links (the root holds a link out of it and a link within it);
//!   what resolves is a file;
//! - a `Range` is answered as RFC 9110 §14 says for a single well-formed range (checked
//!   against a model), and any field gives a part within the file or the whole file or
//!   416;
//! - `If-Range` and `If-None-Match`/`If-Modified-Since` agree with models of RFC 9110
//!   §13.1.5 (strong comparison, a date only as a strong validator) and §13.1.2–3 (weak
//!   comparison, `*`, If-None-Match first).

#![no_main]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use ioloop::fuzzing::web::{byte_range, if_range_holds, not_modified, resolve};
use ioloop::http::Request;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum RangeSpec<'a> {
    FromTo(u16, u16),
    From(u16),
    Suffix(u16),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Validator<'a> {
    Etag,
    WeakEtag,
    OtherTag(u8),
    /// Last-Modified moved by this many seconds.
    Date(i8),
    Raw(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    path: &'a str,
    size: u16,
    range: RangeSpec<'a>,
    if_range: Option<Validator<'a>>,
    if_none_match: Option<Vec<Validator<'a>>>,
    if_modified_since: Option<Validator<'a>>,
    weak: bool,
    modified_ms: u32,
    age_ms: u16,
}

fn root() -> &'static (PathBuf, PathBuf) {
    static ROOT: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("ioloop-fuzz-static-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(base.join("secret"), b"outside").unwrap();
        std::fs::write(root.join("a.txt"), b"inside").unwrap();
        std::fs::write(root.join("sub/index.html"), b"index").unwrap();
        let _ = std::os::unix::fs::symlink(&base, root.join("out"));
        let _ = std::os::unix::fs::symlink(base.join("secret"), root.join("secret-link"));
        let _ = std::os::unix::fs::symlink(root.join("a.txt"), root.join("in-link"));
        let canonical = root.canonicalize().unwrap();
        (root, canonical)
    })
}

fn model_range(spec: &RangeSpec<'_>, size: u64) -> Option<Result<Option<(u64, u64)>, ()>> {
    let whole_or_part = |s: u64, e: u64| {
        if s == 0 && e + 1 == size {
            Ok(None)
        } else {
            Ok(Some((s, e)))
        }
    };
    Some(match *spec {
        RangeSpec::FromTo(a, b) => {
            let (a, b) = (u64::from(a), u64::from(b));
            if b < a {
                Ok(None)
            } else if a >= size {
                Err(())
            } else {
                whole_or_part(a, b.min(size - 1))
            }
        }
        RangeSpec::From(a) => {
            let a = u64::from(a);
            if a >= size {
                Err(())
            } else {
                whole_or_part(a, size - 1)
            }
        }
        RangeSpec::Suffix(n) => {
            let n = u64::from(n);
            if n == 0 || size == 0 {
                Err(())
            } else {
                whole_or_part(size - n.min(size), size - 1)
            }
        }
        RangeSpec::Raw(_) => return None,
    })
}

fn etag(size: u64, modified: SystemTime, weak: bool) -> String {
    let d = modified.duration_since(UNIX_EPOCH).unwrap();
    format!(
        "{}\"{size:x}-{:x}-{:x}\"",
        if weak { "W/" } else { "" },
        d.as_secs(),
        d.subsec_nanos()
    )
}

fn validator(v: &Validator<'_>, etag: &str, modified: SystemTime) -> Vec<u8> {
    let bare = etag.trim_start_matches("W/");
    match v {
        Validator::Etag => etag.as_bytes().to_vec(),
        Validator::WeakEtag => format!("W/{bare}").into_bytes(),
        Validator::OtherTag(n) => format!("\"other-{n}\"").into_bytes(),
        Validator::Date(s) => {
            let t = if *s >= 0 {
                modified + Duration::from_secs(*s as u64)
            } else {
                modified - Duration::from_secs(s.unsigned_abs() as u64)
            };
            httpdate::fmt_http_date(t).into_bytes()
        }
        Validator::Raw(b) => b.to_vec(),
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fuzz_target!(|input: Input<'_>| {
    let (root, canonical) = root();
    match resolve(root, input.path) {
        Ok(path) => {
            assert!(
                path.starts_with(canonical),
                "{:?} resolved outside the root: {path:?}",
                input.path
            );
            assert!(path.is_file());
        }
        Err(status) => assert!(status == 403 || status == 404),
    }
    assert!(resolve(root, "secret-link").is_err() && resolve(root, "out/secret").is_err());
    let _ = Path::new(input.path);

    // Range.
    let size = u64::from(input.size);
    let field = match input.range {
        RangeSpec::FromTo(a, b) => format!("bytes={a}-{b}"),
        RangeSpec::From(a) => format!("bytes={a}-"),
        RangeSpec::Suffix(n) => format!("bytes=-{n}"),
        RangeSpec::Raw(s) => s.to_owned(),
    };
    let answer = byte_range(&field, size);
    if let Ok(Some((first, last))) = answer {
        assert!(first <= last && last < size && !(first == 0 && last + 1 == size));
    }
    if let Some(expected) = model_range(&input.range, size) {
        assert_eq!(answer, expected, "Range {field:?} of {size} bytes");
    }

    // If-Range: strong comparison; a date only when it is exactly Last-Modified and that
    // is at least a second old.
    let modified =
        UNIX_EPOCH + Duration::from_millis(1_000_000_000_000 + u64::from(input.modified_ms));
    let now = modified + Duration::from_millis(u64::from(input.age_ms));
    let tag = etag(size, modified, input.weak);
    let if_range = input
        .if_range
        .as_ref()
        .map(|v| validator(v, &tag, modified));
    let holds = if_range_holds(if_range.as_deref(), &tag, modified, now);
    let expected = match &input.if_range {
        None => true,
        Some(Validator::Etag) => !input.weak,
        Some(Validator::WeakEtag | Validator::OtherTag(_)) => false,
        Some(Validator::Date(s)) => *s == 0 && input.age_ms >= 1000,
        Some(Validator::Raw(_)) => holds, // not modelled: any answer
    };
    assert_eq!(
        holds,
        expected,
        "If-Range {:?}",
        if_range.map(|v| String::from_utf8_lossy(&v).into_owned())
    );

    // If-None-Match (weak comparison, `*`), else If-Modified-Since.
    let mut head = b"GET /f HTTP/1.1\r\nHost: x\r\n".to_vec();
    if let Some(list) = &input.if_none_match {
        head.extend_from_slice(b"If-None-Match: ");
        for (i, v) in list.iter().enumerate() {
            if i > 0 {
                head.extend_from_slice(b", ");
            }
            head.extend(validator(v, &tag, modified));
        }
        head.extend_from_slice(b"\r\n");
    }
    if let Some(v) = &input.if_modified_since {
        head.extend_from_slice(b"If-Modified-Since: ");
        head.extend(validator(v, &tag, modified));
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let Ok(request) = Request::parse(&head) else {
        return;
    };
    let answer = not_modified(&request, &tag, modified);
    let raw_involved = input.if_none_match.as_ref().is_some_and(|l| {
        l.iter()
            .any(|v| matches!(v, Validator::Raw(_) | Validator::Date(_)))
    }) || (input.if_none_match.is_none()
        && matches!(
            input.if_modified_since,
            Some(
                Validator::Raw(_) | Validator::Etag | Validator::WeakEtag | Validator::OtherTag(_)
            )
        ));
    if !raw_involved {
        let expected = match (&input.if_none_match, &input.if_modified_since) {
            (Some(list), _) => list
                .iter()
                .any(|v| matches!(v, Validator::Etag | Validator::WeakEtag)),
            (None, Some(Validator::Date(s))) => {
                *s >= 0
                    || secs(modified)
                        == secs(modified - Duration::from_secs(s.unsigned_abs() as u64))
            }
            (None, _) => false,
        };
        assert_eq!(answer, expected, "{:?}", String::from_utf8_lossy(&head));
    }
});
