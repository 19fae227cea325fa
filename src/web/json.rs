//! JSON in and out (feature `json`): [`Json`] answers with a serialized value (Tornado's
//! `self.write(dict)`), [`Request::json`] reads a body (Tornado's
//! `json.loads(self.request.body)`) or says why not with a [`JsonError`].

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::http::{HttpError, IntoResponse, Request, Response};

/// The `Content-Type` of JSON answers (Tornado's, for `write(dict)`).
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// A response whose body is `T` serialized as JSON, `200 OK` with
/// `Content-Type: application/json; charset=UTF-8`. A handler returns it, or a
/// `Result<Json<T>, E>` whose error is a response too; `(201, Json(item))` sets the status.
/// A value that fails to serialize (a map with non-string keys) answers 500, logged.
///
/// # Examples
///
/// ```
/// use ioloop::http::IntoResponse;
/// use ioloop::web::Json;
///
/// let response = Json(serde_json::json!({"items": [1, 2], "total": 2})).into_response();
/// assert_eq!(response.get_header("Content-Type"), Some("application/json; charset=UTF-8"));
/// assert_eq!(response.body_bytes(), br#"{"items":[1,2],"total":2}"#);
///
/// let route = ioloop::web::get(|_req| async { Json(vec!["apple", "pear"]) });
/// # let _ = route;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => Response::new(200)
                .header("Content-Type", JSON_CONTENT_TYPE)
                .body(body),
            Err(e) => {
                log::error!(target: "ioloop::web", "a Json response failed to serialize: {e}");
                Response::error(500)
            }
        }
    }
}

/// Why a request body is not the JSON a handler asked for: `415` for another content
/// type, `400` for a body that does not parse into the type (the message names serde's
/// error). It answers as a JSON error (`{"error": message, "status": code}`) when
/// returned from a handler; [`status`](JsonError::status) and
/// [`message`](JsonError::message) let an application's own error type take it over.
///
/// # Examples
///
/// ```
/// use ioloop::http::Request;
/// let mut req = Request::parse(b"POST / HTTP/1.1\r\nContent-Type: text/plain\r\n\r\n").unwrap();
/// req.set_body(b"{}".to_vec());
/// let err = req.json::<serde_json::Value>().unwrap_err();
/// assert_eq!(err.status(), 415);
/// ```
#[derive(Debug)]
pub struct JsonError {
    status: u16,
    message: String,
    /// The message without the request's own bytes (no content type, no quoted value):
    /// the public reason of the `HttpError` this becomes.
    summary: String,
}

impl JsonError {
    /// The status to answer: 415 or 400.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    ///
    /// #[derive(Debug, serde::Deserialize)]
    /// struct Order {
    ///     qty: u32,
    /// }
    /// let order = |content_type: &str, body: &str| {
    ///     let head = format!("POST / HTTP/1.1\r\nContent-Type: {content_type}\r\n\r\n");
    ///     let mut req = Request::parse(head.as_bytes()).unwrap();
    ///     req.set_body(body.into());
    ///     req.json::<Order>()
    /// };
    /// assert_eq!(order("application/json", r#"{"qty": 2}"#)?.qty, 2);
    /// let not_an_order = order("application/json", r#"{"qty": -1}"#).unwrap_err();
    /// assert_eq!(not_an_order.status(), 400);
    /// let not_json = order("text/csv", "qty\n2\n").unwrap_err();
    /// assert_eq!(not_json.status(), 415);
    /// # Ok::<(), ioloop::web::JsonError>(())
    /// ```
    pub fn status(&self) -> u16 {
        self.status
    }

    /// What is wrong, naming no server detail: for a 400, serde's error with its line and
    /// column; for a 415, the type sent. It may quote the request's bytes (serde quotes a
    /// value of the wrong type), so escape it before putting it in HTML; the `HttpError`
    /// this converts into has a reason without them and this message for the log.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(b"POST / HTTP/1.1\r\nContent-Type: application/json\r\n\r\n").unwrap();
    /// req.set_body(b"{\"qty\": }".to_vec());
    /// let err = req.json::<serde_json::Value>().unwrap_err();
    /// assert_eq!(err.status(), 400);
    /// assert!(err.message().starts_with("invalid JSON body: expected value"), "{}", err.message());
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for JsonError {}

/// `{"error": message, "status": status}` with the status, which an application's
/// [`error_page`](crate::web::Application::error_page) replaces.
impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.message, "status": self.status});
        let page = Json(body).into_response().status_code(self.status);
        page.default_page_of(self.into())
    }
}

/// The status; the public reason says what is wrong without quoting the request (the
/// kind of JSON error with its line and column, or that JSON was expected), the full
/// message goes to the log.
impl From<JsonError> for HttpError {
    fn from(error: JsonError) -> HttpError {
        HttpError::new(error.status)
            .reason(error.summary)
            .log(error.message)
    }
}

/// Whether a `Content-Type` is JSON: `application/json` or a `+json` type
/// (`application/merge-patch+json`), parameters aside.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json") || sub.to_ascii_lowercase().ends_with("+json"))
}

