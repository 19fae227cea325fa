//! The opening handshake (RFC 6455 §4), sans-IO: the server's checks of an upgrade
//! request (method and version, `Upgrade`/`Connection`, the key, the protocol version,
//! the same-origin rule) and its `101` answer; the client's request and its checks of the
//! answer.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::http::{parse_response_head, HeadError, HeadLimits, Request, Response, Version};

/// The GUID the accept key is derived with (§1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub(crate) fn accept_key(key: &str) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID.as_bytes());
    BASE64.encode(sha1.digest().bytes())
}

/// Which `Origin`s a route accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum OriginPolicy {
    /// The page's origin must be the server's own: `http(s)://` and the `Host` field.
    #[default]
    SameOrigin,
    /// These origins (`scheme://host[:port]`, compared without case), and the server's.
    AllowList(Vec<String>),
    /// Any origin (the route authenticates some other way).
    Any,
}

/// What a server route accepts in a handshake.
#[derive(Debug, Clone, Default)]
pub(crate) struct HandshakePolicy {
    pub(crate) origins: OriginPolicy,
    /// Subprotocols the route speaks.
    pub(crate) subprotocols: Vec<String>,
    /// permessage-deflate, accepted when offered.
    #[cfg(feature = "deflate")]
    pub(crate) compression: Option<super::deflate::DeflateOptions>,
}

/// What a handshake agreed: the subprotocol and the extensions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Negotiated {
    pub(crate) subprotocol: Option<String>,
    #[cfg(feature = "deflate")]
    pub(crate) deflate: Option<super::deflate::Agreed>,
}

/// An accepted handshake: the `101` answer and what it agreed.
pub(crate) struct Accepted {
    pub(crate) response: Response,
    pub(crate) negotiated: Negotiated,
}

fn refuse(status: u16, why: &str) -> Response {
    Response::text(format!(
        "{status} {}: {why}\n",
        crate::http::reason_phrase(status)
    ))
    .status_code(status)
}

/// Checks an upgrade request (its method is `GET`; the router answers 405 otherwise).
///
/// # Errors
///
/// The response refusing it: 400 for a request that is not a WebSocket handshake, 426
/// (with `Sec-WebSocket-Version: 13`) for another protocol version, 403 for a
/// cross-origin page.
pub(crate) fn check_request(
    request: &Request,
    policy: &HandshakePolicy,
) -> Result<Accepted, Response> {
    if request.version() != Version::Http11 {
        return Err(refuse(400, "a WebSocket handshake needs HTTP/1.1"));
    }
    if !request.has_token("upgrade", "websocket") {
        return Err(refuse(400, "Upgrade: websocket is missing"));
    }
    if !request.has_token("connection", "upgrade") {
        return Err(refuse(400, "Connection: Upgrade is missing"));
    }
    if request.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(refuse(426, "only WebSocket version 13 is supported")
            .header("Sec-WebSocket-Version", "13"));
    }
    let keys = request
        .header_fields()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"sec-websocket-key"))
        .count();
    let key = request.header("sec-websocket-key").map(str::trim);
    let valid_key = key.is_some_and(|key| BASE64.decode(key).is_ok_and(|k| k.len() == 16));
    if keys != 1 || !valid_key {
        return Err(refuse(
            400,
            "Sec-WebSocket-Key must be 16 bytes in base64, given once",
        ));
    }
    if let Some(origin) = request.header("origin") {
        let host = request.header("host").unwrap_or("");
        if !origin_allowed(origin.trim(), host.trim(), &policy.origins) {
            return Err(refuse(
                403,
                &format!("cross-origin WebSocket refused: Origin {origin} is not this site"),
            ));
        }
    }
    let subprotocol = choose_subprotocol(request, &policy.subprotocols);
    let mut response = Response::new(101)
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Accept", accept_key(key.unwrap_or("")));
    if let Some(protocol) = &subprotocol {
        response = response.header("Sec-WebSocket-Protocol", protocol.clone());
    }
    #[cfg(feature = "deflate")]
    let deflate = policy.compression.as_ref().and_then(|options| {
        let offers = request
            .header_fields()
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"sec-websocket-extensions"))
            .filter_map(|(_, value)| std::str::from_utf8(value).ok());
        super::deflate::accept_offer(offers, options)
    });
    #[cfg(feature = "deflate")]
    let deflate = deflate.map(|(agreed, answer)| {
        response = std::mem::replace(&mut response, Response::new(101))
            .header("Sec-WebSocket-Extensions", answer);
        agreed
    });
    Ok(Accepted {
        response,
        negotiated: Negotiated {
            subprotocol,
            #[cfg(feature = "deflate")]
            deflate,
        },
    })
}

