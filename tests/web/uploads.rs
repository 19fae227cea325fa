//! File uploads (`multipart/form-data`, RFC 7578) on the wire: curl `-F` and a body
//! Python's stdlib builds, through a whole-body route (`Request::multipart`) and a
//! streamed one (`Multipart::receive`, large files in temporary files), with the limits
//! answering 413 and file names sanitized.

#![cfg(all(feature = "web", target_os = "linux"))]

use crate::common;

use std::process::Command;

use common::{has_tool, require_tool, with_client};
use ioloop::http::{Multipart, MultipartLimits, Request, Responder};
use ioloop::web::{post, Application};

/// Describes a form: its fields, then each file as name, filename, type, length, where
/// it is kept and a checksum of its content.
fn describe(form: &Multipart) -> String {
    let mut out = String::new();
    for (name, value) in form.fields() {
        out += &format!("field {name}={value:?}\n");
    }
    for file in form.files() {
        let content = file.read().unwrap();
        let sum: u64 = content.iter().map(|&b| u64::from(b)).sum();
        let kept = if file.path().is_some() {
            "disk"
        } else {
            "memory"
        };
        out += &format!(
            "file {} {:?} {} {} {kept} {sum}\n",
            file.name(),
            file.filename(),
            file.content_type(),
            file.len()
        );
    }
    out
}

fn app() -> Application {
    let small = MultipartLimits {
        max_file_size: 1024,
        ..Default::default()
    };
    let streamed = MultipartLimits {
        memory_file_size: 16 * 1024,
        max_file_size: 4 << 20,
        ..Default::default()
    };
    Application::new()
        .route(
            "/upload",
            post(|req: Request| async move { req.multipart().map(|form| describe(&form)) }),
        )
        .route(
            "/small",
            post(move |req: Request| {
                let answer = req.multipart_with(&small).map(|form| describe(&form));
                async move { answer }
            }),
        )
        .route(
            "/stream",
            post(move |req: Request, responder: Responder| {
                let limits = streamed.clone();
                async move {
                    match Multipart::receive(&req, &responder, &limits).await {
                        Ok(form) => {
                            let text = describe(&form);
                            let paths: Vec<_> = form
                                .files()
                                .iter()
                                .filter_map(|f| f.path().map(|p| p.to_owned()))
                                .collect();
                            drop(form);
                            let removed = paths.iter().all(|p| !p.exists());
                            responder.send(format!("{text}temporary files removed: {removed}\n"));
                        }
                        Err(e) => responder.send(e),
                    }
                }
            })
            .stream_body()
            .body_limit(64 << 20),
        )
}

fn serve(client: impl FnOnce(std::net::SocketAddr) -> String + Send + 'static) -> String {
    let ioloop = ioloop::IoLoop::new().unwrap();
    let (_server, addr) = app().bind(&ioloop, "127.0.0.1:0").unwrap();
    with_client(&ioloop, addr, client)
}

