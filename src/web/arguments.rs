//! Request arguments as Tornado's `get_argument` family reads them: from the query and
//! the body (`application/x-www-form-urlencoded`, or the text fields of a
//! `multipart/form-data` body), percent-decoded, UTF-8, control characters made spaces,
//! stripped; the last value wins; a missing one is `400 Missing argument NAME`.

use std::fmt::Display;
use std::str::FromStr;

use percent_encoding::percent_decode;

use crate::http::{HttpError, Request};

/// Which arguments to look in.
#[derive(Clone, Copy)]
enum Source {
    Query,
    Body,
    Both,
}

impl Request {
    /// The last value of argument `name` in the query and the body (Tornado's
    /// `get_argument`), cleaned: control characters other than whitespace become spaces,
    /// and whitespace around it is stripped.
    ///
    /// # Errors
    ///
    /// `400 Missing argument NAME` without one; `400 Invalid unicode in argument NAME`
    /// when it is not UTF-8.
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(b"POST /?a=1&a=2 HTTP/1.1\r\nHost: x\r\n\
    ///     Content-Type: application/x-www-form-urlencoded\r\n\r\n").unwrap();
    /// req.set_body(b"name=+al%01ice+".to_vec());
    /// assert_eq!(req.get_argument("a")?, "2");
    /// assert_eq!(req.get_argument("name")?, "al ice");
    /// assert_eq!(req.get_argument("nope").unwrap_err().public_reason(), "Missing argument nope");
    /// # Ok::<(), ioloop::http::HttpError>(())
    /// ```
    pub fn get_argument(&self, name: &str) -> Result<String, HttpError> {
        self.last(name, Source::Both)
    }

    /// [`get_argument`](Request::get_argument) with a default for a missing argument.
    ///
    /// # Errors
    ///
    /// `400` when the argument is not UTF-8.
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// assert_eq!(req.get_argument_or("next", "/")?, "/");
    /// # Ok::<(), ioloop::http::HttpError>(())
    /// ```
    pub fn get_argument_or(&self, name: &str, default: &str) -> Result<String, HttpError> {
        self.last_or(name, default, Source::Both)
    }

    /// Every value of argument `name`, the query's then the body's, cleaned (Tornado's
    /// `get_arguments`); empty without one.
    ///
    /// # Errors
    ///
    /// `400` when a value is not UTF-8.
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET /?t=a&t=b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// assert_eq!(req.get_arguments("t")?, ["a", "b"]);
    /// # Ok::<(), ioloop::http::HttpError>(())
    /// ```
    pub fn get_arguments(&self, name: &str) -> Result<Vec<String>, HttpError> {
        self.all(name, Source::Both)
    }

    /// As [`get_argument`](Request::get_argument), from the query only.
    ///
    /// # Errors
    ///
    /// As [`get_argument`](Request::get_argument).
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET /?q=rust HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// assert_eq!(req.get_query_argument("q")?, "rust");
    /// # Ok::<(), ioloop::http::HttpError>(())
    /// ```
    pub fn get_query_argument(&self, name: &str) -> Result<String, HttpError> {
        self.last(name, Source::Query)
    }

    /// As [`get_argument_or`](Request::get_argument_or), from the query only.
    ///
    /// # Errors
    ///
    /// As [`get_argument_or`](Request::get_argument_or).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(b"POST /?page=2 HTTP/1.1\r\nHost: x\r\n\
    ///     Content-Type: application/x-www-form-urlencoded\r\n\r\n").unwrap();
    /// req.set_body(b"sort=name".to_vec());
    /// assert_eq!(req.get_query_argument_or("page", "1")?, "2");
    /// assert_eq!(req.get_query_argument_or("sort", "date")?, "date"); // in the body only
    /// # Ok::<(), ioloop::http::HttpError>(())
    /// ```
    pub fn get_query_argument_or(&self, name: &str, default: &str) -> Result<String, HttpError> {
        self.last_or(name, default, Source::Query)
    }

