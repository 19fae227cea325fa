//! `examples/dashboard.rs` against its contract (issue 26), driven from outside by
//! clients no one here wrote: Python's `urllib` with `http.cookiejar` through the whole
//! login/XSRF/API/proxy flow, `curl` with a cookie jar, Python's `websockets` on `/live`,
//! headless Chromium signing in through the form, and SIGTERM with a WebSocket open and a
//! slow proxy fetch in flight. The Python side is `tests/clients/dashboard.py` and
//! `tests/clients/chromium_dashboard.py`. A missing tool prints "skipped: X not
//! installed", unless `IOLOOP_REQUIRE_CLIENTS=1`.

#![cfg(all(
    feature = "json",
    feature = "templates",
    feature = "signed-cookies",
    feature = "http-client",
    feature = "websocket",
    feature = "signals",
    target_os = "linux"
))]

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use common::example::Example;
use common::http::{parse_reply, Reply};
use common::{chromium, has_tool, python_has, require_tool};

/// Runs `tests/clients/dashboard.py PORT CASE ARGS..` and asserts it printed "ok".
fn python_case(port: u16, case: &str, args: &[&str]) {
    let port = port.to_string();
    let mut all = vec![port.as_str(), case];
    all.extend_from_slice(args);
    common::python_client_ok("dashboard.py", &all);
}

fn python_ok() -> bool {
    let ok = has_tool("python3", &["--version"]);
    if !ok {
        require_tool("python3");
    }
    ok
}

fn websockets_ok() -> bool {
    let ok = python_ok() && python_has("websockets.sync.client");
    if !ok {
        require_tool("python3 websockets");
    }
    ok
}

// Python's urllib and cookie jar: the home page and `_xsrf`; `next` escaped on the login
// page; 403 without XSRF, 400 for an empty name, the signed HttpOnly `user` cookie and a
// redirect to a local `next` only; the API's login redirect and 403; items listed, added
// (201, Location) and refused (400, 415, 403, 405, 404 as JSON); the proxy through the
// HTTP client to a local server, 502 for a closed port, 400 without `url`; the logout.
#[test]
fn python_with_a_cookie_jar_goes_through_login_xsrf_api_and_proxy() {
    if !python_ok() {
        return;
    }
    let app = Example::start("dashboard", &["0"]);
    python_case(app.port, "flow", &[]);
}

/// A cookie jar file curl reads and writes.
struct Curl {
    jar: PathBuf,
    base: String,
}

impl Curl {
    fn new(port: u16) -> Curl {
        let jar = std::env::temp_dir().join(format!(
            "ioloop-dashboard-curl-{}-{port}.jar",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&jar);
        Curl {
            jar,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// `curl -s -i -c JAR -b JAR ARGS.. URL`: the response as curl received it.
    fn run(&self, path: &str, args: &[&str]) -> Reply {
        let jar = self.jar.to_str().unwrap();
        let url = format!("{}{path}", self.base);
        let out = Command::new("curl")
            .args(["-s", "-i", "--max-time", "30", "-c", jar, "-b", jar])
            .args(args)
            .arg(&url)
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "curl {args:?} {url}: {out:?}");
        let (reply, _) = parse_reply(&out.stdout, args.contains(&"-I"), true)
            .unwrap_or_else(|| panic!("no whole response from curl: {out:?}"));
        reply
    }

    /// The value of `name` in the jar (`#HttpOnly_` lines included), and whether it is
    /// marked HttpOnly there.
    fn cookie(&self, name: &str) -> Option<(String, bool)> {
        let text = std::fs::read_to_string(&self.jar).ok()?;
        text.lines().find_map(|line| {
            let http_only = line.starts_with("#HttpOnly_");
            let fields: Vec<&str> = line.split('\t').collect();
            (fields.len() == 7 && fields[5] == name && (http_only || !line.starts_with('#')))
                .then(|| (fields[6].to_owned(), http_only))
        })
    }
}

impl Drop for Curl {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.jar);
    }
}

fn json(reply: &Reply) -> serde_json::Value {
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=UTF-8"),
        "{reply:?}"
    );
    serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.text()))
}

