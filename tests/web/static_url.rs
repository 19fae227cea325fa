//! `StaticFiles::static_url`: Tornado's content-hash version (the hex SHA-512 of the
//! file, checked against Python's hashlib), cached until the file changes, none for a
//! file over the size limit; and the ten-year `Cache-Control` of versioned requests.

#![cfg(all(feature = "web", target_os = "linux"))]

use crate::common;

use std::process::Command;
use std::time::{Duration, SystemTime};

use common::http::Client;
use common::{has_tool, require_tool, with_client};
use ioloop::web::{get, Application, StaticFiles, MAX_VERSION_CONTENT_SIZE};

fn sha512_by_python(path: &std::path::Path) -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha512(open(sys.argv[1],'rb').read()).hexdigest())",
        ])
        .arg(path)
        .output()
        .ok()?;
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

fn set_mtime(path: &std::path::Path, at: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

#[test]
fn static_url_carries_the_sha512_version_cached_until_the_file_changes() {
    if !has_tool("python3", &["--version"]) {
        return require_tool("python3");
    }
    let dir = std::env::temp_dir().join(format!("ioloop-static-url-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("css")).unwrap();
    let css = dir.join("css/app.css");
    std::fs::write(&css, "body { color: red; }\n").unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    set_mtime(&css, t0);
    let files = StaticFiles::new(&dir);

    let first = sha512_by_python(&css).unwrap();
    assert_eq!(first.len(), 128);
    assert_eq!(
        files.static_url("css/app.css"),
        format!("/static/css/app.css?v={first}")
    );
    assert_eq!(
        files
            .clone()
            .url_prefix("/assets")
            .static_url("/css/app.css"),
        format!("/assets/css/app.css?v={first}")
    );

    // Same size and modification time: the cached version, without reading the file.
    std::fs::write(&css, "body { color: tan; }\n").unwrap();
    set_mtime(&css, t0);
    assert_eq!(
        files.static_url("css/app.css"),
        format!("/static/css/app.css?v={first}")
    );
    // Touched: hashed again.
    set_mtime(&css, t0 + Duration::from_secs(1));
    let second = sha512_by_python(&css).unwrap();
    assert_ne!(first, second);
    assert_eq!(
        files.static_url("css/app.css"),
        format!("/static/css/app.css?v={second}")
    );

    // Over the size limit, missing, outside the folder: no version.
    let big = dir.join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(MAX_VERSION_CONTENT_SIZE + 1)
        .unwrap();
    assert_eq!(files.static_url("big.bin"), "/static/big.bin");
    assert_eq!(files.static_url("missing.js"), "/static/missing.js");
    assert_eq!(files.static_url("../etc/passwd"), "/static/../etc/passwd");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn versioned_requests_are_cached_for_ten_years_and_others_not() {
    let dir = std::env::temp_dir().join(format!("ioloop-static-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.js"), "console.log(1);\n").unwrap();
    let files = StaticFiles::new(&dir);
    let url = files.static_url("app.js");
    let ioloop = ioloop::IoLoop::new().unwrap();
    let (_server, addr) = Application::new()
        .route("/static/{*path}", get(files))
        .bind(&ioloop, "127.0.0.1:0")
        .unwrap();
    let replies = with_client(&ioloop, addr, move |addr| {
        let mut client = Client::connect(addr.port());
        let mut get =
            |target: &str| client.request(&format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"));
        [
            get(&url),
            get("/static/app.js"),
            get("/static/app.js?v=old"),
        ]
    });
    let [versioned, plain, any_version] = replies;
    assert_eq!(versioned.status, 200);
    assert_eq!(versioned.header("cache-control"), Some("max-age=315360000"));
    assert_eq!(plain.header("cache-control"), None);
    assert_eq!(
        any_version.header("cache-control"),
        Some("max-age=315360000")
    );
    std::fs::remove_dir_all(&dir).ok();
}
