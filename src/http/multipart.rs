//! `multipart/form-data` (RFC 7578) with bounded memory: a sans-IO parser fed any
//! pieces of a body, the form it collects ([`Multipart`]: text fields and
//! [`UploadedFile`]s with sanitized file names), and the limits that answer 413
//! ([`MultipartLimits`]). A whole body is parsed with [`Request::multipart`]; a body
//! streamed to its handler with [`Multipart::receive`], which spills large files to
//! temporary files (Tornado's `request.files` and `parse_multipart_form_data`).

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::HttpError;
use super::request::Request;
use super::responder::{BodyChunk, Responder};
use super::response::{IntoResponse, Response};

/// The limits of a form: a part over one answers `413 Content Too Large`.
///
/// # Examples
///
/// ```
/// let limits = ioloop::http::MultipartLimits {
///     max_file_size: 10 << 20,
///     ..Default::default()
/// };
/// assert_eq!(limits.max_field_size, 64 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct MultipartLimits {
    /// The most bytes of one text field (default 64 KiB).
    pub max_field_size: usize,
    /// The most bytes of one file (default 8 MiB).
    pub max_file_size: u64,
    /// The most bytes of the whole body (default 16 MiB; the route's body limit
    /// applies too).
    pub max_total_size: u64,
    /// The most parts (default 128).
    pub max_parts: usize,
    /// The most bytes of one part's header block (default 8 KiB).
    pub max_part_header_size: usize,
    /// [`Multipart::receive`] keeps a file in memory up to this size (default 64 KiB),
    /// and writes a larger one to a temporary file.
    pub memory_file_size: usize,
    /// Where [`Multipart::receive`] writes its temporary files (default: the system's
    /// temporary folder).
    pub temp_dir: Option<PathBuf>,
}

impl Default for MultipartLimits {
    fn default() -> MultipartLimits {
        MultipartLimits {
            max_field_size: 64 * 1024,
            max_file_size: 8 << 20,
            max_total_size: 16 << 20,
            max_parts: 128,
            max_part_header_size: 8 * 1024,
            memory_file_size: 64 * 1024,
            temp_dir: None,
        }
    }
}

/// A form that could not be read: `400` for a malformed body, `413` over a limit, or the
/// status of a body the server could not read. It answers with that status and its
/// message as plain text; [`status`](MultipartError::status) and
/// [`message`](MultipartError::message) let an application's own error type take it
/// over.
///
/// # Examples
///
/// ```
/// use ioloop::http::Request;
/// let mut req = Request::parse(
///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
/// ).unwrap();
/// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n".to_vec());
/// let err = req.multipart().unwrap_err();
/// assert_eq!(err.status(), 400);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartError {
    status: u16,
    message: String,
}

impl MultipartError {
    fn bad(message: impl Into<String>) -> MultipartError {
        MultipartError {
            status: 400,
            message: message.into(),
        }
    }

    fn too_large(message: impl Into<String>) -> MultipartError {
        MultipartError {
            status: 413,
            message: message.into(),
        }
    }

    /// 400, 413, or the status of a body the server could not read.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{MultipartLimits, Request};
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\n\
    ///     too big\r\n--X--\r\n".to_vec());
    /// let limits = MultipartLimits { max_file_size: 4, ..Default::default() };
    /// assert_eq!(req.multipart_with(&limits).unwrap_err().status(), 413);
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// What is wrong, safe to show the client.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n".to_vec());
    /// let err = req.multipart().unwrap_err();
    /// assert_eq!(err.message(), "the form ends before its closing boundary");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for MultipartError {}

/// The message as plain text with the status, which an application's
/// [`error_page`](crate::web::Application::error_page) replaces.
impl IntoResponse for MultipartError {
    fn into_response(self) -> Response {
        let page = Response::text(format!("{}\n", self.message)).status_code(self.status);
        page.default_page_of(self.into())
    }
}

/// The status (400, 413, ...), with the message as the public reason.
impl From<MultipartError> for HttpError {
    fn from(error: MultipartError) -> HttpError {
        HttpError::new(error.status).reason(error.message)
    }
}

/// The text fields and files of a form.
///
/// # Examples
///
/// ```
/// use ioloop::http::Request;
/// let mut req = Request::parse(
///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
/// ).unwrap();
/// req.set_body(
///     b"--X\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n\
///       --X\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"../a.txt\"\r\n\
///       Content-Type: text/plain\r\n\r\nfile body\r\n--X--\r\n"
///         .to_vec(),
/// );
/// let form = req.multipart()?;
/// assert_eq!(form.field("title"), Some("hello"));
/// let doc = form.file("doc").unwrap();
/// assert_eq!((doc.filename(), doc.content_type()), ("a.txt", "text/plain"));
/// assert_eq!(doc.bytes(), Some(&b"file body"[..]));
/// # Ok::<(), ioloop::http::MultipartError>(())
/// ```
#[derive(Debug, Default)]
pub struct Multipart {
    fields: Vec<(String, String)>,
    files: Vec<UploadedFile>,
}

impl Multipart {
    /// The text fields (parts without a file name), in order, as (name, value); values
    /// are UTF-8, invalid bytes replaced.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\na\r\n\
    ///     --X\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\nb\r\n--X--\r\n".to_vec());
    /// let form = req.multipart()?;
    /// let fields: Vec<(&str, &str)> = form.fields().iter().map(|(n, v)| (&**n, &**v)).collect();
    /// assert_eq!(fields, [("tag", "a"), ("tag", "b")]);
    /// # Ok::<(), ioloop::http::MultipartError>(())
    /// ```
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// The last value of text field `name` (the last wins, as Tornado's
    /// `get_argument`).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\na\r\n\
    ///     --X\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\nb\r\n--X--\r\n".to_vec());
    /// let form = req.multipart()?;
    /// assert_eq!(form.field("tag"), Some("b"));
    /// assert_eq!(form.field("other"), None);
    /// # Ok::<(), ioloop::http::MultipartError>(())
    /// ```
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The files (parts with a file name), in order.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"a\"; filename=\"1.txt\"\r\n\
    ///     \r\n1\r\n--X\r\nContent-Disposition: form-data; name=\"b\"; filename=\"2.txt\"\r\n\
    ///     \r\n2\r\n--X\r\nContent-Disposition: form-data; name=\"note\"\r\n\
    ///     \r\ntext\r\n--X--".to_vec());
    /// let form = req.multipart()?;
    /// let names: Vec<&str> = form.files().iter().map(|f| f.filename()).collect();
    /// assert_eq!(names, ["1.txt", "2.txt"]);
    /// # Ok::<(), ioloop::http::MultipartError>(())
    /// ```
    pub fn files(&self) -> &[UploadedFile] {
        &self.files
    }

