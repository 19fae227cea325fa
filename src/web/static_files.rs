//! [`StaticFiles`]: files under a folder, with Tornado's `StaticFileHandler` rules:
//! `Content-Type` by extension, `ETag` and `Last-Modified` with 304, a single byte range
//! with 206 (416 when unsatisfiable) unless a stale `If-Range` asks for the whole file, no
//! escape from the folder, and large files sent in 64 KiB pieces under backpressure; and
//! `static_url`, whose content-hash version lets such requests be cached for ten years.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::{http_date_range, BodyWriter, Handler, Request, Responder, Response};

/// Files at most this large are read and sent in one response; larger ones in pieces.
const PIECE: usize = 64 * 1024;

/// `Cache-Control: max-age` of a request carrying a version (`?v=`): ten years, in
/// seconds (Tornado's `CACHE_MAX_AGE`).
pub const CACHE_MAX_AGE: u64 = 86400 * 365 * 10;

/// The largest file [`StaticFiles::static_url`] hashes for its version (4 MiB): hashing
/// runs on the loop, and a larger file gets a URL without version instead (Tornado's
/// `MAX_VERSION_CONTENT_SIZE` rule).
pub const MAX_VERSION_CONTENT_SIZE: u64 = 4 << 20;

/// The versions computed, by file, with the size and modification time they were
/// computed for (a changed file is hashed again).
type VersionCache = Arc<Mutex<HashMap<PathBuf, (u64, SystemTime, Option<String>)>>>;

/// Serves the files under a folder; the route's `{*path}` capture names the file (for
/// `/static/{*path}`, `GET /static/css/a.css` serves `ROOT/css/a.css`). A path that
/// would leave the folder (through `..` or a symbolic link) gets 403; a missing file 404;
/// a folder its `index.html`, if it has one.
///
/// # Examples
///
/// ```no_run
/// use ioloop::web::{get, Application, StaticFiles};
/// let app = Application::new().route("/static/{*path}", get(StaticFiles::new("static")));
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct StaticFiles {
    root: PathBuf,
    capture: String,
    prefix: String,
    versions: VersionCache,
}

