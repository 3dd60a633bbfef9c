//! One error shape for everything: the framework's own refusals — a body over the cap, headers
//! too large, an unknown route, a wrong method, an unreadable body or query — answer
//! `{"error":{"code","message","details"}}` like every handler does.

use huzhu_tests::harness::{Backend, TestApp, spawn_app};
use serde_json::Value;

async fn app() -> TestApp {
    spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite always runs")
}

/// Status, content type and JSON body of a response (the body `Null` when it is not JSON).
async fn read(res: reqwest::Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn assert_shape(
    what: &str,
    (status, content_type, body): &(u16, String, Value),
    want: u16,
    code: &str,
) {
    assert_eq!(*status, want, "{what}: {body}");
    assert!(
        content_type.starts_with("application/json"),
        "{what}: content type {content_type:?}"
    );
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
    assert!(body["error"]["details"].is_object(), "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_body_over_the_cap_answers_413_in_the_error_shape() {
    let app = app().await;
    let body = vec![b' '; 300 * 1024];
    let res = app
        .client
        .post(app.url("/api/v1/simulations"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let answer = read(res).await;
    assert_shape(
        "POST /simulations 300 KiB",
        &answer,
        413,
        "payload_too_large",
    );
    assert_eq!(answer.2["error"]["details"]["limit_bytes"], 256 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_too_large_answer_431_in_the_error_shape() {
    let app = app().await;
    let res = app
        .client
        .get(app.url("/api/v1/schemes"))
        .header("x-padding", "a".repeat(20 * 1024))
        .send()
        .await
        .expect("request");
    assert_shape("20 KiB header", &read(res).await, 431, "headers_too_large");
    let mut req = app.client.get(app.url("/api/v1/schemes"));
    for i in 0..70 {
        req = req.header(format!("x-h{i}"), "1");
    }
    let res = req.send().await.expect("request");
    assert_shape("70 headers", &read(res).await, 431, "headers_too_large");
}

/// What came back on a raw connection.
struct RawAnswer {
    text: String,
    /// Whether the server closed the connection (rather than leaving it open until the
    /// client's time-out).
    closed: bool,
}

/// Sends `head` on a raw connection and reads the answer to the end (the server closes it).
async fn raw_exchange(app: &TestApp, head: String) -> RawAnswer {
    let port: u16 = app
        .address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        // The server may stop reading (and close) before the whole head is written.
        let _ = stream.write_all(head.as_bytes());
        let mut answer = Vec::new();
        let mut closed = false;
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
                // Reset after the answer (the rest of an oversized head was never read): closed.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            }
        }
        RawAnswer {
            text: String::from_utf8_lossy(&answer).into_owned(),
            closed,
        }
    })
    .await
    .expect("raw exchange")
}

/// A raw answer in the error shape: the status, JSON with `code`, a `content-length` that is
/// the body's, the security headers, and the connection closed after it.
fn assert_raw_shape(what: &str, answer: &RawAnswer, status: u16, code: &str) {
    let (head, body) = answer
        .text
        .split_once("\r\n\r\n")
        .unwrap_or((&answer.text, ""));
    assert!(
        head.starts_with(&format!("HTTP/1.1 {status} ")),
        "{what}: {}",
        head.chars().take(300).collect::<String>()
    );
    let head = head.to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("{what}: no content-length in {head}"));
    assert_eq!(length, body.len(), "{what}: content-length of {body:?}");
    assert!(
        head.contains("\r\ncontent-type: application/json"),
        "{what}: {head}"
    );
    assert!(
        head.contains("\r\nx-content-type-options: nosniff"),
        "{what}: {head}"
    );
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
    assert!(body["error"]["details"].is_object(), "{what}: {body}");
    assert!(answer.closed, "{what}: the connection stays open");
}

/// Past actix-http's own hard limits — a request head over 128 KiB (`MAX_BUFFER_SIZE`) or more
/// than 96 headers — the framework's dispatcher answers `431` itself, before any middleware or
/// error handler runs, without a body, and closes the connection; likewise `400` for a request
/// line it cannot parse. Each connection is served through `huzhu::wire::Connection`, which
/// rewrites those bare answers in our shape (SECURITY.md, "Limits").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_frameworks_own_limits_its_refusals_answer_in_the_error_shape_and_close() {
    let app = app().await;
    let big = format!("x-padding: {}\r\n", "a".repeat(140 * 1024));
    let many: String = (0..100).map(|i| format!("x-h{i}: 1\r\n")).collect();
    for (what, headers) in [("a 140 KiB header", big), ("100 headers", many)] {
        let answer = raw_exchange(
            &app,
            format!("GET /api/v1/schemes HTTP/1.1\r\nhost: 127.0.0.1\r\n{headers}\r\n"),
        )
        .await;
        assert_raw_shape(what, &answer, 431, "headers_too_large");
    }
    for (what, head) in [
        ("a garbage request line", "this is not http\r\n\r\n"),
        (
            "a header line without a colon",
            "GET /api/v1/schemes HTTP/1.1\r\nhost: 127.0.0.1\r\nno colon here\r\n\r\n",
        ),
    ] {
        let answer = raw_exchange(&app, head.to_owned()).await;
        assert_raw_shape(what, &answer, 400, "bad_request");
    }
    // A head not finished within the client request timeout (5 s): 408.
    let answer = raw_exchange(
        &app,
        "GET /api/v1/schemes HTTP/1.1\r\nhost: 127.0.0.1\r\n".to_owned(),
    )
    .await;
    assert_raw_shape("a head left unfinished", &answer, 408, "request_timeout");
    // Just under the framework's limit, our cap answers in the error shape.
    let answer = raw_exchange(
        &app,
        format!(
            "GET /api/v1/schemes HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nx-padding: {}\r\n\r\n",
            "a".repeat(100 * 1024)
        ),
    )
    .await;
    assert_raw_shape("a 100 KiB header", &answer, 431, "headers_too_large");
    // A sound request on the same kind of connection is answered as ever.
    let answer = raw_exchange(
        &app,
        "GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n".to_owned(),
    )
    .await;
    assert!(
        answer.text.starts_with("HTTP/1.1 200 "),
        "{:.300}",
        answer.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_wrong_methods_answer_in_the_error_shape() {
    let app = app().await;
    for path in ["/nothing-here", "/api/v1/nothing-here", "/api/v2/members"] {
        let res = app.client.get(app.url(path)).send().await.expect("request");
        assert_shape(path, &read(res).await, 404, "not_found");
    }
    for (method, path) in [
        (reqwest::Method::DELETE, "/api/v1/members"),
        (reqwest::Method::PUT, "/api/v1/simulations"),
        (reqwest::Method::POST, "/healthz"),
    ] {
        let what = format!("{method} {path}");
        let res = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .expect("request");
        assert_shape(&what, &read(res).await, 405, "method_not_allowed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_bodies_queries_and_paths_answer_in_the_error_shape() {
    let app = app().await;
    let token = app.login("admin").await;
    // Not JSON at all, and invalid UTF-8.
    let res = app
        .client
        .post(app.url("/api/v1/organisations"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(vec![0xff, 0xfe, b'{'])
        .send()
        .await
        .expect("request");
    assert_shape("invalid UTF-8 body", &read(res).await, 400, "bad_request");
    // A JSON operation sent a form.
    let res = app
        .client
        .post(app.url("/api/v1/organisations"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .expect("request");
    assert_shape("wrong content type", &read(res).await, 400, "bad_request");
    // A query that does not parse.
    let res = app
        .client
        .get(app.url("/api/v1/claims?limit=many"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_shape("bad query", &read(res).await, 422, "invalid_request");
    // A path that cannot name anything (bad percent-encoding, traversal).
    for path in [
        "/api/v1/members/%ff%fe",
        "/api/v1/members/..%2f..%2fetc%2fpasswd",
    ] {
        let res = app
            .client
            .get(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .expect("request");
        assert_shape(path, &read(res).await, 404, "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_the_outage_answer_on_every_operation() {
    let doc = huzhu::openapi::document();
    let json = serde_json::to_value(&doc).expect("document");
    let mut missing = Vec::new();
    for (path, item) in json["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            if op["operationId"] == "healthz" {
                continue;
            }
            if op["responses"].get("503").is_none() {
                missing.push(format!("{method} {path}"));
            }
        }
    }
    assert!(missing.is_empty(), "no 503 documented on {missing:?}");
    let description = json["info"]["description"].as_str().unwrap_or_default();
    for status in ["405", "413", "431"] {
        assert!(
            description.contains(status),
            "the document's description names {status}"
        );
    }
}
