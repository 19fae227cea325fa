//! [`FinishedRequest`]: what an application's finish hooks are told of each answered
//! request.

use std::net::SocketAddr;
use std::time::Duration;

/// A request the application has answered, as its
/// [`on_finish`](crate::web::Application::on_finish) hooks see it: for access logs and
/// metrics (Tornado's `on_finish` and `log_request`).
///
/// # Examples
///
/// See [`Application::on_finish`](crate::web::Application::on_finish).
#[derive(Debug, Clone)]
pub struct FinishedRequest {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) peer: SocketAddr,
    pub(super) status: u16,
    pub(super) elapsed: Duration,
}

impl FinishedRequest {
    /// The request's method.
    ///
    /// # Examples
    ///
    /// See [`Application::on_finish`](crate::web::Application::on_finish).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request's path (without the query).
    ///
    /// # Examples
    ///
    /// See [`Application::on_finish`](crate::web::Application::on_finish).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The client's address.
    ///
    /// # Examples
    ///
    /// See [`Application::on_finish`](crate::web::Application::on_finish).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The response's status.
    ///
    /// # Examples
    ///
    /// See [`Application::on_finish`](crate::web::Application::on_finish).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// From the handler's call (the request head and body read) to the response being
    /// complete, on the loop's clock.
    ///
    /// # Examples
    ///
    /// See [`Application::on_finish`](crate::web::Application::on_finish).
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}