    /// The first file of field `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"f\"; filename=\"1\"\r\n\
    ///     \r\none\r\n--X\r\nContent-Disposition: form-data; name=\"f\"; filename=\"2\"\r\n\
    ///     \r\ntwo\r\n--X--".to_vec());
    /// let form = req.multipart()?;
    /// assert_eq!(form.file("f").map(|f| f.filename()), Some("1"));
    /// assert!(form.file("g").is_none());
    /// # Ok::<(), ioloop::http::MultipartError>(())
    /// ```
    pub fn file(&self, name: &str) -> Option<&UploadedFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// The files, taken out.
    ///
    /// # Examples
    ///
    /// ```
    /// let form = ioloop::http::Multipart::default();
    /// assert!(form.into_files().is_empty());
    /// ```
    pub fn into_files(self) -> Vec<UploadedFile> {
        self.files
    }

    /// Reads the `multipart/form-data` body of a route that streams its body
    /// ([`MethodRouter::stream_body`](crate::web::MethodRouter::stream_body)) piece by
    /// piece, with backpressure: text fields and small files are kept in memory, a file
    /// larger than [`memory_file_size`](MultipartLimits::memory_file_size) is written to
    /// a temporary file (removed when its [`UploadedFile`] is dropped, unless
    /// [`persist`](UploadedFile::persist)ed). Writing a temporary file is a blocking
    /// disk write on the loop, as Tornado's own uploads are.
    ///
    /// # Errors
    ///
    /// 415 when the request is not `multipart/form-data`; as
    /// [`Request::multipart_with`] for the form itself; the server's status when the
    /// body could not be read; 500 when a temporary file could not be written.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ioloop::http::{Multipart, MultipartLimits, Request, Responder};
    ///
    /// // The handler of a route whose body streams (the web layer's
    /// // `post(upload).stream_body().body_limit(1 << 30)`): nothing of it is read yet.
    /// async fn upload(req: Request, responder: Responder) {
    ///     match Multipart::receive(&req, &responder, &MultipartLimits::default()).await {
    ///         Ok(form) => responder.send(format!("{} files", form.files().len())),
    ///         Err(e) => responder.send(e),
    ///     }
    /// }
    /// # let _ = upload;
    /// ```
    pub async fn receive(
        request: &Request,
        responder: &Responder,
        limits: &MultipartLimits,
    ) -> Result<Multipart, MultipartError> {
        let Some(boundary) = boundary(request)? else {
            return Err(MultipartError {
                status: 415,
                message: "expected multipart/form-data".to_owned(),
            });
        };
        let mut parser = Parser::new(&boundary, limits);
        let mut collector = Collector::new(limits, true, false);
        loop {
            match responder.next_body_chunk().await {
                BodyChunk::Data(data) => parser.feed(&data, &mut |e| collector.event(e))?,
                BodyChunk::End => break,
                BodyChunk::Failed(status) => {
                    return Err(MultipartError {
                        status,
                        message: "the body could not be read".to_owned(),
                    })
                }
            }
        }
        parser.finish()?;
        Ok(collector.form)
    }
}