impl StaticFiles {
    /// Serves the files under `root`, named by the route's `{*path}` capture.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn ask(app: ioloop::web::Application, request: impl Into<Vec<u8>>) -> String {
    /// #     let (ioloop, request) = (ioloop::IoLoop::new().unwrap(), request.into());
    /// #     let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    /// #     let client = ioloop::TcpClient::new(&ioloop);
    /// #     let reply = ioloop.run_sync(async move {
    /// #         let stream = client.connect("127.0.0.1", addr.port()).await.unwrap();
    /// #         stream.write_all(&request).await.unwrap();
    /// #         stream.read_until_close().await.unwrap()
    /// #     });
    /// #     String::from_utf8(reply.unwrap()).unwrap()
    /// # }
    /// use ioloop::web::{get, Application, StaticFiles};
    ///
    /// let root = std::env::temp_dir().join(format!("ioloop-doc-static-{}", std::process::id()));
    /// std::fs::create_dir_all(root.join("css"))?;
    /// std::fs::write(root.join("css/site.css"), "body { margin: 0 }")?;
    /// let app = Application::new().route("/static/{*path}", get(StaticFiles::new(&root)));
    /// // `ask` serves the application and returns its answer to one request.
    /// let reply = ask(app.clone(), "GET /static/css/site.css HTTP/1.0\r\n\r\n");
    /// assert!(reply.contains("\r\nContent-Type: text/css\r\n"));
    /// assert!(reply.ends_with("\r\n\r\nbody { margin: 0 }"));
    /// let missing = ask(app.clone(), "GET /static/none.css HTTP/1.0\r\n\r\n");
    /// assert!(missing.starts_with("HTTP/1.1 404 "));
    /// assert!(ask(app, "GET /static/../secret HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 403 "));
    /// std::fs::remove_dir_all(&root)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(root: impl Into<PathBuf>) -> StaticFiles {
        StaticFiles {
            root: root.into(),
            capture: "path".to_owned(),
            prefix: "/static/".to_owned(),
            versions: VersionCache::default(),
        }
    }

    /// The URL path the files are served under, for [`static_url`](StaticFiles::static_url)
    /// (default `/static/`, Tornado's `static_url_prefix`; a missing final `/` is added).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::web::{get, Application, StaticFiles};
    /// let files = StaticFiles::new("assets").url_prefix("/assets/");
    /// let app = Application::new().route("/assets/{*path}", get(files.clone()));
    /// assert!(files.static_url("none.css").starts_with("/assets/none.css"));
    /// # let _ = app;
    /// ```
    pub fn url_prefix(mut self, prefix: &str) -> StaticFiles {
        self.prefix = prefix.to_owned();
        if !self.prefix.ends_with('/') {
            self.prefix.push('/');
        }
        self
    }

    /// The URL of the file `path` (relative to the folder) with its content version:
    /// `/static/app.css?v=<hex SHA-512 of the file>` (Tornado's `static_url`). Requests
    /// carrying a version get `Cache-Control: max-age=` ten years, so browsers keep the
    /// file until its content, and so its URL, changes. The version is computed once per
    /// file and size and modification time (a changed file gets a new one); a file that
    /// is missing, outside the folder or larger than [`MAX_VERSION_CONTENT_SIZE`] gets
    /// the URL without version.
    ///
    /// # Examples
    ///
    /// ```
    /// let files = ioloop::web::StaticFiles::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/static"));
    /// let url = files.static_url("no-such-file.css");
    /// assert_eq!(url, "/static/no-such-file.css");
    /// ```
    pub fn static_url(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        match self.version(path) {
            Some(version) => format!("{}{path}?v={version}", self.prefix),
            None => format!("{}{path}", self.prefix),
        }
    }

    /// The content version of `relative`, from the cache when the file did not change.
    fn version(&self, relative: &str) -> Option<String> {
        let (path, meta) = self.resolve(relative).ok()?;
        let size = meta.len();
        let modified = file_date(&meta);
        let cached = self.versions.lock().ok()?.get(&path).cloned();
        if let Some((s, m, version)) = cached {
            if (s, m) == (size, modified) {
                return version;
            }
        }
        let version = if size > MAX_VERSION_CONTENT_SIZE {
            None
        } else {
            use sha2::Digest;
            let content = std::fs::read(&path).ok()?;
            let digest = sha2::Sha512::digest(&content);
            Some(
                digest
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            )
        };
        if let Ok(mut versions) = self.versions.lock() {
            versions.insert(path, (size, modified, version.clone()));
        }
        version
    }

    /// Names the file by the route capture `name` instead of `path`.
    ///
    /// # Examples
    ///
    /// ```
    /// let files = ioloop::web::StaticFiles::new("assets").capture("file");
    /// # let _ = files;
    /// ```
    pub fn capture(mut self, name: &str) -> StaticFiles {
        self.capture = name.to_owned();
        self
    }

    /// The file a request names, or the status to answer.
    pub(crate) fn resolve(&self, relative: &str) -> Result<(PathBuf, Metadata), u16> {
        let relative = Path::new(relative);
        // Only plain names: no root, no `..`, no `.` games.
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
            || relative.as_os_str().as_encoded_bytes().contains(&0)
        {
            return Err(403);
        }
        let root = self.root.canonicalize().map_err(|_| 404u16)?;
        let mut path = root.join(relative);
        let mut meta = std::fs::metadata(&path).map_err(|_| 404u16)?;
        if meta.is_dir() {
            path.push("index.html");
            meta = std::fs::metadata(&path).map_err(|_| 404u16)?;
        }
        // A symbolic link may still lead out of the folder.
        let real = path.canonicalize().map_err(|_| 404u16)?;
        if !real.starts_with(&root) {
            return Err(403);
        }
        if !meta.is_file() {
            return Err(404);
        }
        Ok((real, meta))
    }
}

