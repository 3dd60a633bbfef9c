//! The HTTP server's connections, and the refusals actix-http writes on them by itself.
//!
//! actix-http's HTTP/1 dispatcher answers a few requests before any service, middleware or
//! error handler sees them, with a bare status and `content-length: 0` (`h1/dispatcher.rs`):
//! `431` for a request head over its fixed 128 KiB buffer or with more than 96 headers, `400`
//! for a request line or head it cannot parse, `408` for a head not received within the client
//! request timeout, `500` for a body chunk the parser did not expect. None of it has a setting.
//! Each of them is followed by the connection's close.
//!
//! So every connection is served through [`Connection`], which rewrites that one head on its
//! way out into our error shape (`{"error":{"code","message","details"}}`, with a correct
//! `content-length` and `connection: close`). It recognises the head by what only the
//! framework writes: one of those statuses with no header but `content-length: 0`, `connection`
//! and `date` — every answer of ours passes [`crate::middleware::add_security_headers`] and
//! carries at least `x-content-type-options`. The hot path costs one comparison of a write's
//! first bytes: the head is parsed only when a write starts with one of those status lines.
//!
//! [`serve`] builds the server `HttpServer` would (same keep-alive, timeouts, half-close,
//! shutdown signal, worker count), with the connection wrapped: `HttpServer` offers no hook
//! around the stream.

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use actix_http::body::MessageBody;
use actix_http::{HttpService, KeepAlive, Protocol, Request, Response, StatusCode};
use actix_service::{IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, fn_service};
use actix_web::dev::{AppConfig, Server};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::middleware;

/// Seconds a stopping server gives requests in flight.
const SHUTDOWN_TIMEOUT_SECONDS: u64 = 10;

/// The statuses actix-http's dispatcher answers by itself without a body.
const BARE_STATUSES: [&[u8; 4]; 4] = [b"400 ", b"408 ", b"431 ", b"500 "];

/// The longest head of a bare answer looked at (status line, length, connection, date).
const MAX_BARE_HEAD: usize = 256;

/// Serves `app` (a factory of the application, as given to `HttpServer::new`) on `listener`,
/// as `HttpServer` would with its defaults, each connection wrapped in [`Connection`].
/// `workers` 0: one per core (actix-server's default).
pub fn serve<F, I, S, B>(listener: TcpListener, workers: usize, app: F) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let address = listener.local_addr()?;
    let mut builder = Server::build().shutdown_timeout(SHUTDOWN_TIMEOUT_SECONDS);
    if workers > 0 {
        builder = builder.workers(workers);
    }
    // Lets idle keep-alive connections close as soon as the server starts stopping.
    let stopping = builder.graceful_shutdown_signal();
    let host = address.to_string();
    let builder = builder.listen(format!("huzhu-{address}"), listener, move || {
        let stopping = stopping.clone();
        let host = host.clone();
        // `HttpServer`'s defaults (actix-web 4, `HttpServer::new` and `listen`).
        let http = HttpService::build()
            .graceful_shutdown_signal(move || {
                let stopping = stopping.clone();
                async move { stopping.notified().await }
            })
            .keep_alive(KeepAlive::default())
            .client_request_timeout(Duration::from_secs(5))
            .client_disconnect_timeout(Duration::from_secs(1))
            .h1_allow_half_closed(true)
            .local_addr(address)
            .finish(actix_service::map_config(
                app().into_factory().map_err(|e| {
                    let e: actix_web::Error = e.into();
                    e.error_response()
                }),
                // What `HttpServer` gives the app: plain HTTP, this address as the host
                // when a request names none.
                move |()| AppConfig::__priv_test_new(false, host.clone(), address),
            ));
        fn_service(|io: TcpStream| async move {
            let peer = io.peer_addr().ok();
            Ok::<_, actix_http::error::DispatchError>((Connection::new(io), Protocol::Http1, peer))
        })
        .and_then(http)
    })?;
    Ok(builder.run())
}

