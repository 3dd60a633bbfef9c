//! Logs: JSON lines (or pretty for humans) through `tracing`, each request line carrying its
//! request id from the root span.
//!
//! Every line passes through [`redact`] on its way out, whatever wrote it (our events, the
//! request span's `http.target`, a library's message): resident ID numbers, mobile numbers,
//! bank-card numbers and bearer tokens are masked (PIPL: sensitive personal data never reaches
//! a log; ASVS 8.3.1). Masking the formatted line rather than each field catches numbers inside
//! messages, paths and query strings alike.

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber once, writing to standard error; later calls (tests) are
/// no-ops.
pub fn init(settings: &LogSettings) {
    init_with_writer(settings, io::stderr);
}

/// As [`init`], writing (redacted) lines to `writer` — tests capture the log this way.
pub fn init_with_writer<W>(settings: &LogSettings, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(Redacting(writer));
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The request span: what a log line needs to be traced to its request (method, path and
/// query, client address, request id; status and error when the answer is an error).
/// `tracing-actix-web`'s default span also works out the route (a second routing pass), host,
/// scheme, user agent and an OpenTelemetry name, and records the status of every answer; with
/// the JSON layer re-serialising the span's fields on each record, that was 8 % of a claim-list
/// request's CPU for fields no line used (BENCHMARKS.md, issue 20).
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .copied();
        let client_ip = request
            .connection_info()
            .realip_remote_addr()
            .unwrap_or("")
            .to_owned();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.target = %request.uri().path_and_query().map(|p| p.as_str()).unwrap_or(""),
            http.client_ip = %client_ip,
            request_id = %request_id.map(|id| id.to_string()).unwrap_or_default(),
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        // A success is not recorded: no line is written in the span after its answer.
        if matches!(outcome, Ok(res) if !res.status().is_server_error() && res.response().error().is_none())
        {
            return;
        }
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// A [`MakeWriter`] whose writers mask personal numbers and tokens in what passes through.
#[derive(Clone, Debug)]
pub struct Redacting<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }
}

/// Writes [`redact`]ed text to the inner writer. The formatter writes each event as one
/// buffer, so a number is never split across two writes.
#[derive(Debug)]
pub struct RedactingWriter<W>(W);

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Masks, anywhere in `text`:
/// - a run of 15 to 19 digits, or 17 digits and an `X` (ID numbers, 15-digit old ID numbers,
///   bank cards): first 4 and last 4 kept at most (`6222***********0128`); card numbers written
///   in groups (`6222 0212 3456 7890 128`, `6222-0212-…`) likewise;
/// - a mobile number, 11 digits `1[3-9]…` (optionally after `86` / `+86`): `138****5678`;
/// - a JWT (`eyJ….….…`): `[token]`.
///
/// Runs are maximal: digits glued to letters or other digits on either side still count
/// (`id_number=150102198712061117&` is masked), but a longer run is not searched for shorter
/// numbers inside it beyond these lengths.
pub fn redact(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'e'
            && text[i..].starts_with("eyJ")
            && !is_token_byte_before(bytes, i)
            && let Some(end) = jwt_end(bytes, i)
        {
            out.push_str(&text[copied..i]);
            out.push_str("[token]");
            i = end;
            copied = end;
            continue;
        }
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()) {
            let (end, digits) = digit_run(bytes, i);
            if let Some(masked) = mask(&digits) {
                out.push_str(&text[copied..i]);
                out.push_str(&masked);
                copied = end;
            }
            i = end.max(i + 1);
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn is_token_byte_before(bytes: &[u8], i: usize) -> bool {
    i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b'-')
}

/// The end of a JWT starting at `start`: three base64url parts separated by dots.
fn jwt_end(bytes: &[u8], start: usize) -> Option<usize> {
    let is_b64 = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut i = start;
    for part in 0..3 {
        let from = i;
        while i < bytes.len() && is_b64(bytes[i]) {
            i += 1;
        }
        if i == from {
            return None;
        }
        if part < 2 {
            if i >= bytes.len() || bytes[i] != b'.' {
                return None;
            }
            i += 1;
        }
    }
    Some(i)
}