impl Handler for StaticFiles {
    fn call(&self, request: Request, responder: Responder) {
        let relative = request.param(&self.capture).unwrap_or("").to_owned();
        let (path, meta) = match self.resolve(&relative) {
            Ok(found) => found,
            Err(status) => return responder.send(Response::error(status)),
        };
        let size = meta.len();
        let modified = file_date(&meta);
        let etag = entity_tag(size, modified);
        let last_modified = httpdate::fmt_http_date(modified);
        let content_type = mime_guess::from_path(&path)
            .first_or_octet_stream()
            .essence_str()
            .to_owned();
        let base = Response::new(200)
            .header("Content-Type", content_type)
            .header("ETag", etag.clone())
            .header("Last-Modified", last_modified)
            .header("Accept-Ranges", "bytes");
        // A versioned URL names this content for good: cache it for ten years.
        let base = if request.query_arg("v").is_some() {
            base.header("Cache-Control", format!("max-age={CACHE_MAX_AGE}"))
        } else {
            base
        };
        if not_modified(&request, &etag, modified) {
            return responder.send(base.status_code(304));
        }
        // A stale `If-Range` asks for the whole new file, not a part of it to splice onto
        // an old download.
        let if_range = request.header_bytes("if-range");
        let range = match request.header("range") {
            Some(_) if !if_range_holds(if_range, &etag, modified, SystemTime::now()) => None,
            Some(range) => match byte_range(range, size) {
                RangeAnswer::Whole => None,
                RangeAnswer::Part(start, end) => Some((start, end)),
                RangeAnswer::Unsatisfiable => {
                    return responder.send(
                        Response::error(416).header("Content-Range", format!("bytes */{size}")),
                    )
                }
            },
            None => None,
        };
        let (start, end, response) = match range {
            Some((start, end)) => (
                start,
                end,
                base.status_code(206)
                    .header("Content-Range", format!("bytes {start}-{end}/{size}")),
            ),
            None if size == 0 => return responder.send(base),
            None => (0, size - 1, base),
        };
        let length = end - start + 1;
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(_) => return responder.send(Response::error(404)),
        };
        if start > 0 && file.seek(SeekFrom::Start(start)).is_err() {
            return responder.send(Response::error(500));
        }
        if length <= PIECE as u64 {
            let mut body = vec![0; length as usize];
            return match file.read_exact(&mut body) {
                Ok(()) => responder.send(response.body(body)),
                Err(_) => responder.send(Response::error(500)),
            };
        }
        let head_only = request.method() == "HEAD";
        let writer = responder.start_sized(response, length);
        if head_only {
            return writer.finish();
        }
        send_pieces(file, length, writer);
    }
}

/// Sends `left` bytes of `file`, a piece at a time, each once the one before reached the
/// kernel: a slow client holds the server to one piece.
fn send_pieces(mut file: File, left: u64, mut writer: BodyWriter) {
    if left == 0 {
        return writer.finish();
    }
    let mut piece = vec![0; PIECE.min(left as usize)];
    if let Err(e) = file.read_exact(&mut piece) {
        log::warn!(target: "ioloop::web", "reading a static file failed: {e}");
        return; // dropping the writer cuts the response and closes the connection
    }
    let sent = piece.len() as u64;
    // Where the completion finds the file and the writer again. No borrow of it is held
    // while the writer works or is dropped (the writer is a user value: its `Drop` and
    // its writes run connection code).
    let next = std::rc::Rc::new(std::cell::RefCell::new(None));
    let resume = next.clone();
    let queued = writer.write_then(&piece, move |written| {
        let taken: Option<(File, BodyWriter)> = resume.borrow_mut().take();
        if let (Ok(()), Some((file, writer))) = (written, taken) {
            send_pieces(file, left - sent, writer);
        }
    });
    // A write that fails at once (the peer reset the connection) completes from inside
    // `write_then`, finding nothing to resume: the writer is then dropped with `next`, on
    // return, as it is when the write was refused (either cuts the response).
    if queued.is_ok() {
        *next.borrow_mut() = Some((file, writer));
    }
}