/// A client's connection: writes pass through untouched, except the framework's bare refusal
/// head, rewritten in our error shape (see the module documentation).
pub struct Connection<T> {
    io: T,
    /// Our answer in place of a bare one, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> Connection<T> {
    pub fn new(io: T) -> Self {
        Self {
            io,
            replacement: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> Connection<T> {
    /// Writes what is left of the replacement answer.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Connection<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Connection<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.drain(cx))?;
        if let Some((head_len, answer)) = replace_bare_refusal(buf) {
            // The bare head counts as written once our answer is held: flush and shutdown
            // write the rest of it first.
            this.replacement = Some((answer, 0));
            if let Poll::Ready(Err(e)) = this.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(head_len));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// When `buf` starts with a bare refusal head of actix-http's: the head's length and our
/// answer in its place. Anything else (every answer of ours): `None`, after looking at the
/// first 13 bytes only.
fn replace_bare_refusal(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    let status_code = buf.get(9..13)?;
    if !(buf.starts_with(b"HTTP/1.1 ") || buf.starts_with(b"HTTP/1.0 "))
        || !BARE_STATUSES.iter().any(|s| s.as_slice() == status_code)
    {
        return None;
    }
    let window = &buf[..buf.len().min(MAX_BARE_HEAD)];
    let end = window.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut empty = false;
    let mut date = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match (name, value.trim()) {
            ("content-length", "0") => empty = true,
            ("connection", _) => {}
            ("date", value) => date = Some(value),
            _ => return None,
        }
    }
    if !empty {
        return None;
    }
    let status = StatusCode::from_bytes(&status_code[..3]).ok()?;
    let body = serde_json::to_vec(&middleware::error_body(status, None)).ok()?;
    let mut answer = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in middleware::SECURITY_HEADERS {
        answer.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(date) = date {
        answer.push_str(&format!("date: {date}\r\n"));
    }
    answer.push_str("\r\n");
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(&body);
    Some((end + 4, answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARE_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\ndate: Sat, 05 Dec 2026 17:00:00 GMT\r\n\r\n";

    fn split(answer: &[u8]) -> (String, serde_json::Value) {
        let text = String::from_utf8(answer.to_vec()).expect("UTF-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .expect("content-length")
            .parse()
            .expect("a number");
        assert_eq!(length, body.len(), "{head}");
        (head.to_owned(), serde_json::from_str(body).expect("JSON"))
    }

    #[test]
    fn the_frameworks_bare_431_becomes_our_error_shape_closing_the_connection() {
        let (len, answer) = replace_bare_refusal(BARE_431).expect("recognised");
        assert_eq!(len, BARE_431.len());
        let (head, body) = split(&answer);
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        assert!(head.contains("\r\nx-content-type-options: nosniff\r\n"));
        assert!(head.contains("\r\ndate: Sat, 05 Dec 2026 17:00:00 GMT"));
        assert_eq!(body["error"]["code"], "headers_too_large");
        assert!(body["error"]["details"].is_object());
    }

    #[test]
    fn a_bare_400_without_connection_header_and_the_408_are_rewritten_too() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let (_, answer) = replace_bare_refusal(bare).expect("400");
        assert_eq!(split(&answer).1["error"]["code"], "bad_request");
        let bare = b"HTTP/1.0 408 Request Timeout\r\ncontent-length: 0\r\n\r\n";
        let (_, answer) = replace_bare_refusal(bare).expect("408");
        let (head, body) = split(&answer);
        assert!(head.starts_with("HTTP/1.0 408 "), "{head}");
        assert_eq!(body["error"]["code"], "request_timeout");
    }

    #[test]
    fn our_own_answers_pass_untouched() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-content-type-options: nosniff\r\n\r\n",
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 97\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"HTTP/1.1 4",
            b"",
        ] {
            assert!(
                replace_bare_refusal(answer).is_none(),
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
    }
}