/// The first protocol the client offers that the route speaks.
fn choose_subprotocol(request: &Request, supported: &[String]) -> Option<String> {
    if supported.is_empty() {
        return None;
    }
    let offered = request
        .header_fields()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"sec-websocket-protocol"))
        .flat_map(|(_, value)| value.split(|&b| b == b','))
        .filter_map(|token| std::str::from_utf8(token.trim_ascii()).ok());
    for token in offered {
        if let Some(found) = supported.iter().find(|p| p.as_str() == token) {
            return Some(found.clone());
        }
    }
    None
}

/// Whether a page at `origin` may open a WebSocket on the server named `host` (the
/// `Host` field). Same origin: the scheme is `http` or `https` and the authority is the
/// host's, port included (a default port may be written or not). `null` (a sandboxed
/// page, a `file://` page) is never the server's origin.
pub(crate) fn origin_allowed(origin: &str, host: &str, policy: &OriginPolicy) -> bool {
    match policy {
        OriginPolicy::Any => true,
        OriginPolicy::SameOrigin => same_origin(origin, host),
        OriginPolicy::AllowList(allowed) => {
            same_origin(origin, host) || allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
        }
    }
}

fn same_origin(origin: &str, host: &str) -> bool {
    let origin = origin.to_ascii_lowercase();
    let (default_port, authority) = if let Some(rest) = origin.strip_prefix("http://") {
        (":80", rest)
    } else if let Some(rest) = origin.strip_prefix("https://") {
        (":443", rest)
    } else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    if authority.is_empty() || host.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return false;
    }
    let strip = |a: &str| {
        a.strip_suffix(default_port)
            .map(str::to_owned)
            .unwrap_or(a.to_owned())
    };
    strip(authority) == strip(&host)
}

/// A client's handshake request for `path` on `host` (`host[:port]` as it goes in the
/// `Host` field), with its key, the subprotocols it offers and other fields (`Origin`,
/// `Sec-WebSocket-Extensions`), checked by the caller.
pub(crate) fn client_request(
    host: &str,
    path: &str,
    key: &str,
    subprotocols: &[String],
    fields: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !subprotocols.is_empty() {
        out.push_str("Sec-WebSocket-Protocol: ");
        out.push_str(&subprotocols.join(", "));
        out.push_str("\r\n");
    }
    for (name, value) in fields {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes in base64.
pub(crate) fn new_key(random: &mut super::mask::MaskSource) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random.next_u64().to_ne_bytes());
    bytes[8..].copy_from_slice(&random.next_u64().to_ne_bytes());
    BASE64.encode(bytes)
}