/// A file of a form.
///
/// # Examples
///
/// ```
/// use ioloop::http::Request;
/// let mut req = Request::parse(
///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
/// ).unwrap();
/// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"me.png\"\r\n\
///     Content-Type: image/png\r\n\r\n\x89PNG\r\n--X--\r\n".to_vec());
/// let form = req.multipart()?;
/// let file: &ioloop::http::UploadedFile = &form.files()[0];
/// assert_eq!((file.name(), file.filename()), ("avatar", "me.png"));
/// assert_eq!((file.content_type(), file.len()), ("image/png", 4));
/// assert_eq!(file.bytes(), Some(&b"\x89PNG"[..]));
/// # Ok::<(), ioloop::http::MultipartError>(())
/// ```
#[derive(Debug)]
pub struct UploadedFile {
    name: String,
    filename: String,
    content_type: String,
    len: u64,
    data: FileData,
}

#[derive(Debug)]
enum FileData {
    Memory(Vec<u8>),
    Disk(TempFile),
}

impl UploadedFile {
    /// The form field's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"avatar\"; \
    ///     filename=\"me.png\"\r\n\
    ///     \r\nx\r\n--X--\r\n".to_vec());
    /// assert_eq!(req.multipart()?.files()[0].name(), "avatar");
    /// # Ok::<(), ioloop::http::MultipartError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file name the client gave, sanitized: only its last path segment (after the
    /// last `/` or `\`), without control characters, `..` or surrounding spaces; empty
    /// when nothing is left. Still not a name to trust on a file system as is.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// // The client's path, in a quoted string: C:\tmp\a.txt
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"f\"; \
    ///     filename=\"C:\\\\tmp\\\\a.txt\"\r\n\r\nx\r\n--X--\r\n".to_vec());
    /// assert_eq!(req.multipart()?.files()[0].filename(), "a.txt");
    /// # Ok::<(), ioloop::http::MultipartError>(())
    /// ```
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// The part's `Content-Type` (`application/octet-stream` when it has none).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"a\"; filename=\"a.csv\"\r\n\
    ///     Content-Type: text/csv\r\n\r\nx\r\n\
    ///     --X\r\nContent-Disposition: form-data; name=\"b\"; filename=\"b\"\r\n\
    ///     \r\ny\r\n--X--".to_vec());
    /// let form = req.multipart()?;
    /// assert_eq!(form.files()[0].content_type(), "text/csv");
    /// assert_eq!(form.files()[1].content_type(), "application/octet-stream");
    /// # Ok::<(), ioloop::http::MultipartError>(())
    /// ```
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The size in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(file: &ioloop::http::UploadedFile) {
    /// println!("{} bytes", file.len());
    /// # }
    /// ```
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"f\"; filename=\"empty\"\r\n\
    ///     \r\n\r\n--X--\r\n".to_vec());
    /// let form = req.multipart()?;
    /// assert!(form.files()[0].is_empty());
    /// assert_eq!(form.files()[0].len(), 0);
    /// # Ok::<(), ioloop::http::MultipartError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The content, when it is in memory (always from [`Request::multipart`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\
    ///     \r\n\x00\x01\x02\r\n--X--\r\n".to_vec());
    /// assert_eq!(req.multipart()?.files()[0].bytes(), Some(&[0u8, 1, 2][..]));
    /// # Ok::<(), ioloop::http::MultipartError>(())
    /// ```
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.data {
            FileData::Memory(bytes) => Some(bytes),
            FileData::Disk(_) => None,
        }
    }

    /// The temporary file holding the content, when it was written to disk (by
    /// [`Multipart::receive`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(file: &ioloop::http::UploadedFile) {
    /// if let Some(path) = file.path() {
    ///     println!("on disk at {}", path.display());
    /// }
    /// # }
    /// ```
    pub fn path(&self) -> Option<&Path> {
        match &self.data {
            FileData::Memory(_) => None,
            FileData::Disk(temp) => Some(&temp.path),
        }
    }

    /// The content, from memory or read from its temporary file.
    ///
    /// # Errors
    ///
    /// Reading the temporary file failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn f(file: &ioloop::http::UploadedFile) -> std::io::Result<()> {
    /// let content = file.read()?;
    /// # let _ = content; Ok(()) }
    /// ```
    pub fn read(&self) -> io::Result<Cow<'_, [u8]>> {
        match &self.data {
            FileData::Memory(bytes) => Ok(Cow::Borrowed(bytes)),
            FileData::Disk(temp) => std::fs::read(&temp.path).map(Cow::Owned),
        }
    }

    /// Keeps the file at `to`: its temporary file is moved there (copied when it is on
    /// another file system), or its content written there.
    ///
    /// # Errors
    ///
    /// Moving or writing failed (the temporary file is then removed).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(file: ioloop::http::UploadedFile) -> std::io::Result<()> {
    /// file.persist("uploads/report.pdf")?;
    /// # Ok(()) }
    /// ```
    pub fn persist(self, to: impl AsRef<Path>) -> io::Result<()> {
        let to = to.as_ref();
        match self.data {
            FileData::Memory(bytes) => std::fs::write(to, bytes),
            FileData::Disk(mut temp) => {
                if std::fs::rename(&temp.path, to).is_ok() {
                    temp.kept = true;
                    return Ok(());
                }
                std::fs::copy(&temp.path, to).map(|_| ())
            }
        }
    }
}

