//! The toolbox's parts work together (issue 26): the typed errors of JSON, forms and
//! templates convert into `HttpError` and go through the application's error page; form
//! arguments read multipart text fields; templates see `xsrf_form_html()` and
//! `current_user`, and the form they render passes the XSRF check.

#![cfg(all(
    feature = "json",
    feature = "templates",
    feature = "signed-cookies",
    target_os = "linux"
))]

use crate::common;

use std::net::SocketAddr;
use std::path::PathBuf;

use common::http::{Client, Reply};
use common::with_client;
use ioloop::http::{HttpError, MultipartLimits, Request};
use ioloop::web::minijinja::context;
use ioloop::web::{get, post, Application, Json, Templates};
use ioloop::IoLoop;

fn run<T: Send + 'static>(app: Application, client: impl FnOnce(u16) -> T + Send + 'static) -> T {
    let ioloop = IoLoop::new().unwrap();
    let (_server, addr): (_, SocketAddr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    with_client(&ioloop, addr, move |addr| client(addr.port()))
}

fn send(port: u16, head: &str, body: &str) -> Reply {
    Client::connect(port).request(&format!(
        "{head}\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn templates_folder(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ioloop-glue-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

const FORM: &str = "--B\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n  hello  \r\n\
    --B\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\n\r\nbody\r\n--B--\r\n";

#[test]
fn json_form_and_template_errors_go_through_the_error_page() {
    let dir = templates_folder("errors", &[("broken.html", "{% if %}")]);
    let templates = Templates::new(&dir);
    let app = Application::new()
        .error_page(|err, _req| {
            ioloop::http::Response::text(format!("page|{}|{}", err.status(), err.public_reason()))
        })
        .route(
            "/json",
            post(|req: Request| async move {
                let value: serde_json::Value = req.json()?;
                Ok::<_, HttpError>(Json(value))
            }),
        )
        .route(
            "/json-plain",
            post(|req: Request| async move { req.json::<serde_json::Value>().map(Json) }),
        )
        .route(
            "/form",
            post(|req: Request| async move {
                let title = req.get_argument("title")?;
                let form = req.multipart_with(&MultipartLimits {
                    max_file_size: 2,
                    ..MultipartLimits::default()
                });
                let files = form.map(|f| f.files().len())?;
                Ok::<_, HttpError>(format!("{title} {files}"))
            }),
        )
        .route(
            "/broken",
            get(move |req: Request| {
                let page = templates.render(&req, "broken.html", ());
                async move { page }
            }),
        );
    let replies = run(app, |port| {
        let multipart = "POST /form HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=B";
        [
            send(
                port,
                "POST /json HTTP/1.1\r\nContent-Type: text/plain",
                "{}",
            ),
            send(
                port,
                "POST /json HTTP/1.1\r\nContent-Type: application/json",
                "{",
            ),
            send(
                port,
                "POST /json HTTP/1.1\r\nContent-Type: application/json",
                "[1]",
            ),
            send(
                port,
                "POST /json-plain HTTP/1.1\r\nContent-Type: text/plain",
                "{}",
            ),
            send(port, multipart, FORM),
            send(port, multipart, "--B\r\nbroken"),
            send(port, "GET /broken HTTP/1.1", ""),
        ]
        .map(|r| (r.status, r.text()))
    });
    // RFC 9110 §15.5.16: 415 for a body that is not JSON; the page replaces the default.
    assert_eq!(replies[0].0, 415);
    assert!(replies[0].1.starts_with("page|415|"), "{}", replies[0].1);
    assert_eq!(replies[1].0, 400);
    assert!(replies[1].1.starts_with("page|400|"), "{}", replies[1].1);
    assert_eq!(replies[2], (200, "[1]".to_owned()));
    // A `JsonError` returned as is (not converted) also goes through the page.
    assert_eq!(replies[3].0, 415);
    assert!(replies[3].1.starts_with("page|415|"), "{}", replies[3].1);
    // The title comes from a multipart text field; the 2-byte file limit makes a 413.
    assert_eq!(replies[4].0, 413, "{}", replies[4].1);
    assert!(replies[4].1.starts_with("page|413|"), "{}", replies[4].1);
    assert_eq!(replies[5].0, 400);
    assert!(replies[5].1.starts_with("page|400|"), "{}", replies[5].1);
    // A template error is a 500 whose detail stays in the log.
    assert_eq!(
        replies[6],
        (500, "page|500|Internal Server Error".to_owned())
    );
}

#[test]
fn a_multipart_text_field_is_an_argument() {
    let app = Application::new().route(
        "/form",
        post(|req: Request| async move {
            let title = req.get_argument("title")?;
            let files = req.files().map_err(HttpError::from)?.len();
            Ok::<_, HttpError>(format!("{title}|{files}"))
        }),
    );
    let reply = run(app, |port| {
        send(
            port,
            "POST /form HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=B",
            FORM,
        )
    });
    assert_eq!((reply.status, reply.text().as_str()), (200, "hello|1"));
}

#[test]
fn templates_render_the_xsrf_field_and_the_current_user_and_the_form_posts() {
    let dir = templates_folder(
        "xsrf",
        &[(
            "form.html",
            "<form method=post>{{ xsrf_form_html() }}</form>\
             {% if current_user %}as {{ current_user }}{% else %}anonymous{% endif %} at {{ request_path }}",
        )],
    );
    let templates = Templates::new(&dir).current_user::<String>();
    let app = Application::new()
        .xsrf_cookies(true)
        .current_user(|req| req.cookie("name").map(|name| format!("<{name}>")))
        .route(
            "/form",
            get(move |req: Request| {
                let page = templates.render(&req, "form.html", context! {});
                async move { page }
            })
            .post(|req: Request| async move { req.get_argument("_xsrf").map(|_| "posted") }),
        );
    let (page, named, posted, refused) = run(app, |port| {
        let page = send(port, "GET /form HTTP/1.1", "");
        let named = send(port, "GET /form HTTP/1.1\r\nCookie: name=ada", "");
        let cookie = page
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let text = page.text();
        let token = text
            .split("value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let posted = send(
            port,
            &format!(
                "POST /form HTTP/1.1\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded"
            ),
            &format!("_xsrf={token}"),
        );
        let refused = send(
            port,
            &format!(
                "POST /form HTTP/1.1\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded"
            ),
            "_xsrf=2|00000000|00000000000000000000000000000000|1",
        );
        (page, named, posted, refused)
    });
    let text = page.text();
    assert!(
        text.starts_with("<form method=post><input type=\"hidden\" name=\"_xsrf\" value=\"2|"),
        "{text}"
    );
    assert!(text.ends_with("anonymous at &#x2f;form"), "{text}");
    // The user's name is escaped like any value.
    assert!(
        named.text().ends_with("as &lt;ada&gt; at &#x2f;form"),
        "{}",
        named.text()
    );
    assert!(page.header("set-cookie").unwrap().starts_with("_xsrf="));
    assert_eq!((posted.status, posted.text().as_str()), (200, "posted"));
    assert_eq!(refused.status, 403);
}

#[test]
fn without_xsrf_the_template_field_is_empty() {
    let dir = templates_folder("no-xsrf", &[("f.html", "[{{ xsrf_form_html() }}]")]);
    let templates = Templates::new(&dir);
    let req = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(templates.render_string(&req, "f.html", ()).unwrap(), "[]");
}

#[test]
fn a_panicking_error_page_while_a_handler_panics_is_a_plain_500_not_an_abort() {
    let app = Application::new()
        .error_page(|_err, _req| -> ioloop::http::Response { panic!("the error page fails too") })
        .route(
            "/callback",
            get(|req: Request, _responder: ioloop::http::Responder| {
                assert!(req.path().is_empty(), "a callback handler that panics");
            }),
        )
        .route(
            "/async",
            get(|req: Request| async move {
                assert!(req.path().is_empty(), "an async handler that panics");
                "never"
            }),
        )
        .route("/ok", get(|_req: Request| async { "still here" }));
    let replies = run(app, |port| {
        ["/callback", "/async", "/ok"].map(|path| {
            let reply = send(port, &format!("GET {path} HTTP/1.1"), "");
            (reply.status, reply.text())
        })
    });
    // The application's page failed, so the answer is the plain one.
    assert_eq!(replies[0], (500, "500 Internal Server Error\n".to_owned()));
    assert_eq!(replies[1], (500, "500 Internal Server Error\n".to_owned()));
    assert_eq!(replies[2], (200, "still here".to_owned()));
}

#[test]
fn the_xsrf_cookie_takes_the_name_and_attributes_of_its_template() {
    use ioloop::http::{Cookie, SameSite};
    let app = Application::new()
        .xsrf_cookies(true)
        .xsrf_cookie(
            Cookie::new("__Host-xsrf", "")
                .secure()
                .same_site(SameSite::Strict),
        )
        .route(
            "/form",
            get(|req: Request| async move { req.xsrf_token() })
                .post(|_req: Request| async { "posted" }),
        );
    let (set_cookie, token, with_it, with_the_default_name) = run(app, |port| {
        let page = send(port, "GET /form HTTP/1.1", "");
        let set_cookie = page.header("set-cookie").unwrap().to_owned();
        let token = page.text();
        let form = |cookie: &str| {
            send(
                port,
                &format!(
                    "POST /form HTTP/1.1\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded"
                ),
                &format!("_xsrf={token}"),
            )
            .status
        };
        let cookie_value = set_cookie
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1;
        let with_it = form(&format!("__Host-xsrf={cookie_value}"));
        let with_the_default_name = form(&format!("_xsrf={cookie_value}"));
        (set_cookie, token, with_it, with_the_default_name)
    });
    assert!(set_cookie.starts_with("__Host-xsrf=2|"), "{set_cookie}");
    assert!(
        set_cookie.ends_with("; Path=/; Secure; SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(token.starts_with("2|"), "{token}");
    assert_eq!((with_it, with_the_default_name), (200, 403));
}
