//! A live dashboard, Tornado's toolbox end to end: a cookie login behind XSRF, a JSON
//! API, a proxy route on the HTTP client, stats pushed to every page over a WebSocket
//! every 500 ms (templates in `examples/templates/`), and a graceful shutdown on SIGINT
//! or SIGTERM. `COOKIE_SECRET` keeps sign-ins across restarts.
//!
//! ```text
//! cargo run --features json,templates --example dashboard -- 8888
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ioloop::http::{CookieError, HttpClient, HttpError, IntoResponse, Request, Response, SameSite};
use ioloop::signal::{SIGINT, SIGTERM};
use ioloop::web::minijinja::context;
use ioloop::web::{get, local_target, Application, CookieSecret, Json, Templates};
use ioloop::websocket::{websocket, Room, WebSocket};
use ioloop::{IoLoop, PeriodicCallback};
use serde::{Deserialize, Serialize};
use serde_json::json;

const TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/templates");

/// What the handlers share (Tornado: the application's settings and attributes).
struct Dashboard {
    client: HttpClient,
    items: RefCell<Vec<Item>>,
    requests: Cell<u64>,
    live: Room,
}

#[derive(Serialize, Deserialize)]
struct Item {
    #[serde(skip_deserializing)]
    id: usize,
    name: String,
    qty: u32,
}

async fn home(req: Request) -> Result<Response, HttpError> {
    req.render("index.html", ())
}

async fn login_form(req: Request) -> Result<Response, HttpError> {
    let next = req.get_argument_or("next", "/")?;
    req.render("login.html", context! { next })
}

async fn login(req: Request) -> Result<Response, HttpError> {
    let name = req.get_argument("name")?;
    if name.is_empty() {
        return Err(HttpError::new(400).reason("a name is needed"));
    }
    let next = req.get_argument_or("next", "/")?;
    let cookie = req.signed_cookie("user", &name)?;
    let back = Response::redirect(local_target(&next).unwrap_or("/").to_owned(), false);
    Ok(back.with_cookie(&cookie.http_only().same_site(SameSite::Lax))?)
}

async fn logout(_req: Request) -> Result<Response, CookieError> {
    Response::redirect("/", false).clear_cookie("user")
}

async fn list_items(req: Request) -> Result<Json<serde_json::Value>, HttpError> {
    let limit = req.argument_as_or::<usize>("limit", 10)?;
    let items = req.state::<Rc<Dashboard>>().items.borrow();
    let last = &items[items.len().saturating_sub(limit)..];
    Ok(Json(json!({"items": last, "total": items.len()})))
}

async fn add_item(req: Request) -> Result<Response, HttpError> {
    let mut item: Item = req.json()?;
    if item.name.trim().is_empty() {
        return Err(HttpError::new(400).reason("name must not be empty"));
    }
    let mut items = req.state::<Rc<Dashboard>>().items.borrow_mut();
    item.id = items.len() + 1;
    let created = (201, Json(&item)).into_response();
    let location = format!("/api/items/{}", item.id);
    items.push(item);
    Ok(created.header("Location", location))
}

/// Fetches `url` with the HTTP client (Tornado's `AsyncHTTPClient().fetch`).
async fn proxy(req: Request) -> Result<Json<serde_json::Value>, HttpError> {
    let url = req.get_argument("url")?;
    let fetched = req.state::<Rc<Dashboard>>().client.fetch(&url).await;
    let page = fetched.map_err(|e| HttpError::new(502).reason(format!("fetch failed: {e}")))?;
    let answer = json!({"url": url, "status": page.status(), "length": page.body().len()});
    Ok(Json(answer))
}

/// A live page: it gets the stats until it leaves.
async fn live(ws: WebSocket, req: Request) {
    let room = &req.state::<Rc<Dashboard>>().live;
    room.join(&ws);
    while ws.recv().await.is_some() {}
    room.leave(&ws);
}

/// JSON under `/api/`, plain text elsewhere (Tornado's `write_error`).
fn error_page(err: &HttpError, req: &Request) -> Response {
    let (status, reason) = (err.status(), err.public_reason());
    if req.path().starts_with("/api/") {
        Json(json!({"error": reason, "status": status})).into_response()
    } else {
        Response::text(format!("{status} {reason}\n"))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let port: u16 = std::env::args().nth(1).map_or(Ok(8888), |p| p.parse())?;
    let secret = match std::env::var("COOKIE_SECRET") {
        Ok(key) => CookieSecret::new(key),
        Err(_) => CookieSecret::random()?,
    };
    let ioloop = IoLoop::new()?;
    let dash = Rc::new(Dashboard {
        client: HttpClient::new(&ioloop),
        items: RefCell::default(),
        requests: Cell::new(0),
        live: Room::new(),
    });
    let counter = dash.clone();
    let (server, addr) = Application::new()
        .with_state(dash.clone())
        .templates(Templates::new(TEMPLATES).current_user::<String>())
        .cookie_secret(secret)
        .xsrf_cookies(true)
        .current_user(|req| req.get_signed_cookie("user", 31))
        .login_url("/login")
        .error_page(error_page)
        .on_finish(move |_| counter.requests.set(counter.requests.get() + 1))
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", get(logout))
        .route("/api/items", get(list_items).post(add_item).authenticated())
        .route("/api/proxy", get(proxy).authenticated())
        .route("/live", websocket(live))
        .bind(&ioloop, ("127.0.0.1", port))?;
    let started = Instant::now();
    let stats = PeriodicCallback::new(&ioloop, Duration::from_millis(500), move |_, _| {
        let uptime = started.elapsed().as_secs_f64();
        let (clients, requests) = (dash.live.len(), dash.requests.get());
        let stats = json!({"uptime": uptime, "clients": clients, "requests": requests});
        dash.live.say(stats.to_string());
    });
    stats.start();
    for signal in [SIGINT, SIGTERM] {
        let server = server.clone();
        let _ = ioloop.add_signal_handler(signal, move |_| {
            server.shutdown_then(Duration::from_secs(10), |ioloop| ioloop.stop());
        })?;
    }
    println!("dashboard listening on http://{addr}");
    ioloop.start()?;
    Ok(())
}