/// A temporary file, removed when dropped unless kept.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
    file: Option<File>,
    kept: bool,
}

impl TempFile {
    fn create(dir: Option<&Path>) -> io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                "ioloop-upload-{}-{n}-{nanos:x}",
                std::process::id()
            ));
            match options.open(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                        kept: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.file.take();
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A part's head: its field name, file name (a file part) and type.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartHead {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
}

/// What the parser finds, in order: a part's head, its content in pieces, its end.
enum Event<'a> {
    Part(PartHead),
    Data(&'a [u8]),
    End,
}

/// Where the parser is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter (the preamble is skipped).
    Preamble,
    /// Just after a delimiter: `--` ends the body, CRLF starts a part.
    Delimiter,
    /// In a part's header block.
    Headers,
    /// In a part's content.
    Body,
    /// After the closing delimiter (the epilogue is skipped).
    Done,
}

/// The sans-IO parser: fed pieces of any size, it tells events to a sink, holding back
/// at most a delimiter's length of content and one part's header block.
struct Parser {
    /// `CRLF "--" boundary`.
    delimiter: Vec<u8>,
    state: State,
    buf: Vec<u8>,
    received: u64,
    /// How much of a part's header block was searched for its end without finding it
    /// (the search resumes there, so a block arriving byte by byte is scanned once).
    header_scanned: usize,
    parts: usize,
    max_total: u64,
    max_parts: usize,
    max_header: usize,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut at = 0;
    while at + needle.len() <= haystack.len() {
        match haystack[at..=haystack.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            Some(i) => {
                at += i;
                if &haystack[at..at + needle.len()] == needle {
                    return Some(at);
                }
                at += 1;
            }
            None => return None,
        }
    }
    None
}

impl Parser {
    fn new(boundary: &str, limits: &MultipartLimits) -> Parser {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Parser {
            delimiter,
            state: State::Preamble,
            // The first delimiter may open the body without the CRLF before it.
            buf: b"\r\n".to_vec(),
            received: 0,
            header_scanned: 0,
            parts: 0,
            max_total: limits.max_total_size,
            max_parts: limits.max_parts,
            max_header: limits.max_part_header_size,
        }
    }

    fn feed(
        &mut self,
        data: &[u8],
        sink: &mut dyn FnMut(Event<'_>) -> Result<(), MultipartError>,
    ) -> Result<(), MultipartError> {
        self.received += data.len() as u64;
        if self.received > self.max_total {
            return Err(MultipartError::too_large(format!(
                "the form is larger than {} bytes",
                self.max_total
            )));
        }
        if self.state == State::Done {
            return Ok(());
        }
        self.buf.extend_from_slice(data);
        let keep = self.delimiter.len() - 1;
        let mut at = 0;
        loop {
            let rest = &self.buf[at..];
            match self.state {
                State::Preamble => match find(rest, &self.delimiter) {
                    Some(i) => {
                        at += i + self.delimiter.len();
                        self.state = State::Delimiter;
                    }
                    None => {
                        at += rest.len().saturating_sub(keep);
                        break;
                    }
                },
                State::Delimiter => {
                    let spaces = rest
                        .iter()
                        .take_while(|&&b| b == b' ' || b == b'\t')
                        .count();
                    if spaces > 64 {
                        return Err(MultipartError::bad("malformed boundary line"));
                    }
                    if rest.len() < spaces + 2 {
                        break;
                    }
                    match &rest[spaces..spaces + 2] {
                        b"--" => {
                            at = self.buf.len();
                            self.state = State::Done;
                            break;
                        }
                        b"\r\n" => {
                            at += spaces + 2;
                            self.state = State::Headers;
                        }
                        _ => return Err(MultipartError::bad("malformed boundary line")),
                    }
                }
                State::Headers => {
                    let end = if rest.starts_with(b"\r\n") {
                        Some((0, 2))
                    } else {
                        let from = self.header_scanned.min(rest.len());
                        find(&rest[from..], b"\r\n\r\n").map(|i| (from + i, from + i + 4))
                    };
                    let Some((len, skip)) = end else {
                        if rest.len() > self.max_header + 4 {
                            return Err(MultipartError::too_large(
                                "a part's header block is too large",
                            ));
                        }
                        // The end may straddle this piece and the next.
                        self.header_scanned = rest.len().saturating_sub(3);
                        break;
                    };
                    self.header_scanned = 0;
                    if len > self.max_header {
                        return Err(MultipartError::too_large(
                            "a part's header block is too large",
                        ));
                    }
                    self.parts += 1;
                    if self.parts > self.max_parts {
                        return Err(MultipartError::too_large(format!(
                            "the form has more than {} parts",
                            self.max_parts
                        )));
                    }
                    let head = parse_part_head(&rest[..len])?;
                    sink(Event::Part(head))?;
                    at += skip;
                    self.state = State::Body;
                }
                State::Body => match find(rest, &self.delimiter) {
                    Some(i) => {
                        if i > 0 {
                            sink(Event::Data(&rest[..i]))?;
                        }
                        sink(Event::End)?;
                        at += i + self.delimiter.len();
                        self.state = State::Delimiter;
                    }
                    None => {
                        let safe = rest.len().saturating_sub(keep);
                        if safe > 0 {
                            sink(Event::Data(&rest[..safe]))?;
                        }
                        at += safe;
                        break;
                    }
                },
                State::Done => {
                    at = self.buf.len();
                    break;
                }
            }
        }
        self.buf.drain(..at);
        Ok(())
    }

    fn finish(&self) -> Result<(), MultipartError> {
        match self.state {
            State::Done => Ok(()),
            _ => Err(MultipartError::bad(
                "the form ends before its closing boundary",
            )),
        }
    }
}

/// The parameters of a header field value (`form-data; name="a"; filename="b"`), with
/// quoted strings unescaped; the first item is the value itself.
fn header_params(value: &str) -> Vec<(String, String)> {
    let mut items = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            name.push(c);
            chars.next();
        }
        let mut param_value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                param_value.push(escaped);
                            }
                        }
                        '"' => break,
                        c => param_value.push(c),
                    }
                }
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    param_value.push(c);
                    chars.next();
                }
            }
        }
        items.push((
            name.trim().to_ascii_lowercase(),
            param_value.trim().to_owned(),
        ));
        if chars.next().is_none() {
            return items;
        }
    }
}