    /// As [`get_arguments`](Request::get_arguments), from the query only.
    ///
    /// # Errors
    ///
    /// As [`get_arguments`](Request::get_arguments).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(b"POST /?tag=q1&tag=q2 HTTP/1.1\r\nHost: x\r\n\
    ///     Content-Type: application/x-www-form-urlencoded\r\n\r\n").unwrap();
    /// req.set_body(b"tag=b1&tag=b2".to_vec());
    /// assert_eq!(req.get_query_arguments("tag")?, ["q1", "q2"]);
    /// assert!(req.get_query_arguments("other")?.is_empty());
    /// # Ok::<(), ioloop::http::HttpError>(())
    /// ```
    pub fn get_query_arguments(&self, name: &str) -> Result<Vec<String>, HttpError> {
        self.all(name, Source::Query)
    }

    /// As [`get_argument`](Request::get_argument), from the body only.
    ///
    /// # Errors
    ///
    /// As [`get_argument`](Request::get_argument).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(b"POST /?a=q HTTP/1.1\r\nHost: x\r\n\
    ///     Content-Type: application/x-www-form-urlencoded\r\n\r\n").unwrap();
    /// req.set_body(b"a=b".to_vec());
    /// assert_eq!(req.get_body_argument("a")?, "b");
    /// assert_eq!(req.get_query_argument("a")?, "q");
    /// # Ok::<(), ioloop::http::HttpError>(())
    /// ```
    pub fn get_body_argument(&self, name: &str) -> Result<String, HttpError> {
        self.last(name, Source::Body)
    }

    /// As [`get_argument_or`](Request::get_argument_or), from the body only.
    ///
    /// # Errors
    ///
    /// As [`get_argument_or`](Request::get_argument_or).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(b"POST /?page=2 HTTP/1.1\r\nHost: x\r\n\
    ///     Content-Type: application/x-www-form-urlencoded\r\n\r\n").unwrap();
    /// req.set_body(b"sort=name".to_vec());
    /// assert_eq!(req.get_body_argument_or("sort", "date")?, "name");
    /// assert_eq!(req.get_body_argument_or("page", "1")?, "1"); // in the query only
    /// # Ok::<(), ioloop::http::HttpError>(())
    /// ```
    pub fn get_body_argument_or(&self, name: &str, default: &str) -> Result<String, HttpError> {
        self.last_or(name, default, Source::Body)
    }

    /// As [`get_arguments`](Request::get_arguments), from the body only.
    ///
    /// # Errors
    ///
    /// As [`get_arguments`](Request::get_arguments).
    ///
    /// # Examples
    ///
    /// ```
    /// use ioloop::http::Request;
    /// let mut req = Request::parse(b"POST /?tag=q1&tag=q2 HTTP/1.1\r\nHost: x\r\n\
    ///     Content-Type: application/x-www-form-urlencoded\r\n\r\n").unwrap();
    /// req.set_body(b"tag=b1&tag=b2".to_vec());
    /// assert_eq!(req.get_body_arguments("tag")?, ["b1", "b2"]);
    /// assert_eq!(req.get_arguments("tag")?, ["q1", "q2", "b1", "b2"]);
    /// # Ok::<(), ioloop::http::HttpError>(())
    /// ```
    pub fn get_body_arguments(&self, name: &str) -> Result<Vec<String>, HttpError> {
        self.all(name, Source::Body)
    }

    /// Argument `name` parsed as a `T` (`argument_as::<u32>("limit")`).
    ///
    /// # Errors
    ///
    /// `400 Missing argument NAME`, or `400 Invalid argument NAME: <why>` when it does not
    /// parse.
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET /?limit=-1 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// assert_eq!(req.argument_as::<i32>("limit")?, -1);
    /// let err = req.argument_as::<u32>("limit").unwrap_err();
    /// assert_eq!(err.status(), 400);
    /// assert!(err.public_reason().starts_with("Invalid argument limit"));
    /// # Ok::<(), ioloop::http::HttpError>(())
    /// ```
    pub fn argument_as<T>(&self, name: &str) -> Result<T, HttpError>
    where
        T: FromStr,
        T::Err: Display,
    {
        parse_as(name, &self.get_argument(name)?)
    }

