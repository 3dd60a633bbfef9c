//! Reading request bodies with a cap, so an oversized upload is refused while it streams, before
//! it is held in memory: [`read`] for `multipart/form-data` (what `wx.uploadFile` sends) with a
//! cap per field, [`read_body`] for a raw body. Both stop at the first chunk past the cap.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::web::{self, Bytes};
use futures_util::{Stream, StreamExt};
use serde_json::json;

use crate::error::ApiError;

/// Largest form field that is not a file, for [`read_form`].
const TEXT_LIMIT: usize = 4096;

/// One part of a form.
#[derive(Debug)]
pub struct Part {
    pub bytes: Vec<u8>,
    pub filename: Option<String>,
}

impl Part {
    /// The part as text (form fields), trimmed.
    pub fn text(&self, field: &str) -> Result<String, ApiError> {
        String::from_utf8(self.bytes.clone())
            .map(|s| s.trim().to_owned())
            .map_err(|_| ApiError::invalid_field(field, "不是有效的文本 / not valid UTF-8 text"))
    }
}

/// How large each part of a form may grow, and which parts it may have.
#[derive(Clone, Copy, Debug)]
pub enum Caps<'a> {
    /// Any field: files (parts with a filename) up to `file` bytes, the others up to `text`.
    ByKind { file: usize, text: usize },
    /// Only these fields, each with its own cap; any other is [`FormError::Unknown`].
    Named(&'a [(&'a str, usize)]),
}

impl Caps<'_> {
    fn of(&self, name: &str, is_file: bool) -> Option<usize> {
        match self {
            Caps::ByKind { file, text } => Some(if is_file { *file } else { *text }),
            Caps::Named(fields) => fields.iter().find(|(n, _)| *n == name).map(|(_, cap)| *cap),
        }
    }
}

/// Why a form could not be read. Each form answers these in its own words (see [`read_form`]).
#[derive(Debug)]
pub enum FormError {
    /// Not a readable multipart body, or it broke off (`field`: inside that part).
    Unreadable {
        field: Option<String>,
        cause: String,
    },
    /// A part grew past its cap.
    TooLarge { field: String, limit: usize },
    /// A field came twice (refused before its bytes are read).
    Duplicate(String),
    /// A field the form does not have (refused before its bytes are read).
    Unknown(String),
}

/// A form as it arrived: each field once, in the order sent.
#[derive(Debug, Default)]
pub struct Form {
    pub parts: Vec<(String, Part)>,
}

impl Form {
    /// Takes a field out of the form.
    pub fn take(&mut self, name: &str) -> Option<Part> {
        let at = self.parts.iter().position(|(n, _)| n == name)?;
        Some(self.parts.remove(at).1)
    }
}

/// What a capped read found: the whole stream, or a chunk that would pass the cap.
enum Capped {
    Whole(Vec<u8>),
    Over,
}

/// The one capped reader: collects a stream of chunks, stopping at the first that would make it
/// longer than `limit`.
async fn capped<S, E>(mut stream: S, limit: usize) -> Result<Capped, E>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if bytes.len() + chunk.len() > limit {
            return Ok(Capped::Over);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Capped::Whole(bytes))
}

/// Reads every part of a form, each under its cap from `caps`.
pub async fn read(mut payload: Multipart, caps: Caps<'_>) -> Result<Form, FormError> {
    let mut form = Form::default();
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| FormError::Unreadable {
            field: None,
            cause: e.to_string(),
        })?;
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(str::to_owned);
        let limit = caps
            .of(&name, filename.is_some())
            .ok_or_else(|| FormError::Unknown(name.clone()))?;
        if form.parts.iter().any(|(n, _)| *n == name) {
            return Err(FormError::Duplicate(name));
        }
        let read = capped(&mut field, limit)
            .await
            .map_err(|e| FormError::Unreadable {
                field: Some(name.clone()),
                cause: e.to_string(),
            })?;
        let Capped::Whole(bytes) = read else {
            return Err(FormError::TooLarge { field: name, limit });
        };
        form.parts.push((name, Part { bytes, filename }));
    }
    Ok(form)
}

/// Reads a form of any fields: files (parts with a filename) up to `max_file` bytes, others up
/// to 4 KiB. Refusals: 400 for an unreadable or broken body, 413 for a part past its cap, 422
/// `invalid_request` for a field sent twice.
pub async fn read_form(
    payload: Multipart,
    max_file: usize,
) -> Result<HashMap<String, Part>, ApiError> {
    let caps = Caps::ByKind {
        file: max_file,
        text: TEXT_LIMIT,
    };
    let form = read(payload, caps).await.map_err(|e| match e {
        FormError::Unreadable { field: None, cause } => ApiError::BadRequest {
            message: format!("表单无法读取 / unreadable form: {cause}"),
            details: json!({}),
        },
        FormError::Unreadable {
            field: Some(field),
            cause,
        } => ApiError::BadRequest {
            message: format!("上传中断 / the upload broke off: {cause}"),
            details: json!({ "field": field }),
        },
        FormError::TooLarge { limit, .. } => ApiError::PayloadTooLarge { limit },
        FormError::Duplicate(field) => {
            ApiError::invalid_field(field, "字段重复 / the field appears twice")
        }
        // Cannot happen: `ByKind` gives every field a cap.
        FormError::Unknown(field) => ApiError::invalid_field(
            field.clone(),
            format!("不认识的字段 {field} / unknown field"),
        ),
    })?;
    Ok(form.parts.into_iter().collect())
}

/// A required part.
pub fn required<'a>(parts: &'a HashMap<String, Part>, name: &str) -> Result<&'a Part, ApiError> {
    parts.get(name).ok_or_else(|| missing(name))
}

/// A required part, taken out of the form (no copy of a large file).
pub fn take(parts: &mut HashMap<String, Part>, name: &str) -> Result<Part, ApiError> {
    parts.remove(name).ok_or_else(|| missing(name))
}

fn missing(name: &str) -> ApiError {
    ApiError::invalid_field(name, format!("缺少字段 {name} / missing field {name}"))
}

/// Reads a whole raw body of at most `limit` bytes: 413 past it, 400 if it breaks off.
pub async fn read_body(payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    match capped(payload, limit).await {
        Ok(Capped::Whole(bytes)) => Ok(bytes),
        Ok(Capped::Over) => Err(ApiError::PayloadTooLarge { limit }),
        Err(e) => Err(ApiError::BadRequest {
            message: format!("请求内容不完整 / incomplete body: {e}"),
            details: json!({}),
        }),
    }
}

/// A file upload that was not taken (a roster, a settlement file), as the API answers it;
/// `what` names the stored file in the logged cause.
pub(super) fn submit_error(e: crate::service::import::SubmitError, what: &'static str) -> ApiError {
    use crate::service::import::SubmitError;
    match e {
        SubmitError::NotFound => ApiError::NotFound,
        SubmitError::Refused(problem) => problem.into(),
        SubmitError::Db(e) => e.into(),
        SubmitError::Storage(e) => ApiError::Internal(anyhow::Error::new(e).context(what)),
    }
}