/// An entity tag from the size and modification time (strong: they change together with
/// the content, as far as a file server can tell).
/// A file's modification time as an HTTP date can say it (1970 to 9999; `httpdate`
/// panics outside): a file dated 1960 (or never) is dated the epoch, one dated past 9999
/// the last second of 9999.
fn file_date(meta: &std::fs::Metadata) -> SystemTime {
    http_date_range(meta.modified().unwrap_or(UNIX_EPOCH))
}

fn entity_tag(size: u64, modified: SystemTime) -> String {
    let since = modified
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    format!(
        "\"{size:x}-{:x}-{:x}\"",
        since.as_secs(),
        since.subsec_nanos()
    )
}

/// Whether the client's copy is current: `If-None-Match` (weak comparison) wins over
/// `If-Modified-Since` (RFC 9110 §13.2.2).
pub(crate) fn not_modified(request: &Request, etag: &str, modified: SystemTime) -> bool {
    if let Some(tags) = request.header("if-none-match") {
        let bare = etag.trim_start_matches("W/");
        return tags
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/") == bare);
    }
    if let Some(since) = request.header("if-modified-since") {
        if let Ok(since) = httpdate::parse_http_date(since) {
            let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            return secs(modified) <= secs(since);
        }
    }
    false
}

/// Whether a range request may be answered with a part of the file: it has no
/// `If-Range`, or its validator matches the file (RFC 9110 §13.1.5). An entity-tag
/// matches by strong comparison, so a weak one never does; an HTTP-date matches when it is
/// exactly the file's `Last-Modified` and that date is a strong validator (§8.8.2.2): the
/// file was last modified at least a second before `now`, so no second change can hide
/// within the second it names. Anything else (an unparsable value included) does not
/// match, and the whole file is sent.
pub(crate) fn if_range_holds(
    if_range: Option<&[u8]>,
    etag: &str,
    modified: SystemTime,
    now: SystemTime,
) -> bool {
    let Some(value) = if_range else {
        return true;
    };
    let Ok(value) = std::str::from_utf8(value).map(str::trim) else {
        return false;
    };
    if value.starts_with("W/") {
        return false;
    }
    if value.starts_with('"') {
        return value == etag && !etag.starts_with("W/");
    }
    let Ok(date) = httpdate::parse_http_date(value) else {
        return false;
    };
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let strong = now
        .duration_since(modified)
        .is_ok_and(|age| age >= Duration::from_secs(1));
    strong && secs(date) == secs(modified)
}

pub(crate) enum RangeAnswer {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// A single `bytes=` range of a file of `size` bytes. Several ranges, other units or a
/// malformed field are ignored (the whole file is sent, RFC 9110 §14.2 allows it); a
/// range covering the whole file sends it whole (200: browsers reject 206 for
/// `bytes=0-`).
pub(crate) fn byte_range(field: &str, size: u64) -> RangeAnswer {
    let Some(spec) = field.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Whole;
    };
    if spec.contains(',') {
        return RangeAnswer::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAnswer::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (start, end) = match (first.trim().is_empty(), number(first), number(last)) {
        // `bytes=-n`: the last n bytes.
        (true, _, Some(n)) if n > 0 => (size.saturating_sub(n), size.saturating_sub(1)),
        (true, _, _) => return RangeAnswer::Unsatisfiable,
        (false, Some(start), None) if last.trim().is_empty() => (start, size.saturating_sub(1)),
        (false, Some(start), Some(end)) if end >= start => (start, end.min(size.saturating_sub(1))),
        _ => return RangeAnswer::Whole,
    };
    if size == 0 || start >= size {
        return RangeAnswer::Unsatisfiable;
    }
    if start == 0 && end + 1 == size {
        return RangeAnswer::Whole;
    }
    RangeAnswer::Part(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "sets a file's times, which Miri does not emulate")]
    fn file_dates_outside_what_an_http_date_says_are_clamped() {
        let path = std::env::temp_dir().join(format!("ioloop-file-date-{}", std::process::id()));
        std::fs::write(&path, b"x").unwrap();
        // (Past 9999 is clamped the same way; file systems stop before it: ext4 at 2446.)
        let year = Duration::from_secs(365 * 86_400);
        for (at, expected) in [
            (UNIX_EPOCH - 10 * year, UNIX_EPOCH),
            (UNIX_EPOCH + year, UNIX_EPOCH + year),
        ] {
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(at).unwrap();
            let date = file_date(&file.metadata().unwrap());
            assert_eq!(date, expected);
            // What panicked before: formatting the date, and the entity tag.
            let _ = (httpdate::fmt_http_date(date), entity_tag(1, date));
        }
        std::fs::remove_file(&path).ok();
    }