// curl and its cookie jar: the login form's `_xsrf`, a signed HttpOnly `user` cookie, the
// API with `X-XSRFToken`, and the logout that empties the jar.
#[test]
fn curl_with_a_cookie_jar_logs_in_and_uses_the_api() {
    if !has_tool("curl", &["--version"]) {
        return require_tool("curl");
    }
    let app = Example::start("dashboard", &["0"]);
    let curl = Curl::new(app.port);
    let anonymous = curl.run("/api/items?limit=1", &[]);
    assert_eq!(anonymous.status, 302);
    assert_eq!(
        anonymous.header("location"),
        Some("/login?next=%2Fapi%2Fitems%3Flimit%3D1")
    );
    let form = curl.run("/login?next=%2Fapi%2Fitems%3Flimit%3D1", &[]);
    assert_eq!(form.status, 200);
    let (xsrf, xsrf_http_only) = curl.cookie("_xsrf").expect("an _xsrf cookie");
    assert!(!xsrf_http_only, "scripts read _xsrf for X-XSRFToken");
    let refused = curl.run("/login", &["-d", "name=curl"]);
    assert_eq!(refused.status, 403);
    let field = format!("_xsrf={xsrf}");
    let empty = curl.run("/login", &["--data-urlencode", &field, "-d", "name="]);
    assert_eq!(empty.status, 400);
    let login = curl.run(
        "/login",
        &[
            "--data-urlencode",
            &field,
            "-d",
            "name=curl",
            "--data-urlencode",
            "next=/api/items?limit=1",
        ],
    );
    assert_eq!(login.status, 302, "{login:?}");
    assert_eq!(login.header("location"), Some("/api/items?limit=1"));
    let (user, http_only) = curl.cookie("user").expect("a user cookie");
    assert!(http_only && user.starts_with("2|1:0|"), "{user}");

    let header = format!("X-XSRFToken: {xsrf}");
    let post = |body: &str, content_type: &str| {
        let content_type = format!("Content-Type: {content_type}");
        curl.run(
            "/api/items",
            &["-H", &header, "-H", &content_type, "--data-binary", body],
        )
    };
    let created = post(r#"{"name": "apple", "qty": 3}"#, "application/json");
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.header("location"), Some("/api/items/1"));
    assert_eq!(
        json(&created),
        serde_json::json!({"id": 1, "name": "apple", "qty": 3})
    );
    post(r#"{"name": "pear", "qty": 5}"#, "application/json");
    let bad = post(r#"{"name": "pear""#, "application/json");
    assert_eq!(
        (bad.status, json(&bad)["status"].as_u64()),
        (400, Some(400))
    );
    let unnamed = post(r#"{"name": "", "qty": 5}"#, "application/json");
    assert_eq!(unnamed.status, 400);
    let form_body = post("name=pear&qty=5", "application/x-www-form-urlencoded");
    assert_eq!(form_body.status, 415);
    let no_xsrf = curl.run(
        "/api/items",
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"name": "fig", "qty": 1}"#,
        ],
    );
    assert_eq!(
        (no_xsrf.status, json(&no_xsrf)),
        (
            403,
            serde_json::json!({"error": "Forbidden", "status": 403})
        )
    );
    let delete = curl.run("/api/items", &["-X", "DELETE", "-H", &header]);
    assert_eq!(delete.status, 405);
    let listed = curl.run("/api/items?limit=1", &[]);
    assert_eq!(
        json(&listed),
        serde_json::json!({"items": [{"id": 2, "name": "pear", "qty": 5}], "total": 2})
    );
    let negative = curl.run("/api/items?limit=-3", &[]);
    assert_eq!(negative.status, 400);
    let head = curl.run("/api/items", &["-I"]);
    assert_eq!(head.status, 200);

    let logout = curl.run("/logout", &[]);
    assert_eq!((logout.status, logout.header("location")), (302, Some("/")));
    assert_eq!(curl.cookie("user"), None, "the logout clears the cookie");
    assert_eq!(curl.run("/api/items", &[]).status, 302);
}

// Python's `websockets` on /live: stats with exactly `uptime`, `clients` and `requests`,
// about every 500 ms, counting both open pages; pages from other origins get 403.
#[test]
fn python_websockets_get_live_stats_and_other_origins_are_refused() {
    if !websockets_ok() {
        return;
    }
    let app = Example::start("dashboard", &["0"]);
    python_case(app.port, "live", &[]);
}

// Headless Chromium: the login form, the home page with the name as text, live stats that
// change, and an item added through the page's script (JSON with X-XSRFToken).
#[test]
fn chromium_signs_in_through_the_form_and_shows_live_stats() {
    let Some(browser) = chromium() else {
        return require_tool("chromium");
    };
    if !websockets_ok() {
        return;
    }
    let app = Example::start("dashboard", &["0"]);
    let url = format!("http://127.0.0.1:{}/", app.port);
    common::python_client_ok("chromium_dashboard.py", &[browser, &url]);
}

// SIGTERM with a live WebSocket and a proxy fetch waiting on a slow upstream: the
// WebSocket gets 1001, new connections are refused, the fetch's answer arrives whole once
// the upstream answers, and the process exits with status 0.
#[test]
fn sigterm_closes_live_pages_with_1001_finishes_a_slow_fetch_and_exits_0() {
    if !websockets_ok() {
        return;
    }
    let app = Example::start("dashboard", &["0"]);
    python_case(app.port, "sigterm", &[&app.pid().to_string()]);
    let status = app.wait_exit();
    assert!(status.success(), "{status:?}");
}

// SIGINT with nothing in flight: a prompt exit with status 0.
#[test]
fn sigint_with_nothing_in_flight_exits_0() {
    let app = Example::start("dashboard", &["0"]);
    let status = app.signal_and_wait(rustix::process::Signal::INT);
    assert!(status.success(), "{status:?}");
}
