//! Feature `json` on the wire: `Json<T>` answers and `Request::json` with its 415 and
//! 400, through a real socket.

#![cfg(all(feature = "json", target_os = "linux"))]

use crate::common;

use common::http::Client;
use common::with_client;
use ioloop::http::Request;
use ioloop::web::{post, Application, Json, JsonError};

fn post_json(client: &mut Client, content_type: &str, body: &str) -> common::http::Reply {
    client.request(&format!(
        "POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

#[test]
fn json_in_and_out_with_415_and_400() {
    let ioloop = ioloop::IoLoop::new().unwrap();
    let app = Application::new().route(
        "/api/items",
        post(|req: Request| async move {
            let item: serde_json::Value = req.json()?;
            Ok::<_, JsonError>((
                201,
                Json(serde_json::json!({"id": 1, "name": item["name"]})),
            ))
        }),
    );
    let (_server, addr) = app.bind(&ioloop, "127.0.0.1:0").unwrap();
    let replies = with_client(&ioloop, addr, |addr| {
        let mut client = Client::connect(addr.port());
        [
            post_json(
                &mut client,
                "application/json",
                r#"{"name": "apple", "qty": 3}"#,
            ),
            post_json(&mut client, "text/plain", r#"{"name": "apple"}"#),
            post_json(
                &mut client,
                "application/json; charset=utf-8",
                r#"{"name": "#,
            ),
        ]
    });
    let [created, wrong_type, bad] = replies;
    assert_eq!(created.status, 201);
    assert_eq!(
        created.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    assert_eq!(created.text(), r#"{"id":1,"name":"apple"}"#);
    assert_eq!(wrong_type.status, 415);
    assert_eq!(
        wrong_type.text(),
        r#"{"error":"expected application/json, not text/plain","status":415}"#
    );
    assert_eq!(bad.status, 400);
    assert!(
        bad.text()
            .contains("invalid JSON body: EOF while parsing a value at line 1 column 9"),
        "{}",
        bad.text()
    );
}