    /// As [`argument_as`](Request::argument_as), with a default for a missing argument
    /// (`argument_as_or("limit", 10u32)`).
    ///
    /// # Errors
    ///
    /// `400 Invalid argument NAME: <why>` when it is there and does not parse.
    ///
    /// # Examples
    ///
    /// ```
    /// let req = ioloop::http::Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    /// assert_eq!(req.argument_as_or("limit", 10u32)?, 10);
    /// # Ok::<(), ioloop::http::HttpError>(())
    /// ```
    pub fn argument_as_or<T>(&self, name: &str, default: T) -> Result<T, HttpError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.all(name, Source::Both)?.pop() {
            Some(value) => parse_as(name, &value),
            None => Ok(default),
        }
    }

    fn last(&self, name: &str, source: Source) -> Result<String, HttpError> {
        self.all(name, source)?
            .pop()
            .ok_or_else(|| HttpError::missing_argument(name))
    }

    fn last_or(&self, name: &str, default: &str, source: Source) -> Result<String, HttpError> {
        Ok(self
            .all(name, source)?
            .pop()
            .unwrap_or_else(|| default.to_owned()))
    }

    fn all(&self, name: &str, source: Source) -> Result<Vec<String>, HttpError> {
        let mut raw: Vec<Vec<u8>> = Vec::new();
        if matches!(source, Source::Query | Source::Both) {
            raw.extend(urlencoded_values(self.query().as_bytes(), name));
        }
        if matches!(source, Source::Body | Source::Both) {
            let content_type = self.header("content-type").unwrap_or("");
            let is = |essence: &str| {
                let found = content_type.split(';').next().unwrap_or("").trim();
                found.eq_ignore_ascii_case(essence)
            };
            if is("application/x-www-form-urlencoded") {
                raw.extend(urlencoded_values(self.body(), name));
            } else if is("multipart/form-data") {
                let fields = self.multipart_fields()?;
                let values = fields.into_iter().filter(|(n, _)| n == name);
                raw.extend(values.map(|(_, v)| v.into_bytes()));
            }
        }
        raw.into_iter().map(|value| clean(name, value)).collect()
    }
}

fn parse_as<T>(name: &str, value: &str) -> Result<T, HttpError>
where
    T: FromStr,
    T::Err: Display,
{
    // The parse error goes to the log only: a type's own error may quote the value.
    value.parse().map_err(|e| {
        HttpError::new(400)
            .reason(format!("Invalid argument {name}"))
            .log(format!("argument {name}: {e}"))
    })
}

/// The percent-decoded values of `name` in a urlencoded string (`+` is a space; a pair
/// without `=` has an empty value; empty pairs are skipped).
fn urlencoded_values<'a>(encoded: &'a [u8], name: &'a str) -> impl Iterator<Item = Vec<u8>> + 'a {
    encoded
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .filter_map(move |pair| {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &b""[..]),
            };
            (decode(key) == name.as_bytes()).then(|| decode(value))
        })
}

fn decode(bytes: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = bytes
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).collect()
}

