//! Feature `templates`: autoescape on by default for every template (a `<script>` in
//! `next` is escaped in `.html` and `.txt`, a JSON literal in `.js`), per-request globals (a context provider and
//! `static_url()`), and reloading in debug mode only (the file is rewritten with another
//! modification time; no sleeping), and a rendered page on the wire.

#![cfg(all(feature = "templates", target_os = "linux"))]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::http::Client;
use common::with_client;
use ioloop::http::Request;
use ioloop::web::minijinja::{context, Value};
use ioloop::web::{get, Application, StaticFiles, Templates};

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ioloop-templates-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str, at: SystemTime) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(at)
        .unwrap();
}

fn request(target: &str) -> Request {
    Request::parse(
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nCookie: user=<b>ada</b>\r\n\r\n").as_bytes(),
    )
    .unwrap()
}

const XSS: &str = "\"><script>alert(1)</script>";

#[test]
fn html_is_escaped_by_default_and_text_is_not() {
    let dir = folder("escape");
    let t0 = SystemTime::now();
    write(
        &dir,
        "login.html",
        "<a href=\"{{ next }}\">{{ next }}</a>",
        t0,
    );
    write(&dir, "page.htm", "{{ next }}", t0);
    write(&dir, "feed.xml", "<t>{{ next }}</t>", t0);
    write(&dir, "mail.txt", "go to {{ next }}", t0);
    write(
        &dir,
        "raw.txt",
        "{% autoescape false %}go to {{ next }}{% endautoescape %}",
        t0,
    );
    write(&dir, "sig.txt", "-- {{ next }}", t0);
    write(
        &dir,
        "page-with-sig.html",
        "<p>{% include \"sig.txt\" %}</p>",
        t0,
    );
    write(&dir, "app.js", "const next = {{ next }};", t0);
    write(
        &dir,
        "inline.html",
        "<script>const next = {{ next|tojson }};</script>",
        t0,
    );
    let templates = Templates::new(&dir);
    let req = request("/login");
    let html = templates
        .render_string(&req, "login.html", context! { next => XSS })
        .unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert_eq!(
        html,
        "<a href=\"&quot;&gt;&lt;script&gt;alert(1)&lt;&#x2f;script&gt;\">&quot;&gt;&lt;script&gt;alert(1)&lt;&#x2f;script&gt;</a>"
    );
    for name in ["page.htm", "feed.xml"] {
        let out = templates
            .render_string(&req, name, context! { next => XSS })
            .unwrap();
        assert!(!out.contains("<script>"), "{name}: {out}");
    }
    // Every name is escaped, as in Tornado (a `.txt` included in a page too); a
    // template that is not HTML says so itself; scripts get JSON literals.
    let render = |name: &str| {
        templates
            .render_string(&req, name, context! { next => XSS })
            .unwrap()
    };
    assert!(!render("mail.txt").contains("<script>"));
    assert!(!render("page-with-sig.html").contains("<script>"));
    assert_eq!(render("raw.txt"), format!("go to {XSS}"));
    assert_eq!(
        render("app.js"),
        r#"const next = "\"><script>alert(1)</script>";"#
    );
    // In a page's own script, `tojson` keeps `</script>` from ending it.
    assert_eq!(
        render("inline.html"),
        r#"<script>const next = "\"\u003e\u003cscript\u003ealert(1)\u003c/script\u003e";</script>"#
    );
    // A response: 200, the type by extension.
    let page = templates
        .render(&req, "login.html", context! { next => "/" })
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.get_header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    // A missing template is an error that answers 500.
    let err = templates.render(&req, "missing.html", ()).unwrap_err();
    assert_eq!(err.status(), 500);
    // A name cannot leave the folder.
    assert!(templates
        .render_string(&req, "../../etc/passwd", ())
        .is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn providers_and_static_url_reach_every_template() {
    let dir = folder("globals");
    let statics = folder("globals-static");
    std::fs::write(statics.join("app.css"), "p{}").unwrap();
    let files = StaticFiles::new(&statics);
    write(
        &dir,
        "base.html",
        "<u id=\"user\">{{ current_user }}</u><link href=\"{{ static_url('app.css') }}\">{{ xsrf_form_html() }}{% block body %}{% endblock %}",
        SystemTime::now(),
    );
    write(
        &dir,
        "index.html",
        "{% extends 'base.html' %}{% block body %}[{{ title }}]{% endblock %}",
        SystemTime::now(),
    );
    let templates = Templates::new(&dir)
        .static_files(&files)
        .context(|req: &Request| {
            let form = r#"<input type="hidden" name="_xsrf" value="2|ab|cd|1"/>"#.to_owned();
            context! {
                current_user => req.cookie("user"),
                xsrf_form_html => Value::from_function(move || Value::from_safe_string(form.clone())),
                title => "from the provider",
            }
        });
    let out = templates
        .render_string(&request("/"), "index.html", context! { title => "<mine>" })
        .unwrap();
    assert!(
        out.contains("<u id=\"user\">&lt;b&gt;ada&lt;&#x2f;b&gt;</u>"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "href=\"{}\"",
            files.static_url("app.css").replace('/', "&#x2f;")
        )),
        "{out}"
    );
    assert!(out.contains("?v="), "{out}");
    assert!(
        out.contains(r#"<input type="hidden" name="_xsrf" value="2|ab|cd|1"/>"#),
        "{out}"
    );
    assert!(
        out.ends_with("[&lt;mine&gt;]"),
        "the render's own context wins: {out}"
    );
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&statics).ok();
}

#[test]
fn templates_reload_when_their_file_changes_in_debug_mode_only() {
    let dir = folder("reload");
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let req = request("/");
    for debug in [false, true] {
        write(&dir, "page.html", "version one", t0);
        let templates = Templates::new(&dir).debug(debug);
        assert_eq!(
            templates.render_string(&req, "page.html", ()).unwrap(),
            "version one"
        );
        write(
            &dir,
            "page.html",
            "version two",
            t0 + Duration::from_secs(5),
        );
        let after = std::fs::metadata(dir.join("page.html"))
            .unwrap()
            .modified()
            .unwrap();
        assert_ne!(after, t0, "the file's modification time changed");
        let expected = if debug { "version two" } else { "version one" };
        assert_eq!(
            templates.render_string(&req, "page.html", ()).unwrap(),
            expected,
            "debug {debug}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_rendered_page_on_the_wire_escapes_next() {
    let dir = folder("wire");
    write(
        &dir,
        "login.html",
        "<form><input name=\"next\" value=\"{{ next }}\"></form>",
        SystemTime::now(),
    );
    let templates = Templates::new(&dir);
    let ioloop = ioloop::IoLoop::new().unwrap();
    let (_server, addr) = Application::new()
        .route(
            "/login",
            get(move |req: Request| {
                let page = templates.render(
                    &req,
                    "login.html",
                    context! { next => req.query_arg("next") },
                );
                async move { page }
            }),
        )
        .bind(&ioloop, "127.0.0.1:0")
        .unwrap();
    let reply = with_client(&ioloop, addr, |addr| {
        Client::connect(addr.port()).request(
            "GET /login?next=%22%3E%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1\r\nHost: x\r\n\r\n",
        )
    });
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    assert_eq!(
        reply.text(),
        "<form><input name=\"next\" value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;&#x2f;script&gt;\"></form>"
    );
    std::fs::remove_dir_all(&dir).ok();
}

// Tornado's `self.render`: the application holds the templates and handlers render
// through the request, with the request's own globals; a handler's errors and a missing
// template come back as `HttpError`s, and an application without templates answers 500.
#[test]
fn handlers_render_with_the_applications_templates() {
    let dir = folder("app");
    let t0 = SystemTime::now();
    write(
        &dir,
        "hello.html",
        "<p>{{ name }} at {{ request_path }}</p>",
        t0,
    );
    write(
        &dir,
        "hello.txt",
        "{% autoescape false %}{{ name }}!{% endautoescape %}",
        t0,
    );
    let with_templates = |app: Application| {
        app.route(
            "/hello",
            get(|req: Request| async move {
                let name = req.get_argument_or("name", "world")?;
                req.render("hello.html", context! { name })
            }),
        )
        .route(
            "/text",
            get(|req: Request| async move {
                let text = req.render_string("hello.txt", context! { name => "<ada>" })?;
                Ok::<_, ioloop::http::HttpError>(text.to_uppercase())
            }),
        )
        .route(
            "/missing",
            get(|req: Request| async move { req.render("missing.html", ()) }),
        )
    };
    let ioloop = ioloop::IoLoop::new().unwrap();
    let app = with_templates(Application::new().templates(Templates::new(&dir)));
    let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    let (_bare, bare_addr) = with_templates(Application::new())
        .bind(&ioloop, "127.0.0.1:0")
        .unwrap();
    let replies = with_client(&ioloop, addr, move |addr| {
        let get = |port: u16, target: &str| {
            Client::connect(port).request(&format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n"))
        };
        [
            get(addr.port(), "/hello?name=%3Cb%3E"),
            get(addr.port(), "/text"),
            get(addr.port(), "/missing"),
            get(bare_addr.port(), "/hello"),
        ]
        .map(|r| {
            (
                r.status,
                r.header("content-type").map(str::to_owned),
                r.text(),
            )
        })
    });
    assert_eq!(
        replies[0],
        (
            200,
            Some("text/html; charset=UTF-8".to_owned()),
            "<p>&lt;b&gt; at &#x2f;hello</p>".to_owned()
        )
    );
    assert_eq!(replies[1].2, "<ADA>!");
    assert_eq!(
        (replies[2].0, replies[2].2.as_str()),
        (500, "500 Internal Server Error\n")
    );
    assert_eq!(
        (replies[3].0, replies[3].2.as_str()),
        (500, "500 Internal Server Error\n")
    );
    std::fs::remove_dir_all(&dir).ok();
}