fn parse_part_head(block: &[u8]) -> Result<PartHead, MultipartError> {
    let text = String::from_utf8_lossy(block);
    let mut disposition = None;
    let mut content_type = None;
    for line in text.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            return Err(MultipartError::bad("a malformed part header field"));
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.trim().to_owned());
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    let Some(disposition) = disposition else {
        return Err(MultipartError::bad("a part without Content-Disposition"));
    };
    let params = header_params(&disposition);
    if params.first().is_none_or(|(kind, _)| kind != "form-data") {
        return Err(MultipartError::bad("a part that is not form-data"));
    }
    let param = |key: &str| {
        params[1..]
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let Some(name) = param("name") else {
        return Err(MultipartError::bad("a part without a name"));
    };
    Ok(PartHead {
        name,
        filename: param("filename").map(|f| sanitize_filename(&f)),
        content_type,
    })
}

/// A client's file name made harmless: its last path segment, without control
/// characters, `..` or surrounding spaces.
fn sanitize_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = last.chars().filter(|c| !c.is_control()).collect();
    while name.contains("..") {
        name = name.replace("..", ".");
    }
    let name = name.trim();
    if name == "." {
        String::new()
    } else {
        name.to_owned()
    }
}

/// The part being collected.
enum Current {
    Field {
        name: String,
        value: Vec<u8>,
    },
    File {
        head: PartHead,
        len: u64,
        data: FileData,
    },
    Skipped,
}

/// Collects a parser's events into a [`Multipart`], within the limits.
struct Collector<'l> {
    limits: &'l MultipartLimits,
    /// Files larger than `memory_file_size` go to temporary files.
    spill: bool,
    /// Only text fields are kept (file contents are skipped).
    fields_only: bool,
    current: Option<Current>,
    form: Multipart,
}