    fn range(field: &str, size: u64) -> Option<(u64, u64)> {
        match byte_range(field, size) {
            RangeAnswer::Part(s, e) => Some((s, e)),
            RangeAnswer::Whole => None,
            RangeAnswer::Unsatisfiable => Some((u64::MAX, u64::MAX)),
        }
    }

    #[test]
    fn single_byte_ranges_follow_rfc_9110() {
        assert_eq!(range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(range("bytes=500-5000", 1000), Some((500, 999)));
        assert_eq!(range("bytes=0-", 1000), None, "the whole file is a 200");
        assert_eq!(
            range("bytes=0-1,5-6", 1000),
            None,
            "several ranges: ignored"
        );
        assert_eq!(range("items=0-1", 1000), None);
        assert_eq!(range("bytes=5-1", 1000), None, "malformed: ignored");
        assert_eq!(range("bytes=1000-", 1000), Some((u64::MAX, u64::MAX)));
        assert_eq!(range("bytes=-0", 1000), Some((u64::MAX, u64::MAX)));
    }

    #[test]
    fn if_range_matches_a_strong_etag_or_the_exact_last_modified_only() {
        // RFC 9110 §13.1.5 (strong comparison, §8.8.3.2; an HTTP-date only as a strong
        // validator, §8.8.2.2).
        let modified = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let later = modified + Duration::from_secs(60);
        let etag = entity_tag(1000, modified);
        let holds = |value: &str, now| if_range_holds(Some(value.as_bytes()), &etag, modified, now);
        assert!(if_range_holds(None, &etag, modified, later), "no If-Range");
        assert!(holds(&etag, later));
        assert!(holds(&format!("  {etag} "), later), "whitespace around it");
        assert!(
            !holds(&format!("W/{etag}"), later),
            "a weak tag never matches"
        );
        assert!(!holds("\"3e8-0-0\"", later), "another version's tag");
        assert!(!holds("*", later));
        let date = "Tue, 14 Nov 2023 22:13:20 GMT";
        assert_eq!(httpdate::fmt_http_date(modified), date);
        assert!(holds(date, later), "exactly Last-Modified");
        assert!(
            holds("Tuesday, 14-Nov-23 22:13:20 GMT", later),
            "the same date, RFC 850"
        );
        assert!(
            !holds("Tue, 14 Nov 2023 22:13:21 GMT", later),
            "a second later"
        );
        assert!(
            !holds("Tue, 14 Nov 2023 22:13:19 GMT", later),
            "a second earlier"
        );
        assert!(
            !holds(date, modified + Duration::from_millis(500)),
            "modified within the last second: the date is weak"
        );
        assert!(
            !holds(date, modified - Duration::from_secs(5)),
            "modified in the future"
        );
        assert!(!holds("yesterday", later));
        assert!(!if_range_holds(Some(b"\xff"), &etag, modified, later));
    }

    #[test]
    fn paths_cannot_leave_the_folder() {
        let files = StaticFiles::new(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(files.resolve("../etc/passwd").unwrap_err(), 403);
        assert_eq!(files.resolve("/etc/passwd").unwrap_err(), 403);
        assert_eq!(files.resolve("src/../Cargo.toml").unwrap_err(), 403);
        assert_eq!(files.resolve("no-such-file").unwrap_err(), 404);
        assert!(files.resolve("Cargo.toml").is_ok());
    }
}