fn curl(args: &[String]) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "-w", "\nstatus %{http_code}"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn curl_uploads_fields_and_files_with_sanitized_names() {
    if !has_tool("curl", &["--version"]) {
        return require_tool("curl");
    }
    let dir = std::env::temp_dir().join(format!("ioloop-uploads-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.txt");
    std::fs::write(&report, "x".repeat(3000)).unwrap();
    let big = dir.join("big.bin");
    std::fs::write(&big, vec![1u8; 1 << 20]).unwrap();
    let (r, b) = (report.display().to_string(), big.display().to_string());
    let out = serve(move |addr| {
        let base = format!("http://{addr}");
        [
            curl(&[
                "-F".into(),
                "title=Quarterly <report>".into(),
                "-F".into(),
                format!("doc=@{r};filename=../../etc/passwd;type=text/plain"),
                "-F".into(),
                format!("second=@{r};filename=report.txt"),
                format!("{base}/upload"),
            ]),
            curl(&["-F".into(), format!("doc=@{r}"), format!("{base}/small")]),
            curl(&[
                "-F".into(),
                "note=streamed".into(),
                "-F".into(),
                format!("blob=@{b};type=application/octet-stream"),
                "-F".into(),
                format!("tiny=@{r}"),
                format!("{base}/stream"),
            ]),
            curl(&[
                "-F".into(),
                format!("a=@{b}"),
                "-F".into(),
                format!("b=@{b}"),
                "-F".into(),
                format!("c=@{b}"),
                "-F".into(),
                format!("d=@{b}"),
                "-F".into(),
                format!("e=@{b}"),
                format!("{base}/stream"),
            ]),
        ]
        .join("\n---\n")
    });
    std::fs::remove_dir_all(&dir).ok();
    let parts: Vec<&str> = out.split("\n---\n").collect();
    assert_eq!(
        parts[0],
        "field title=\"Quarterly <report>\"\n\
         file doc \"passwd\" text/plain 3000 memory 360000\n\
         file second \"report.txt\" text/plain 3000 memory 360000\n\
         \nstatus 200",
        "{out}"
    );
    assert!(
        parts[1].starts_with("a file is larger than 1024 bytes"),
        "{out}"
    );
    assert!(parts[1].ends_with("status 413"), "{out}");
    assert_eq!(
        parts[2],
        "field note=\"streamed\"\n\
         file blob \"big.bin\" application/octet-stream 1048576 disk 1048576\n\
         file tiny \"report.txt\" text/plain 3000 memory 360000\n\
         temporary files removed: true\n\
         \nstatus 200",
        "{out}"
    );
    // 5 MiB of files in a route whose files may be 4 MiB each but whose form may be 16:
    // within limits; each lands on disk.
    assert!(
        parts[3].contains("file e \"big.bin\" application/octet-stream 1048576 disk"),
        "{out}"
    );
}

#[test]
fn a_body_built_by_pythons_stdlib_parses_and_limits_answer_413() {
    if !has_tool("python3", &["--version"]) {
        return require_tool("python3");
    }
    let script = r#"
import http.client, sys, uuid
port = int(sys.argv[1])
def post(path, parts, boundary=None):
    boundary = boundary or uuid.uuid4().hex
    body = b""
    for name, filename, ctype, data in parts:
        disp = 'form-data; name="%s"' % name
        if filename is not None:
            disp += '; filename="%s"' % filename
        body += b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disp.encode() + b"\r\n"
        if ctype:
            body += b"Content-Type: " + ctype.encode() + b"\r\n"
        body += b"\r\n" + data + b"\r\n"
    body += b"--" + boundary.encode() + b"--\r\n"
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request("POST", path, body=body, headers={"Content-Type": 'multipart/form-data; boundary="%s"' % boundary})
    r = c.getresponse()
    return "%d %s" % (r.status, r.read().decode())
out = []
out.append(post("/upload", [("msg", None, None, "héllo\r\n--almost".encode()),
                            ("f", "a\x01b.txt", "text/csv", b"\x00\xff" * 10)]))
out.append(post("/stream", [("huge", "x.bin", None, b"z" * (5 << 20))]))
out.append(post("/upload", [("f", "x", None, b"y" * 100)], boundary="b" * 71))
print("\n===\n".join(out))
"#;
    let out = serve(move |addr| {
        let out = Command::new("python3")
            .args(["-c", script, &addr.port().to_string()])
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let parts: Vec<&str> = out.trim_end().split("\n===\n").collect();
    assert_eq!(
        parts[0],
        "200 field msg=\"héllo\\r\\n--almost\"\nfile f \"ab.txt\" text/csv 20 memory 2550\n",
        "{out}"
    );
    assert_eq!(
        parts[1], "413 a file is larger than 4194304 bytes\n",
        "{out}"
    );
    assert_eq!(
        parts[2], "400 a multipart body without a valid boundary",
        "{out}"
    );
}

#[test]
fn hostile_bodies_get_an_answer_never_a_panic() {
    // Bodies stitched from the pieces a parser trips on, with tight limits: each is a
    // form, a 400 or a 413.
    let fragments: [&[u8]; 12] = [
        b"--X",
        b"\r\n",
        b"--",
        b"Content-Disposition: form-data; name=\"a\"",
        b"; filename=\"../x\\\"",
        b"Content-Type: text/plain",
        b"\r\n\r\n",
        b"\"",
        b";",
        b"\xff\x00",
        b"  \t",
        b"payload",
    ];
    let limits = MultipartLimits {
        max_field_size: 64,
        max_file_size: 64,
        max_total_size: 4096,
        max_parts: 8,
        max_part_header_size: 128,
        ..Default::default()
    };
    let mut rng = common::Rng(0x5EED_F00D);
    let mut outcomes = [0usize; 3];
    for _ in 0..5000 {
        let mut body = Vec::new();
        for _ in 0..rng.below(40) {
            body.extend_from_slice(fragments[rng.below(fragments.len())]);
        }
        let mut req = Request::parse(
            b"POST / HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=X\r\n\r\n",
        )
        .unwrap();
        req.set_body(body);
        match req.multipart_with(&limits) {
            Ok(_) => outcomes[0] += 1,
            Err(e) if e.status() == 400 => outcomes[1] += 1,
            Err(e) => {
                assert_eq!(e.status(), 413, "{e}");
                outcomes[2] += 1;
            }
        }
    }
    assert!(
        outcomes.iter().all(|&n| n > 0),
        "every outcome was reached: {outcomes:?}"
    );
}