impl<'l> Collector<'l> {
    fn new(limits: &'l MultipartLimits, spill: bool, fields_only: bool) -> Collector<'l> {
        Collector {
            limits,
            spill,
            fields_only,
            current: None,
            form: Multipart::default(),
        }
    }

    fn event(&mut self, event: Event<'_>) -> Result<(), MultipartError> {
        match event {
            Event::Part(head) => {
                self.current = Some(match head.filename {
                    None => Current::Field {
                        name: head.name,
                        value: Vec::new(),
                    },
                    Some(_) if self.fields_only => Current::Skipped,
                    Some(_) => Current::File {
                        head,
                        len: 0,
                        data: FileData::Memory(Vec::new()),
                    },
                });
            }
            Event::Data(data) => match &mut self.current {
                Some(Current::Field { name, value }) => {
                    if value.len() + data.len() > self.limits.max_field_size {
                        // No name: the message is shown, the name is the client's.
                        log::debug!(target: "ioloop::http", "form field {name:?} over its limit");
                        return Err(MultipartError::too_large(format!(
                            "a field is larger than {} bytes",
                            self.limits.max_field_size
                        )));
                    }
                    value.extend_from_slice(data);
                }
                Some(Current::File {
                    head,
                    len,
                    data: stored,
                }) => {
                    *len += data.len() as u64;
                    if *len > self.limits.max_file_size {
                        log::debug!(target: "ioloop::http", "uploaded file {:?} over its limit", head.name);
                        return Err(MultipartError::too_large(format!(
                            "a file is larger than {} bytes",
                            self.limits.max_file_size
                        )));
                    }
                    if let FileData::Memory(bytes) = stored {
                        if self.spill && bytes.len() + data.len() > self.limits.memory_file_size {
                            let temp = spill(bytes, self.limits.temp_dir.as_deref())?;
                            *stored = FileData::Disk(temp);
                        }
                    }
                    match stored {
                        FileData::Memory(bytes) => bytes.extend_from_slice(data),
                        FileData::Disk(temp) => write_temp(temp, data)?,
                    }
                }
                Some(Current::Skipped) | None => {}
            },
            Event::End => match self.current.take() {
                Some(Current::Field { name, value }) => {
                    let value = String::from_utf8(value)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    self.form.fields.push((name, value));
                }
                Some(Current::File {
                    head,
                    len,
                    mut data,
                }) => {
                    if let FileData::Disk(temp) = &mut data {
                        if let Some(file) = temp.file.take() {
                            file.sync_data().ok();
                        }
                    }
                    self.form.files.push(UploadedFile {
                        name: head.name,
                        filename: head.filename.unwrap_or_default(),
                        content_type: head
                            .content_type
                            .unwrap_or_else(|| "application/octet-stream".to_owned()),
                        len,
                        data,
                    });
                }
                Some(Current::Skipped) | None => {}
            },
        }
        Ok(())
    }
}

fn temp_failed(e: io::Error) -> MultipartError {
    log::error!(target: "ioloop::http", "writing an upload's temporary file failed: {e}");
    MultipartError {
        status: 500,
        message: "the upload could not be stored".to_owned(),
    }
}

fn spill(bytes: &mut Vec<u8>, dir: Option<&Path>) -> Result<TempFile, MultipartError> {
    let mut temp = TempFile::create(dir).map_err(temp_failed)?;
    write_temp(&mut temp, bytes)?;
    *bytes = Vec::new();
    Ok(temp)
}

fn write_temp(temp: &mut TempFile, data: &[u8]) -> Result<(), MultipartError> {
    match &mut temp.file {
        Some(file) => file.write_all(data).map_err(temp_failed),
        None => Ok(()),
    }
}

/// The boundary of a `multipart/form-data` request; `None` for another type.
fn boundary(request: &Request) -> Result<Option<String>, MultipartError> {
    let Some(content_type) = request.header("content-type") else {
        return Ok(None);
    };
    let params = header_params(content_type);
    if params
        .first()
        .is_none_or(|(kind, _)| kind != "multipart/form-data")
    {
        return Ok(None);
    }
    let boundary = params[1..]
        .iter()
        .find(|(k, _)| k == "boundary")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    // RFC 2046 §5.1.1: 1 to 70 characters.
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(MultipartError::bad(
            "a multipart body without a valid boundary",
        ));
    }
    Ok(Some(boundary))
}

fn parse_whole(
    request: &Request,
    limits: &MultipartLimits,
    fields_only: bool,
) -> Result<Multipart, MultipartError> {
    let Some(boundary) = boundary(request)? else {
        return Ok(Multipart::default());
    };
    let mut parser = Parser::new(&boundary, limits);
    let mut collector = Collector::new(limits, false, fields_only);
    parser.feed(request.body(), &mut |e| collector.event(e))?;
    parser.finish()?;
    Ok(collector.form)
}

impl Request {
    /// The `multipart/form-data` body's fields and files (Tornado's `request.files` and
    /// `parse_multipart_form_data`), within the default [`MultipartLimits`]; an empty
    /// form for another body. Each call parses the body: keep the result.
    ///
    /// # Errors
    ///
    /// A [`MultipartError`]: 400 for a malformed body, 413 over a limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhi\r\n--X--"
    ///     .to_vec());
    /// assert_eq!(req.multipart()?.field("title"), Some("hi"));
    /// // Another body is an empty form.
    /// let plain = Request::parse(b"POST / HTTP/1.1\r\nContent-Type: text/plain\r\n\r\n").unwrap();
    /// assert!(plain.multipart()?.fields().is_empty());
    /// # Ok::<(), ioloop::http::MultipartError>(())
    /// ```
    pub fn multipart(&self) -> Result<Multipart, MultipartError> {
        self.multipart_with(&MultipartLimits::default())
    }

    /// As [`multipart`](Request::multipart), within `limits`.
    ///
    /// # Errors
    ///
    /// As [`multipart`](Request::multipart).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::{MultipartLimits, Request};
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n12345\r\n--X--".to_vec());
    /// let limits = MultipartLimits { max_field_size: 4, ..Default::default() };
    /// assert_eq!(req.multipart_with(&limits).unwrap_err().status(), 413);
    /// ```
    pub fn multipart_with(&self, limits: &MultipartLimits) -> Result<Multipart, MultipartError> {
        parse_whole(self, limits, false)
    }

