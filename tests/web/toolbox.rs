//! Tornado's request-handler toolbox over real sockets (issue 26): application state and
//! request extensions, `current_user` and `authenticated`, every error through one error
//! page, arguments, signed cookies read and written by Tornado itself, XSRF for every
//! token source and method, cross-origin protection, and a cookie-jar login flow with
//! Python's `urllib`.

#![cfg(all(feature = "web", feature = "signed-cookies"))]

use crate::common;

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use common::http::{Client, Reply};
use common::{has_tool, require_tool, with_client};
use ioloop::http::{HttpError, IntoResponse, Request, Responder, Response};
use ioloop::web::{
    authenticated, create_signed_value, get, local_target, post, Application, CookieSecret,
    MethodRouter,
};
use ioloop::IoLoop;

/// Serves `app` on a new loop and runs `client` on a thread against it.
fn run<T: Send + 'static>(app: Application, client: impl FnOnce(u16) -> T + Send + 'static) -> T {
    let ioloop = IoLoop::new().unwrap();
    let (_server, addr): (_, SocketAddr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    with_client(&ioloop, addr, move |addr| client(addr.port()))
}

fn request(port: u16, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    Client::connect(port).request(&raw)
}

/// The error page of these tests: JSON under `/api/`, else `status|reason|log message`.
fn error_page(app: Application) -> Application {
    app.error_page(|err, req| {
        if req.path().starts_with("/api/") {
            Response::json(format!(
                r#"{{"error": "{}", "status": {}}}"#,
                err.public_reason(),
                err.status()
            ))
        } else {
            Response::text(format!(
                "page|{}|{}|{}",
                err.status(),
                err.public_reason(),
                err.log_message().unwrap_or("")
            ))
        }
    })
}

/// Runs a Python client; its stdout, or its stderr as the error (asserted by the test
/// once the server's loop is stopped).
fn python(script: &'static str, port: u16) -> Result<String, String> {
    let out = std::process::Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .output()
        .expect("python3 runs");
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

fn tornado_installed() -> bool {
    let probe = ["-c", "import tornado.web"];
    let ok = has_tool("python3", &["--version"])
        && std::process::Command::new("python3")
            .args(probe)
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        require_tool("tornado (pip install tornado)");
    }
    ok
}

struct Store {
    items: Cell<u32>,
}

#[test]
fn state_and_extensions_reach_handlers_without_a_clone_per_route() {
    struct Tenant(String);
    let app = Application::new()
        .with_state(Store {
            items: Cell::new(0),
        })
        .prepare(|req| {
            let tenant = req.header("x-tenant").unwrap_or("none").to_owned();
            req.extensions_mut().insert(Tenant(tenant));
            None
        })
        .route(
            "/count",
            post(|req: Request| async move {
                let store = req.state::<Store>();
                store.items.set(store.items.get() + 1);
                let tenant = &req.extensions().get::<Tenant>().unwrap().0;
                format!("{} {tenant}", store.items.get())
            }),
        )
        .route(
            "/callback",
            get(|req: Request, responder: Responder| {
                let n = req.state::<Store>().items.get();
                responder.send(format!("{n} {}", req.try_state::<String>().is_none()));
            }),
        );
    let replies = run(app, |port| {
        let a = request(port, "POST", "/count", &[("X-Tenant", "acme")], "");
        let b = request(port, "POST", "/count", &[], "");
        let c = request(port, "GET", "/callback", &[], "");
        [a.text(), b.text(), c.text()]
    });
    assert_eq!(replies, ["1 acme", "2 none", "2 true"]);
}

#[test]
fn every_error_goes_through_the_error_page() {
    let app = error_page(Application::new())
        .route(
            "/api/items/{id}",
            get(|req: Request| async move {
                let id: u32 = req.param("id").unwrap().parse().unwrap_or(0);
                if id != 7 {
                    return Err(HttpError::new(404)
                        .reason("No such item")
                        .log("id not in store"));
                }
                Ok("item 7")
            }),
        )
        .route(
            "/api/list",
            get(|req: Request| async move {
                let limit = req.argument_as_or("limit", 10u32)?;
                Ok::<_, HttpError>(format!("limit {limit}"))
            }),
        )
        .route(
            "/form",
            post(|req: Request| async move { req.get_argument("name") }),
        )
        .route(
            "/callback",
            get(|_req: Request, responder: Responder| responder.send(HttpError::new(409))),
        )
        .route(
            "/panic",
            get(|req: Request| async move {
                assert!(req.path().is_empty(), "a handler that panics");
                "never"
            }),
        )
        .route(
            "/upload",
            post(|req: Request| async move { req.body().len().to_string() }).body_limit(10),
        );
    let replies = run(app, |port| {
        let form = [("Content-Type", "application/x-www-form-urlencoded")];
        let pairs = [
            request(port, "GET", "/api/items/7", &[], ""),
            request(port, "GET", "/api/items/8", &[], ""),
            request(port, "GET", "/api/nowhere", &[], ""),
            request(port, "DELETE", "/api/items/7", &[], ""),
            request(port, "GET", "/api/list?limit=-1", &[], ""),
            request(port, "GET", "/api/list?limit=3", &[], ""),
            request(port, "GET", "/api/list", &[], ""),
            request(port, "POST", "/form", &form, "other=1"),
            request(port, "POST", "/form", &form, "name=+a%01b+"),
            request(port, "GET", "/callback", &[], ""),
            request(port, "GET", "/panic", &[], ""),
            request(port, "POST", "/upload", &[], "01234567890123456789"),
            request(port, "POST", "/upload", &[], "0123"),
            request(port, "GET", "/nowhere", &[], ""),
            // A chunked body grows over the route's limit while it is read.
            Client::connect(port).request(
                "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                 14\r\n01234567890123456789\r\n0\r\n\r\n",
            ),
        ];
        pairs.map(|r| (r.status, r.text(), r.header("allow").map(str::to_owned)))
    });
    let json = |s: &str, code| format!(r#"{{"error": "{s}", "status": {code}}}"#);
    assert_eq!(replies[0].1, "item 7");
    assert_eq!(
        (replies[1].0, replies[1].1.clone()),
        (404, json("No such item", 404))
    );
    assert_eq!(
        (replies[2].0, replies[2].1.clone()),
        (404, json("Not Found", 404))
    );
    assert_eq!(
        (replies[3].0, replies[3].1.clone(), replies[3].2.as_deref()),
        (405, json("Method Not Allowed", 405), Some("GET, HEAD"))
    );
    assert_eq!(replies[4].0, 400);
    assert_eq!(replies[4].1, json("Invalid argument limit", 400));
    assert_eq!(replies[5].1, "limit 3");
    assert_eq!(replies[6].1, "limit 10");
    assert_eq!(
        (replies[7].0, replies[7].1.as_str()),
        (400, "page|400|Missing argument name|")
    );
    assert_eq!((replies[8].0, replies[8].1.as_str()), (200, "a b"));
    assert_eq!(
        (replies[9].0, replies[9].1.as_str()),
        (409, "page|409|Conflict|")
    );
    assert_eq!(
        (replies[10].0, replies[10].1.as_str()),
        (500, "page|500|Internal Server Error|")
    );
    assert_eq!(
        (replies[11].0, replies[11].1.as_str()),
        (413, "page|413|Content Too Large|")
    );
    assert_eq!(replies[12].1, "4");
    assert_eq!(
        (replies[13].0, replies[13].1.as_str()),
        (404, "page|404|Not Found|")
    );
    assert_eq!(
        (replies[14].0, replies[14].1.as_str()),
        (413, "page|413|Content Too Large|")
    );
}

#[test]
fn without_an_error_page_errors_are_short_plain_text() {
    let app = Application::new().route(
        "/x",
        get(|req: Request| async move { req.argument_as::<u32>("n").map(|n| n.to_string()) }),
    );
    let reply = run(app, |port| request(port, "GET", "/x", &[], ""));
    assert_eq!(
        (reply.status, reply.text()),
        (400, "400 Missing argument n\n".to_owned())
    );
}

#[derive(Debug)]
struct User(String);

fn signed_in_app(secret: &str) -> Application {
    error_page(Application::new())
        .cookie_secret(secret)
        .current_user(|req| req.get_signed_cookie("user", 31).map(User))
        .login_url("/login")
        .route(
            "/api/items",
            MethodRouter::default()
                .on(
                    "GET",
                    authenticated(|req: Request| async move {
                        format!("items of {}", req.current_user::<User>().unwrap().0)
                    }),
                )
                .on(
                    "POST",
                    authenticated(|_req: Request, responder: Responder| {
                        responder.send((201, "created"))
                    }),
                ),
        )
}

#[test]
fn authenticated_redirects_anonymous_get_and_head_and_refuses_other_methods() {
    let secret = CookieSecret::new("s3cret");
    let cookie = format!(
        "user={}",
        create_signed_value(&secret, "user", b"alice", SystemTime::now())
    );
    let replies = run(signed_in_app("s3cret"), move |port| {
        let get = request(port, "GET", "/api/items?limit=5&x=%2F", &[], "");
        let head = request(port, "HEAD", "/api/items", &[], "");
        let post = request(port, "POST", "/api/items", &[], "");
        let signed_get = request(port, "GET", "/api/items", &[("Cookie", &cookie)], "");
        let signed_post = request(port, "POST", "/api/items", &[("Cookie", &cookie)], "");
        let forged = request(port, "GET", "/api/items", &[("Cookie", "user=alice")], "");
        [get, head, post, signed_get, signed_post, forged]
    });
    let location = |r: &Reply| r.header("location").map(str::to_owned);
    assert_eq!(replies[0].status, 302);
    assert_eq!(
        location(&replies[0]).as_deref(),
        Some("/login?next=%2Fapi%2Fitems%3Flimit%3D5%26x%3D%252F")
    );
    assert_eq!(
        (replies[1].status, location(&replies[1]).as_deref()),
        (302, Some("/login?next=%2Fapi%2Fitems"))
    );
    assert_eq!(
        (replies[2].status, replies[2].text()),
        (403, r#"{"error": "Forbidden", "status": 403}"#.to_owned())
    );
    assert_eq!(
        (replies[3].status, replies[3].text()),
        (200, "items of alice".to_owned())
    );
    assert_eq!(
        (replies[4].status, replies[4].text()),
        (201, "created".to_owned())
    );
    assert_eq!(replies[5].status, 302, "an unsigned cookie is no user");
}

// `.authenticated()` on a route: every method's handler is behind the check (those added
// after the call too); a method the route lacks is still 405, signed in or not.
#[test]
fn a_route_marked_authenticated_covers_every_method() {
    let secret = CookieSecret::new("s3cret");
    let cookie = format!(
        "user={}",
        create_signed_value(&secret, "user", b"alice", SystemTime::now())
    );
    let whoami = |req: Request| async move {
        format!(
            "{} by {}",
            req.method(),
            req.current_user::<User>().unwrap().0
        )
    };
    let app = error_page(Application::new())
        .cookie_secret("s3cret")
        .current_user(|req| req.get_signed_cookie("user", 31).map(User))
        .login_url("/login")
        .route("/api/things", get(whoami).authenticated().put(whoami))
        .route("/open", get(|_req| async { "open" }));
    let replies = run(app, move |port| {
        let anonymous = ["GET", "HEAD", "PUT", "DELETE"]
            .map(|method| request(port, method, "/api/things?page=2", &[], ""));
        let signed = ["GET", "PUT", "DELETE"]
            .map(|method| request(port, method, "/api/things", &[("Cookie", &cookie)], ""));
        let open = request(port, "GET", "/open", &[], "");
        (anonymous, signed, open)
    });
    let (anonymous, signed, open) = replies;
    let summary = |r: &Reply| (r.status, r.header("location").map(str::to_owned), r.text());
    assert_eq!(
        summary(&anonymous[0]),
        (
            302,
            Some("/login?next=%2Fapi%2Fthings%3Fpage%3D2".to_owned()),
            String::new()
        )
    );
    assert_eq!(anonymous[1].status, 302);
    assert_eq!(
        summary(&anonymous[2]),
        (
            403,
            None,
            r#"{"error": "Forbidden", "status": 403}"#.to_owned()
        )
    );
    assert_eq!(anonymous[3].status, 405);
    assert_eq!(signed[0].text(), "GET by alice");
    assert_eq!(signed[1].text(), "PUT by alice");
    assert_eq!(signed[2].status, 405);
    assert_eq!(open.text(), "open");
}

/// The `_xsrf` cookie and a page's token from `GET /form`.
fn xsrf_pair(port: u16) -> (String, String) {
    let page = request(port, "GET", "/form", &[], "");
    let cookie = page
        .header("set-cookie")
        .expect("an _xsrf cookie")
        .to_owned();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let text = page.text();
    let token = text
        .split("value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    (cookie, token)
}

fn xsrf_app() -> Application {
    let any = |req: Request| async move { format!("ok {}", req.method()) };
    error_page(Application::new())
        .xsrf_cookies(true)
        .route(
            "/form",
            get(|req: Request| async move { req.xsrf_form_html() }),
        )
        .route("/thing", post(any).put(any).patch(any).delete(any).get(any))
        .route("/hook", post(any).xsrf_exempt())
}

#[test]
fn xsrf_is_checked_for_every_token_source_and_unsafe_method() {
    let outcome = run(xsrf_app(), |port| {
        let (cookie, token) = xsrf_pair(port);
        let (other_cookie, _) = xsrf_pair(port);
        let mut results = Vec::new();
        // A page of a request with the cookie sets none, and masks the token anew.
        let again = request(port, "GET", "/form", &[("Cookie", &cookie)], "");
        results.push(format!("{:?}", again.header("set-cookie")));
        results.push((again.text() != xsrf_pair(port).1).to_string());
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            let form = format!("_xsrf={}", token.replace('|', "%7C"));
            let with = |headers: &[(&str, &str)], body: &str| {
                let r = request(port, method, "/thing", headers, body);
                format!("{method} {} {}", r.status, r.text())
            };
            let urlencoded = ("Content-Type", "application/x-www-form-urlencoded");
            results.push(with(&[("Cookie", &cookie), urlencoded], &form));
            results.push(with(&[("Cookie", &cookie), ("X-XSRFToken", &token)], ""));
            results.push(with(&[("Cookie", &cookie), ("X-CSRFToken", &token)], ""));
            results.push(with(&[("Cookie", &cookie)], ""));
            results.push(with(&[("Cookie", &cookie), ("X-XSRFToken", "garbage")], ""));
            results.push(with(
                &[("Cookie", &other_cookie), ("X-XSRFToken", &token)],
                "",
            ));
            results.push(with(&[("X-XSRFToken", &token)], ""));
        }
        let get = request(port, "GET", "/thing", &[], "");
        results.push(format!("GET {}", get.status));
        let hook = request(port, "POST", "/hook", &[], "");
        results.push(format!("hook {}", hook.status));
        results
    });
    assert_eq!(outcome[0], "None");
    assert_eq!(outcome[1], "true");
    for (i, method) in ["POST", "PUT", "PATCH", "DELETE"].iter().enumerate() {
        let got = &outcome[2 + i * 7..2 + (i + 1) * 7];
        let refused = |why: &str| format!("{method} 403 page|403|Forbidden|{why}");
        assert_eq!(
            got,
            [
                format!("{method} 200 ok {method}"),
                format!("{method} 200 ok {method}"),
                format!("{method} 200 ok {method}"),
                refused("'_xsrf' argument missing from POST"),
                refused("'_xsrf' argument has invalid format"),
                refused("XSRF cookie does not match POST argument"),
                refused("XSRF cookie does not match POST argument"),
            ]
        );
    }
    assert_eq!(outcome[30..], ["GET 200", "hook 200"]);
}

#[test]
fn cross_origin_protection_follows_sec_fetch_site_and_origin() {
    let app = Application::new()
        .cross_origin_protection(["https://trusted.example"])
        .route("/x", post(|_req| async { "ok" }).get(|_req| async { "ok" }));
    let statuses = run(app, |port| {
        let own = format!("http://127.0.0.1:{port}");
        let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("POST", vec![]),
            ("POST", vec![("Sec-Fetch-Site", "same-origin")]),
            ("POST", vec![("Sec-Fetch-Site", "none")]),
            ("POST", vec![("Sec-Fetch-Site", "cross-site")]),
            (
                "POST",
                vec![
                    ("Sec-Fetch-Site", "cross-site"),
                    ("Origin", "https://trusted.example"),
                ],
            ),
            (
                "POST",
                vec![
                    ("Sec-Fetch-Site", "cross-site"),
                    ("Origin", "https://evil.example"),
                ],
            ),
            (
                "POST",
                vec![
                    ("Sec-Fetch-Site", "same-site"),
                    ("Origin", "https://sub.example"),
                ],
            ),
            ("POST", vec![("Origin", own.as_str())]),
            ("POST", vec![("Origin", "http://evil.example")]),
            ("POST", vec![("Origin", "https://trusted.example")]),
            ("GET", vec![("Sec-Fetch-Site", "cross-site")]),
        ];
        cases
            .iter()
            .map(|(method, headers)| request(port, method, "/x", headers, "").status)
            .collect::<Vec<_>>()
    });
    assert_eq!(
        statuses,
        [200, 200, 200, 403, 200, 403, 403, 200, 403, 200, 200]
    );
}

#[test]
fn local_targets_exclude_other_hosts() {
    for good in ["/", "/a/b?c=d", "/a//b"] {
        assert_eq!(local_target(good), Some(good));
    }
    for bad in [
        "",
        "a",
        "//evil",
        "/\\evil",
        "http://evil",
        "/\n/evil",
        "/ /evil",
        "\\\\evil",
    ] {
        assert_eq!(local_target(bad), None, "{bad:?}");
    }
}

// Tornado reads the cookies this crate signs, and this crate reads Tornado's: the same
// secrets (rotated: key 1 still read, key 2 signing), names, values and expiry.
#[test]
fn signed_cookies_interoperate_with_tornado_both_ways() {
    if !tornado_installed() {
        return;
    }
    let app = Application::new()
        .cookie_secret(CookieSecret::versioned([(1, "k1"), (2, "k2")], 2))
        .route(
            "/set",
            get(|req: Request| async move {
                let name = req.get_argument("name")?;
                let cookie = req.signed_cookie("user", &name)?.http_only();
                Ok::<_, HttpError>(Response::text("set").with_cookie(&cookie)?)
            }),
        )
        .route(
            "/who",
            get(|req: Request| async move {
                req.get_signed_cookie("user", 31)
                    .unwrap_or_else(|| "anonymous".to_owned())
                    .into_response()
            }),
        );
    let script = r#"
import sys, time, http.client
from tornado.web import create_signed_value as create, decode_signed_value as decode
port = int(sys.argv[1])
keys = {1: "k1", 2: "k2"}
def get(path, cookie=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    r = c.getresponse()
    return r, r.read().decode()
r, _ = get("/set?name=al%C3%AFce")
value = r.getheader("Set-Cookie").split(";")[0].split("=", 1)[1]
assert "HttpOnly" in r.getheader("Set-Cookie")
assert value.startswith("2|1:2|"), value
assert decode(keys, "user", value) == "alïce".encode(), value
assert decode({2: "k2"}, "user", value) == "alïce".encode()
assert decode(keys, "admin", value) is None
assert decode(keys, "user", value, clock=lambda: time.time() + 32 * 86400) is None
def who(v):
    return get("/who", "user=" + (v.decode() if isinstance(v, bytes) else v))[1]
assert who(value) == "alïce"
assert who(create(keys, "user", "bob", key_version=2)) == "bob"
assert who(create(keys, "user", "carol", key_version=1)) == "carol"
assert who(create({3: "k3"}, "user", "dan", key_version=3)) == "anonymous"
assert who(create("k2", "user", "erin")) == "anonymous"
old = create(keys, "user", "frank", key_version=2, clock=lambda: time.time() - 32 * 86400)
assert who(old) == "anonymous"
recent = create(keys, "user", "gina", key_version=2, clock=lambda: time.time() - 30 * 86400)
assert who(recent) == "gina"
good = create(keys, "user", "hal", key_version=2).decode()
assert who(good[:-1] + ("0" if good[-1] != "0" else "1")) == "anonymous"
assert who(good.replace("4:aGFs", "4:ZXZl")) == "anonymous"  # base64 of hal, eve
assert who(create(keys, "admin", "ivy", key_version=2)) == "anonymous"
print("ok")
"#;
    let out = run(app, move |port| python(script, port));
    assert_eq!(out.as_deref(), Ok("ok"));
}

// The login flow a browser makes, with Python's cookie jar: the form's XSRF token, a
// signed HttpOnly cookie, `next` followed only when local, and the cookie cleared.
#[test]
fn a_cookie_jar_logs_in_through_the_xsrf_form_and_out() {
    if !has_tool("python3", &["--version"]) {
        require_tool("python3");
        return;
    }
    let app = signed_in_app("s3cret")
        .xsrf_cookies(true)
        .route(
            "/login",
            get(|req: Request| async move { req.xsrf_form_html() }).post(
                |req: Request| async move {
                    let name = req.get_argument("name")?;
                    if name.is_empty() {
                        return Err(HttpError::new(400).reason("empty name"));
                    }
                    let next = req.get_argument_or("next", "/")?;
                    let target = local_target(&next).unwrap_or("/").to_owned();
                    let cookie = req.signed_cookie("user", &name)?.http_only();
                    Ok(Response::redirect(target, false).with_cookie(&cookie)?)
                },
            ),
        )
        .route(
            "/logout",
            get(|_req: Request| async move { Response::redirect("/", false).clear_cookie("user") }),
        )
        .route(
            "/",
            get(|req: Request| async move {
                let who = req.current_user::<User>().map_or("anonymous", |u| &u.0);
                format!("home of {who}")
            }),
        );
    let script = r#"
import sys, re, urllib.request, urllib.parse, urllib.error, http.cookiejar
port = int(sys.argv[1])
base = "http://127.0.0.1:%d" % port
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
r = opener.open(base + "/api/items?limit=2")
assert r.geturl() == base + "/login?next=%2Fapi%2Fitems%3Flimit%3D2", r.geturl()
token = re.search(r'name="_xsrf" value="([^"]+)"', r.read().decode()).group(1)
def post(fields):
    data = urllib.parse.urlencode(fields).encode()
    try:
        return opener.open(base + "/login", data)
    except urllib.error.HTTPError as e:
        return e
assert post({"name": "zed", "next": "/"}).code == 403
assert post({"_xsrf": "2|00000000|" + "0" * 32 + "|1", "name": "zed"}).code == 403
assert post({"_xsrf": token, "name": ""}).code == 400
r = post({"_xsrf": token, "name": "alice", "next": "/api/items?limit=2"})
assert r.code == 200 and r.read().decode() == "items of alice", r.geturl()
user = [c for c in jar if c.name == "user"][0]
assert user.has_nonstandard_attr("HttpOnly"), user
r = post({"_xsrf": token, "name": "mallory", "next": "//evil.example/"})
assert r.geturl() == base + "/" and r.read().decode() == "home of mallory", r.geturl()
r = opener.open(base + "/logout")
assert r.read().decode() == "home of anonymous"
assert not [c for c in jar if c.name == "user"]
print("ok")
"#;
    let out = run(app, move |port| python(script, port));
    assert_eq!(out.as_deref(), Ok("ok"));
}

#[test]
fn a_signed_cookie_past_its_age_is_refused_by_the_server() {
    // Made 32 days ago with this crate's own function: no waiting, no clock to fake.
    let secret = CookieSecret::new("s3cret");
    let old = SystemTime::now() - Duration::from_secs(32 * 86_400);
    let stale = format!("user={}", create_signed_value(&secret, "user", b"old", old));
    let recent = SystemTime::now() - Duration::from_secs(30 * 86_400);
    let fresh = format!(
        "user={}",
        create_signed_value(&secret, "user", b"new", recent)
    );
    let replies = run(signed_in_app("s3cret"), move |port| {
        [
            request(port, "GET", "/api/items", &[("Cookie", &stale)], "").status,
            request(port, "GET", "/api/items", &[("Cookie", &fresh)], "").status,
        ]
    });
    assert_eq!(replies, [302, 200]);
}