/// Tornado's cleaning: UTF-8, the controls `\x00-\x08` and `\x0e-\x1f` replaced by spaces,
/// whitespace around stripped.
fn clean(name: &str, value: Vec<u8>) -> Result<String, HttpError> {
    let mut text = String::from_utf8(value)
        .map_err(|_| HttpError::new(400).reason(format!("Invalid unicode in argument {name}")))?;
    if text.bytes().any(|b| matches!(b, 0x00..=0x08 | 0x0e..=0x1f)) {
        text = text
            .chars()
            .map(|c| match c {
                '\x00'..='\x08' | '\x0e'..='\x1f' => ' ',
                c => c,
            })
            .collect();
    }
    let trimmed = text.trim();
    if trimmed.len() != text.len() {
        text = trimmed.to_owned();
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str, form: &[u8]) -> Request {
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n"
        );
        let mut req = Request::parse(head.as_bytes()).unwrap();
        req.set_body(form.to_vec());
        req
    }

    #[test]
    fn the_last_value_wins_and_the_body_comes_after_the_query() {
        let req = request("/?a=1&a=2", b"a=3&b=x");
        assert_eq!(req.get_argument("a").unwrap(), "3");
        assert_eq!(req.get_arguments("a").unwrap(), ["1", "2", "3"]);
        assert_eq!(req.get_query_argument("a").unwrap(), "2");
        assert_eq!(req.get_body_arguments("a").unwrap(), ["3"]);
        assert!(req.get_query_argument("b").is_err());
        assert_eq!(req.get_query_argument_or("b", "d").unwrap(), "d");
    }

    #[test]
    fn values_are_cleaned_as_tornado_does() {
        // Controls other than whitespace become spaces; whitespace around is stripped
        // (tabs and newlines inside are kept).
        let req = request("/?v=%00a%08b%0Bc%1Fd%09e%20&w=%20%0A%20&blank&x=%2B+y", b"");
        assert_eq!(req.get_argument("v").unwrap(), "a b\u{b}c d\te");
        assert_eq!(req.get_argument("w").unwrap(), "");
        assert_eq!(req.get_argument("blank").unwrap(), "");
        assert_eq!(req.get_argument("x").unwrap(), "+ y");
    }

    #[test]
    fn missing_invalid_and_typed_arguments_are_400s_naming_the_argument() {
        let req = request("/?limit=abc&n=%FF&ok=7", b"");
        let err = req.get_argument("name").unwrap_err();
        assert_eq!(
            (err.status(), err.public_reason()),
            (400, "Missing argument name")
        );
        let err = req.get_argument("n").unwrap_err();
        assert_eq!(
            (err.status(), err.public_reason()),
            (400, "Invalid unicode in argument n")
        );
        let err = req.argument_as::<u32>("limit").unwrap_err();
        assert_eq!(err.status(), 400);
        // The parse error is for the log: a type's error may quote the value.
        assert_eq!(err.public_reason(), "Invalid argument limit");
        assert_eq!(
            err.log_message(),
            Some("argument limit: invalid digit found in string")
        );
        assert_eq!(req.argument_as::<u32>("ok").unwrap(), 7);
        assert_eq!(req.argument_as_or::<u32>("missing", 10).unwrap(), 10);
        assert!(req.argument_as_or::<u32>("limit", 10).is_err());
        let err = req.argument_as::<u32>("missing").unwrap_err();
        assert_eq!(err.public_reason(), "Missing argument missing");
    }

    #[test]
    fn a_body_that_is_not_a_form_has_no_body_arguments() {
        let mut req =
            Request::parse(b"POST /?a=1 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\r\n")
                .unwrap();
        req.set_body(b"a=2".to_vec());
        assert_eq!(req.get_argument("a").unwrap(), "1");
        assert!(req.get_body_arguments("a").unwrap().is_empty());
    }

    #[test]
    fn multipart_text_fields_are_body_arguments_and_a_broken_form_is_a_400() {
        let head = b"POST /?a=1 HTTP/1.1\r\nHost: x\r\n\
            Content-Type: multipart/form-data; boundary=B\r\n\r\n";
        let mut req = Request::parse(head).unwrap();
        req.set_body(
            b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n 3 \r\n\
              --B\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"x.txt\"\r\n\r\n\
              file\r\n--B--\r\n"
                .to_vec(),
        );
        assert_eq!(req.get_arguments("a").unwrap(), ["1", "3"]);
        assert_eq!(req.get_body_argument("a").unwrap(), "3");
        assert_eq!(req.get_body_argument("doc").unwrap_err().status(), 400);
        req.set_body(b"--B\r\nno end".to_vec());
        assert_eq!(req.get_query_argument("a").unwrap(), "1");
        assert_eq!(req.get_argument("a").unwrap_err().status(), 400);
    }
}