    /// The files of a `multipart/form-data` body (Tornado's `request.files`); none for
    /// another body.
    ///
    /// # Errors
    ///
    /// As [`multipart`](Request::multipart).
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"POST / HTTP/1.1\r\n\r\n").unwrap();
    /// assert!(req.files()?.is_empty());
    /// # Ok::<(), ioloop::http::MultipartError>(())
    /// ```
    pub fn files(&self) -> Result<Vec<UploadedFile>, MultipartError> {
        self.multipart().map(Multipart::into_files)
    }

    /// The text fields of a `multipart/form-data` body as (name, value), in order, file
    /// contents skipped; none for another body. The arguments of a form
    /// (`get_argument`) read multipart bodies through it. The default limits of fields,
    /// parts and part headers apply; the body's own size is the route's to limit.
    ///
    /// # Errors
    ///
    /// As [`multipart`](Request::multipart).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(b"--X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--X--".to_vec());
    /// assert_eq!(req.multipart_fields()?, [("a".to_owned(), "1".to_owned())]);
    /// # Ok::<(), ioloop::http::MultipartError>(())
    /// ```
    pub fn multipart_fields(&self) -> Result<Vec<(String, String)>, MultipartError> {
        // The body is in memory already (within the route's body limit) and file contents
        // are skipped: the total and per-file limits have nothing left to guard, so a
        // large upload still has its `_xsrf` and other fields read.
        let limits = MultipartLimits {
            max_total_size: u64::MAX,
            max_file_size: u64::MAX,
            ..MultipartLimits::default()
        };
        parse_whole(self, &limits, true).map(|form| form.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"preamble\r\n--b0undary\r\n\
        Content-Disposition: form-data; name=\"title\"\r\n\r\n\
        line one\r\nline two --b0undar\r\n\
        --b0undary\r\n\
        Content-Disposition: form-data; name=\"doc\"; filename=\"C:\\\\evil\\\\..\\\\a\\\"b.txt\"\r\n\
        Content-Type: text/plain\r\n\r\n\
        \r\n--not the boundary\r\n\r\n\
        --b0undary  \r\n\
        Content-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n\r\n\
        \r\n--b0undary--\r\nepilogue";

    fn parse_in_pieces(
        body: &[u8],
        size: usize,
        limits: &MultipartLimits,
    ) -> Result<Multipart, MultipartError> {
        let mut parser = Parser::new("b0undary", limits);
        let mut collector = Collector::new(limits, false, false);
        for piece in body.chunks(size) {
            parser.feed(piece, &mut |e| collector.event(e))?;
        }
        parser.finish()?;
        Ok(collector.form)
    }

    #[test]
    fn every_split_of_the_body_gives_the_same_form() {
        let limits = MultipartLimits::default();
        for size in 1..=BODY.len() {
            let form = parse_in_pieces(BODY, size, &limits).unwrap();
            assert_eq!(
                form.fields(),
                [(
                    "title".to_owned(),
                    "line one\r\nline two --b0undar".to_owned()
                )],
                "{size}"
            );
            let files = form.files();
            assert_eq!(files.len(), 2, "{size}");
            assert_eq!(files[0].name(), "doc");
            assert_eq!(files[0].filename(), "a\"b.txt");
            assert_eq!(files[0].content_type(), "text/plain");
            assert_eq!(
                files[0].bytes(),
                Some(&b"\r\n--not the boundary\r\n"[..]),
                "{size}"
            );
            assert_eq!((files[1].filename(), files[1].len()), ("", 0));
            assert_eq!(files[1].content_type(), "application/octet-stream");
        }
    }

    #[test]
    fn random_forms_round_trip_through_random_pieces() {
        // A model check: forms of random parts whose contents are made of the bytes
        // that matter (CR, LF, '-', the boundary's letters), encoded, then parsed from
        // random pieces, give back exactly what was encoded.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let alphabet = b"\r\n-b0undaryx";
        let limits = MultipartLimits::default();
        for _ in 0..300 {
            let parts: Vec<(bool, Vec<u8>)> = (0..1 + next(4))
                .map(|_| {
                    let len = next(40);
                    (
                        next(2) == 0,
                        (0..len).map(|_| alphabet[next(alphabet.len())]).collect(),
                    )
                })
                .collect();
            let mut body = Vec::new();
            for (i, (is_file, content)) in parts.iter().enumerate() {
                body.extend_from_slice(b"--b0undary\r\nContent-Disposition: form-data; name=\"p");
                body.extend_from_slice(i.to_string().as_bytes());
                body.extend_from_slice(if *is_file {
                    b"\"; filename=\"f\"\r\n\r\n"
                } else {
                    b"\"\r\n\r\n"
                });
                body.extend_from_slice(content);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"--b0undary--\r\n");
            let mut parser = Parser::new("b0undary", &limits);
            let mut collector = Collector::new(&limits, false, false);
            let mut rest = &body[..];
            while !rest.is_empty() {
                let (piece, after) = rest.split_at(1 + next(rest.len()));
                parser.feed(piece, &mut |e| collector.event(e)).unwrap();
                rest = after;
            }
            parser.finish().unwrap();
            let (mut fields, mut files) =
                (collector.form.fields.iter(), collector.form.files.iter());
            for (is_file, content) in &parts {
                if *is_file {
                    assert_eq!(files.next().unwrap().bytes().unwrap(), &content[..]);
                } else {
                    assert_eq!(fields.next().unwrap().1.as_bytes(), &content[..]);
                }
            }
        }
    }

    #[test]
    fn file_names_are_sanitized() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(sanitize_filename(".."), "");
        assert_eq!(sanitize_filename("a\r\nb\0c\x7f.txt"), "abc.txt");
        assert_eq!(sanitize_filename("x..y"), "x.y");
        assert_eq!(sanitize_filename("  report.pdf "), "report.pdf");
        assert_eq!(sanitize_filename("dir/"), "");
        assert_eq!(sanitize_filename("résumé.pdf"), "résumé.pdf");
    }

    #[test]
    fn limits_answer_413_and_malformed_bodies_400() {
        let status =
            |limits: MultipartLimits| parse_in_pieces(BODY, 7, &limits).unwrap_err().status();
        assert_eq!(
            status(MultipartLimits {
                max_field_size: 10,
                ..Default::default()
            }),
            413
        );
        assert_eq!(
            status(MultipartLimits {
                max_file_size: 10,
                ..Default::default()
            }),
            413
        );
        assert_eq!(
            status(MultipartLimits {
                max_total_size: 100,
                ..Default::default()
            }),
            413
        );
        assert_eq!(
            status(MultipartLimits {
                max_parts: 2,
                ..Default::default()
            }),
            413
        );
        assert_eq!(
            status(MultipartLimits {
                max_part_header_size: 40,
                ..Default::default()
            }),
            413
        );
        let bad = |body: &[u8]| {
            parse_in_pieces(body, 3, &MultipartLimits::default())
                .unwrap_err()
                .status()
        };
        assert_eq!(
            bad(b"--b0undary\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx"),
            400
        );
        assert_eq!(
            bad(b"--b0undary\r\nContent-Type: text/plain\r\n\r\nx\r\n--b0undary--"),
            400
        );
        assert_eq!(bad(b"--b0undary\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--b0undary--"), 400);
        assert_eq!(
            bad(b"--b0undary\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b0undary--"),
            400
        );
        assert_eq!(bad(b"--b0undaryX\r\n"), 400);
        assert_eq!(bad(b"no boundary at all"), 400);
    }

    #[test]
    fn limit_messages_name_no_field_of_the_client() {
        let limits = MultipartLimits {
            max_field_size: 10,
            ..Default::default()
        };
        let err = parse_in_pieces(BODY, 7, &limits).unwrap_err();
        assert_eq!(err.message(), "a field is larger than 10 bytes");
    }

    #[test]
    #[cfg_attr(miri, ignore = "17 MiB parsed: hours under Miri, and no unsafe code")]
    fn fields_are_read_from_a_form_past_the_default_total_and_file_limits() {
        let mut body = b"--B\r\nContent-Disposition: form-data; name=\"_xsrf\"\r\n\r\ntoken\r\n\
            --B\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.bin\"\r\n\r\n"
            .to_vec();
        body.resize(body.len() + (17 << 20), b'x');
        body.extend_from_slice(b"\r\n--B--\r\n");
        let mut req = Request::parse(
            b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=B\r\n\r\n",
        )
        .unwrap();
        req.set_body(body);
        assert_eq!(req.multipart().unwrap_err().status(), 413);
        assert_eq!(
            req.multipart_fields().unwrap(),
            [("_xsrf".to_owned(), "token".to_owned())]
        );
    }

    #[test]
    fn a_header_block_arriving_byte_by_byte_is_searched_once() {
        let limits = MultipartLimits::default();
        let mut parser = Parser::new("B", &limits);
        let mut events = 0;
        let head =
            b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: 0123456789\r\n\r\n";
        let (block, end) = head.split_at(head.len() - 4);
        for byte in block.chunks(1) {
            parser.feed(byte, &mut |_| Ok(())).unwrap();
        }
        // Everything but the last three bytes (where the blank line may begin) is done.
        assert_eq!(parser.header_scanned, block.len() - "--B\r\n".len() - 3);
        parser
            .feed(end, &mut |_| {
                events += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!((events, parser.header_scanned), (1, 0));
    }

    #[test]
    fn header_parameters_unquote() {
        assert_eq!(
            header_params("form-data; name=\"a;b\"; filename=\"x\\\"y\""),
            [
                ("form-data".to_owned(), String::new()),
                ("name".to_owned(), "a;b".to_owned()),
                ("filename".to_owned(), "x\"y".to_owned())
            ]
        );
        assert_eq!(
            header_params("multipart/form-data; boundary=abc")[1],
            ("boundary".to_owned(), "abc".to_owned())
        );
    }
}