/// The most bytes a server's handshake answer may take.
pub(crate) const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Checks a server's answer to the client's handshake (the head, up to its blank line)
/// against what the client offered. Returns what it agreed.
///
/// # Errors
///
/// What is wrong, for [`WebSocketConnectError::Handshake`](super::WebSocketConnectError::Handshake).
pub(crate) fn check_response(
    head: &[u8],
    key: &str,
    subprotocols: &[String],
    #[cfg(feature = "deflate")] compression: Option<&super::deflate::DeflateOptions>,
) -> Result<Negotiated, String> {
    let limits = HeadLimits {
        max_bytes: MAX_RESPONSE_HEAD,
        max_headers: 64,
    };
    let response = parse_response_head(head, limits).map_err(|e| match e {
        HeadError::TooLarge(why) => why.to_owned(),
        HeadError::Malformed(why) => format!("malformed response: {why}"),
    })?;
    if response.status != 101 {
        return Err(format!(
            "the server answered {} {} instead of 101",
            response.status,
            String::from_utf8_lossy(response.fields.span(&response.reason))
        ));
    }
    let field = |name: &str| {
        let value = response.fields.first(name)?;
        std::str::from_utf8(value).ok().map(str::trim)
    };
    let has_token = |name: &str, token: &str| response.fields.lists_token(name, token);
    if !has_token("upgrade", "websocket") || !has_token("connection", "upgrade") {
        return Err("the 101 lacks Upgrade: websocket or Connection: Upgrade".into());
    }
    if field("sec-websocket-accept") != Some(accept_key(key).as_str()) {
        return Err("Sec-WebSocket-Accept does not match the key".into());
    }
    let mut negotiated = Negotiated::default();
    if let Some(answer) = field("sec-websocket-extensions") {
        #[cfg(feature = "deflate")]
        if let Some(options) = compression {
            negotiated.deflate = Some(super::deflate::accept_answer(answer, options)?);
        }
        #[cfg(feature = "deflate")]
        let offered = compression.is_some();
        #[cfg(not(feature = "deflate"))]
        let offered = false;
        if !offered {
            return Err(format!(
                "the server chose extension {answer:?}, not offered"
            ));
        }
    }
    negotiated.subprotocol = match field("sec-websocket-protocol") {
        None => None,
        Some(chosen) if subprotocols.iter().any(|p| p == chosen) => Some(chosen.to_owned()),
        Some(chosen) => {
            return Err(format!(
                "the server chose subprotocol {chosen}, not offered"
            ));
        }
    };
    Ok(negotiated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_sample_key_gives_the_rfc_accept_value() {
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn same_origin_compares_scheme_host_and_port() {
        let same = OriginPolicy::SameOrigin;
        assert!(origin_allowed("http://example.com", "example.com", &same));
        assert!(origin_allowed("https://Example.com", "example.com", &same));
        assert!(origin_allowed(
            "http://example.com:80",
            "example.com",
            &same
        ));
        assert!(origin_allowed(
            "http://example.com",
            "example.com:80",
            &same
        ));
        assert!(origin_allowed(
            "http://127.0.0.1:8888",
            "127.0.0.1:8888",
            &same
        ));
        assert!(!origin_allowed(
            "http://127.0.0.1:8889",
            "127.0.0.1:8888",
            &same
        ));
        assert!(!origin_allowed("http://evil.example", "example.com", &same));
        assert!(!origin_allowed("null", "example.com", &same));
        assert!(!origin_allowed("file://example.com", "example.com", &same));
        assert!(!origin_allowed("http://example.com", "", &same));
        let list = OriginPolicy::AllowList(vec!["https://app.example".into()]);
        assert!(origin_allowed("https://APP.example", "api.example", &list));
        assert!(!origin_allowed(
            "https://other.example",
            "api.example",
            &list
        ));
        assert!(origin_allowed(
            "anything",
            "api.example",
            &OriginPolicy::Any
        ));
    }

    fn request(extra: &str) -> Request {
        let head = format!(
            "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
        );
        Request::parse(head.as_bytes()).unwrap()
    }

    #[test]
    fn a_valid_request_is_accepted_with_the_first_offered_protocol_the_route_speaks() {
        let policy = HandshakePolicy {
            subprotocols: vec!["superchat".into(), "chat".into()],
            ..HandshakePolicy::default()
        };
        let accepted = check_request(
            &request("Sec-WebSocket-Protocol: chat, superchat\r\n"),
            &policy,
        )
        .unwrap();
        assert_eq!(accepted.negotiated.subprotocol.as_deref(), Some("chat"));
        assert_eq!(accepted.response.status(), 101);
        assert_eq!(
            accepted.response.get_header("Sec-WebSocket-Accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        let no_match =
            check_request(&request("Sec-WebSocket-Protocol: mqtt\r\n"), &policy).unwrap();
        assert_eq!(no_match.negotiated.subprotocol, None);
        assert_eq!(no_match.response.get_header("Sec-WebSocket-Protocol"), None);
    }

    fn check(head: &[u8], key: &str) -> Result<Option<String>, String> {
        check_response(
            head,
            key,
            &[],
            #[cfg(feature = "deflate")]
            None,
        )
        .map(|n| n.subprotocol)
    }

    #[test]
    fn the_client_checks_the_servers_answer() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good =
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(check(good, key), Ok(None));
        let wrong_key = check(good, "AAAAAAAAAAAAAAAAAAAAAA==");
        assert!(wrong_key.unwrap_err().contains("does not match"));
        let refused = check(b"HTTP/1.1 403 Forbidden\r\n\r\n", key);
        assert!(refused.unwrap_err().contains("403"));
    }
}