impl Request {
    /// The body parsed as JSON into `T` (feature `json`; Tornado's
    /// `json.loads(self.request.body)`).
    ///
    /// # Errors
    ///
    /// A [`JsonError`]: 415 when the `Content-Type` is not JSON (or is missing), 400
    /// naming serde's error when the body does not parse into `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(
    ///     b"POST /api/items HTTP/1.1\r\nContent-Type: application/json\r\n\r\n",
    /// ).unwrap();
    /// req.set_body(br#"{"name": "apple", "qty": 3}"#.to_vec());
    /// let item: serde_json::Value = req.json()?;
    /// assert_eq!(item["qty"], 3);
    /// # Ok::<(), ioloop::web::JsonError>(())
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, JsonError> {
        match self.header("content-type") {
            Some(t) if is_json(t) => {}
            other => {
                return Err(JsonError {
                    status: 415,
                    summary: "expected application/json".to_owned(),
                    message: match other {
                        Some(t) => format!(
                            "expected application/json, not {}",
                            t.split(';').next().unwrap_or("").trim()
                        ),
                        None => "expected application/json, no Content-Type was sent".to_owned(),
                    },
                })
            }
        }
        serde_json::from_slice(self.body()).map_err(|e| {
            let kind = match e.classify() {
                serde_json::error::Category::Data => "does not fit the expected shape",
                serde_json::error::Category::Eof => "ends early",
                _ => "is malformed",
            };
            JsonError {
                status: 400,
                summary: format!(
                    "the JSON body {kind} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
                message: format!("invalid JSON body: {e}"),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let head = match content_type {
            Some(t) => format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: {t}\r\n\r\n"),
            None => "POST / HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        };
        let mut req = Request::parse(head.as_bytes()).unwrap();
        req.set_body(body.as_bytes().to_vec());
        req
    }

    #[test]
    fn json_content_types_are_recognised() {
        for t in [
            "application/json",
            "application/json; charset=UTF-8",
            "Application/JSON",
            "application/merge-patch+json",
        ] {
            assert!(is_json(t), "{t}");
        }
        for t in [
            "text/json",
            "application/jsonp",
            "text/plain",
            "",
            "application/x-www-form-urlencoded",
        ] {
            assert!(!is_json(t), "{t}");
        }
    }

    #[test]
    fn request_json_answers_415_and_400_with_serdes_error() {
        let v: serde_json::Value = request(Some("application/json"), r#"{"a": [1]}"#)
            .json()
            .unwrap();
        assert_eq!(v["a"][0], 1);
        let err = request(Some("text/plain"), "{}")
            .json::<serde_json::Value>()
            .unwrap_err();
        assert_eq!(
            (err.status(), err.message()),
            (415, "expected application/json, not text/plain")
        );
        assert_eq!(
            request(None, "{}")
                .json::<serde_json::Value>()
                .unwrap_err()
                .status(),
            415
        );
        let err = request(Some("application/json"), r#"{"qty": "three"}"#)
            .json::<std::collections::HashMap<String, u32>>()
            .unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(
            err.message(),
            "invalid JSON body: invalid type: string \"three\", expected u32 at line 1 column 15"
        );
        let response = err.into_response();
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = serde_json::from_slice(response.body_bytes()).unwrap();
        assert_eq!(body["status"], 400);
        assert!(body["error"].as_str().unwrap().contains("expected u32"));
    }

    #[test]
    fn as_an_http_error_the_reason_quotes_nothing_of_the_request() {
        let script = r#"{"qty": "<script>alert(1)</script>"}"#;
        let err = request(Some("application/json"), script)
            .json::<std::collections::HashMap<String, u32>>()
            .unwrap_err();
        let http = HttpError::from(err);
        assert_eq!(
            (http.status(), http.public_reason()),
            (
                400,
                "the JSON body does not fit the expected shape (line 1, column 35)"
            )
        );
        assert!(http.log_message().unwrap().contains("<script>"));
        let err = request(Some("application/json"), "{").json::<serde_json::Value>();
        let reason = HttpError::from(err.unwrap_err()).public_reason().to_owned();
        assert_eq!(reason, "the JSON body ends early (line 1, column 1)");
        let err = request(Some("text/<b>"), "{}").json::<serde_json::Value>();
        let http = HttpError::from(err.unwrap_err());
        assert_eq!(
            (http.status(), http.public_reason()),
            (415, "expected application/json")
        );
    }

    #[test]
    fn json_responses_have_tornados_content_type() {
        let r = Json(serde_json::json!({"id": 1})).into_response();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.get_header("content-type"),
            Some("application/json; charset=UTF-8")
        );
        assert_eq!(r.body_bytes(), br#"{"id":1}"#);
        let created = (201, Json([1, 2])).into_response();
        assert_eq!(
            (created.status(), created.body_bytes()),
            (201, &b"[1,2]"[..])
        );
        let bad: Result<Json<u8>, JsonError> = Err(JsonError {
            status: 415,
            message: "m".into(),
            summary: "s".into(),
        });
        assert_eq!(bad.into_response().status(), 415);
        // A map whose keys are not strings cannot be JSON: 500.
        let map: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert_eq!(Json(map).into_response().status(), 500);
    }
}