/// A run of digits from `start`: plain, with a trailing `X`/`x` (ID check character), or a
/// card number as printed — groups of 4 digits separated by single spaces or hyphens, the last
/// group 3 or 4 digits, 16 to 19 digits in all. Returns where it ends and its digits.
fn digit_run(bytes: &[u8], start: usize) -> (usize, String) {
    let group = |from: usize| {
        let mut end = from;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        end
    };
    let first_end = group(start);
    let mut end = first_end;
    let mut groups = vec![first_end - start];
    while end + 1 < bytes.len()
        && (bytes[end] == b' ' || bytes[end] == b'-')
        && bytes[end + 1].is_ascii_digit()
    {
        let next = group(end + 1);
        groups.push(next - end - 1);
        end = next;
    }
    let card_groups = |g: &[usize]| {
        let (last, init) = g.split_last().unwrap_or((&0, &[]));
        init.iter().all(|&n| n == 4) && (3..=4).contains(last)
    };
    if groups.len() > 1 {
        // Take the longest prefix of groups that reads as a card number, if any.
        for take in (2..=groups.len()).rev() {
            let prefix = &groups[..take];
            let digits: usize = prefix.iter().sum();
            if card_groups(prefix) && (16..=19).contains(&digits) {
                let stop = start + digits + (take - 1);
                let text: String = bytes[start..stop]
                    .iter()
                    .filter(|b| b.is_ascii_digit())
                    .map(|&b| char::from(b))
                    .collect();
                return (stop, text);
            }
        }
    }
    let mut i = first_end;
    let mut digits: String = bytes[start..first_end]
        .iter()
        .map(|&b| char::from(b))
        .collect();
    if digits.len() == 17 && i < bytes.len() && (bytes[i] == b'X' || bytes[i] == b'x') {
        digits.push('X');
        i += 1;
    }
    (i, digits)
}

/// The masked form of a run of digits that is a personal number, or `None`.
fn mask(digits: &str) -> Option<String> {
    let n = digits.len();
    let phone =
        |d: &str| d.len() == 11 && d.starts_with('1') && matches!(d.as_bytes()[1], b'3'..=b'9');
    if phone(digits) {
        return Some(format!("{}****{}", &digits[..3], &digits[7..]));
    }
    if n == 13 && digits.starts_with("86") && phone(&digits[2..]) {
        return Some(format!("86{}****{}", &digits[2..5], &digits[9..]));
    }
    if (15..=19).contains(&n) {
        return Some(format!(
            "{}{}{}",
            &digits[..4],
            "*".repeat(n - 8),
            &digits[n - 4..]
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn an_id_number_in_a_query_string_is_masked() {
        let line = r#"{"http.target":"/api/v1/members?id_number=150102198712061117&limit=1"}"#;
        let out = redact(line);
        assert!(!out.contains("150102198712061117"), "{out}");
        assert!(
            out.contains("id_number=1501**********1117&limit=1"),
            "{out}"
        );
    }

    #[test]
    fn an_id_number_with_a_check_letter_is_masked() {
        assert_eq!(redact("id 11010519491231002X."), "id 1101**********002X.");
        assert_eq!(redact("id 11010519491231002x"), "id 1101**********002X");
    }

    #[test]
    fn mobile_numbers_are_masked_with_or_without_the_country_code() {
        assert_eq!(redact("to 13812345678"), "to 138****5678");
        assert_eq!(redact("to +8613812345678"), "to +86138****5678");
        // Eleven digits that are no mobile number stay.
        assert_eq!(redact("n=12345678901"), "n=12345678901");
    }

    #[test]
    fn card_numbers_are_masked_plain_or_grouped() {
        assert_eq!(
            redact("card 6217000000000000004"),
            "card 6217***********0004"
        );
        assert!(!redact("card 6222 0212 3456 7890 128").contains("3456 7890"));
        assert!(!redact("card 6222-0212-3456-7890").contains("0212-3456"));
    }

    #[test]
    fn dates_times_ids_and_short_numbers_stay() {
        let line = r#"{"timestamp":"2026-12-05T11:02:13.123456Z","latency_ms":1234,"id":"01936f1c-8d2e-7c3a-9b1e-4f5a6b7c8d9e","date":"2025-01-02 12:30"}"#;
        assert_eq!(redact(line), line);
    }

    #[test]
    fn bearer_tokens_are_masked() {
        let line =
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwLTEifQ.c2lnbmF0dXJl rest";
        assert_eq!(redact(line), "Authorization: Bearer [token] rest");
    }

    #[test]
    fn non_ascii_text_survives() {
        assert_eq!(redact("张三 13812345678 李四"), "张三 138****5678 李四");
    }
}
