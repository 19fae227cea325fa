//! The code of "What fills the gap" in `docs/coming-from-tornado.md`, served over real
//! sockets: sessions kept in a real `redis-server` behind a signed cookie (feature
//! `redis`), and the request's locale picked in a `prepare` hook. (The CORS code there
//! is a doc test of its own.)

#![cfg(all(feature = "web", feature = "signed-cookies", target_os = "linux"))]

use crate::common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::http::{Client, Reply};
use common::with_client;
use ioloop::http::Request;
use ioloop::web::{get, Application};
use ioloop::IoLoop;

fn request(port: u16, head: &str, body: &str) -> Reply {
    Client::connect(port).request(&format!(
        "{head}\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn serve<T: Send + 'static>(
    ioloop: &IoLoop,
    app: Application,
    client: impl FnOnce(u16) -> T + Send + 'static,
) -> T {
    let (_server, addr): (_, SocketAddr) = app.bind(ioloop, "127.0.0.1:0").unwrap();
    with_client(ioloop, addr, move |addr| client(addr.port()))
}

#[cfg(feature = "redis")]
mod sessions {
    use super::*;
    use ioloop::http::{HttpError, Response};
    use ioloop::redis::RedisClient;
    use ioloop::web::post;

    // As in the doc, line for line.
    /// `POST /cart` (`item=..`): the session's cart, a Redis list that expires with the cookie.
    async fn add_to_cart(req: Request) -> Result<Response, HttpError> {
        let redis = req.state::<RedisClient>();
        let down = |e: ioloop::redis::RedisError| HttpError::new(503).log(e.to_string());
        let id = match req.get_signed_cookie("session", 30) {
            Some(id) => id,
            None => redis
                .cmd(["INCR", "session:next"])
                .await
                .map_err(down)?
                .as_int()
                .unwrap_or(0)
                .to_string(),
        };
        let key = format!("cart:{id}");
        let item = req.get_argument("item")?;
        let size = redis
            .cmd(["RPUSH", key.as_str(), item.as_str()])
            .await
            .map_err(down)?;
        redis
            .cmd(["EXPIRE", key.as_str(), "2592000"])
            .await
            .map_err(down)?;
        let cookie = req.signed_cookie("session", &id)?.http_only();
        let text = format!("{} in the cart", size.as_int().unwrap_or(0));
        Ok(Response::text(text).with_cookie(&cookie)?)
    }

    #[test]
    fn a_session_id_in_a_signed_cookie_keeps_a_cart_in_redis() {
        if !common::redis::available() {
            return;
        }
        let server = common::redis::RedisServer::start(&[]);
        let ioloop = IoLoop::new().unwrap();
        let redis = ioloop
            .run_sync(RedisClient::connect(&ioloop, &server.url()))
            .unwrap()
            .unwrap();
        let app = Application::new()
            .with_state(redis)
            .cookie_secret("s3cret")
            .route("/cart", post(add_to_cart));
        let form = "POST /cart HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded";
        let replies = serve(&ioloop, app, move |port| {
            let first = request(port, form, "item=apple");
            let cookie = first.header("set-cookie").unwrap().to_owned();
            let session = cookie.split(';').next().unwrap().to_owned();
            let second = request(port, &format!("{form}\r\nCookie: {session}"), "item=pear");
            let stranger = request(port, form, "item=fig");
            let forged = request(port, &format!("{form}\r\nCookie: session=1"), "item=x");
            (cookie, [first, second, stranger, forged].map(|r| r.text()))
        });
        let (cookie, texts) = replies;
        assert!(
            cookie.starts_with("session=2|") && cookie.contains("HttpOnly"),
            "{cookie}"
        );
        // The same session twice; another visitor and an unsigned id get sessions of their own.
        assert_eq!(
            texts,
            [
                "1 in the cart",
                "2 in the cart",
                "1 in the cart",
                "1 in the cart"
            ]
        );
        assert_eq!(
            server.cli_text(&["LRANGE", "cart:1", "0", "-1"]),
            "apple\npear"
        );
        let ttl: i64 = server.cli_text(&["TTL", "cart:1"]).parse().unwrap();
        assert!(ttl > 2_500_000, "{ttl}");
        assert_eq!(server.cli_text(&["GET", "session:next"]), "3");
    }
}

/// The request's locale (Tornado's `self.locale`).
struct Locale(&'static str);

// As in the doc, line for line.
fn pick(accept_language: &str, available: &[&'static str]) -> &'static str {
    // `fluent_langneg::negotiate_languages` does this properly (q-values, regions).
    accept_language
        .split(',')
        .filter_map(|tag| tag.split(';').next()?.trim().get(..2))
        .find_map(|lang| available.iter().copied().find(|l| *l == lang))
        .unwrap_or(available[0])
}

#[test]
fn the_locale_is_picked_once_in_prepare_and_reaches_the_handler() {
    let greetings: HashMap<&str, &str> = [("en", "Hello"), ("fr", "Bonjour")].into();
    let app = Application::new()
        .prepare(|req| {
            let wanted = req
                .cookie("locale")
                .or_else(|| req.header("accept-language").map(str::to_owned));
            let locale = pick(wanted.as_deref().unwrap_or(""), &["en", "fr"]);
            req.extensions_mut().insert(Locale(locale));
            None
        })
        .route(
            "/",
            get(move |req: Request| {
                let locale = req.extensions().get::<Locale>().map_or("en", |l| l.0);
                let text = greetings[locale].to_owned();
                async move { text }
            }),
        );
    let ioloop = IoLoop::new().unwrap();
    let texts = serve(&ioloop, app, |port| {
        [
            "",
            "\r\nAccept-Language: fr-CH, fr;q=0.9, en;q=0.8",
            "\r\nAccept-Language: de-DE, de;q=0.9",
            "\r\nAccept-Language: de, en;q=0.5",
            "\r\nAccept-Language: fr\r\nCookie: locale=en",
            "\r\nCookie: locale=fr",
        ]
        .map(|extra| request(port, &format!("GET / HTTP/1.1{extra}"), "").text())
    });
    assert_eq!(
        texts,
        ["Hello", "Bonjour", "Hello", "Hello", "Hello", "Bonjour"]
    );
}
