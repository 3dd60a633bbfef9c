//! Reading `multipart/form-data` (what `wx.uploadFile` sends) with a cap per part, so an
//! oversized upload is refused while it streams, before it is held in memory.

use std::collections::HashMap;

use actix_multipart::Multipart;
use futures_util::StreamExt;
use serde_json::json;

use crate::error::ApiError;

/// One part of a form.
#[derive(Debug)]
pub struct Part {
    pub bytes: Vec<u8>,
    pub filename: Option<String>,
}

impl Part {
    /// The part as text (form fields).
    pub fn text(&self, field: &str) -> Result<String, ApiError> {
        String::from_utf8(self.bytes.clone())
            .map(|s| s.trim().to_owned())
            .map_err(|_| ApiError::invalid_field(field, "不是有效的文本 / not valid UTF-8 text"))
    }
}

/// Reads every part; files (parts with a filename) may hold up to `max_file` bytes, other
/// fields up to 4 KiB. A part that grows past its cap is refused with 413.
pub async fn read_form(
    mut payload: Multipart,
    max_file: usize,
) -> Result<HashMap<String, Part>, ApiError> {
    let mut parts = HashMap::new();
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| ApiError::BadRequest {
            message: format!("表单无法读取 / unreadable form: {e}"),
            details: json!({}),
        })?;
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .map(str::to_owned);
        let limit = if filename.is_some() { max_file } else { 4096 };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest {
                message: format!("上传中断 / the upload broke off: {e}"),
                details: json!({ "field": name }),
            })?;
            if bytes.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        if parts
            .insert(name.clone(), Part { bytes, filename })
            .is_some()
        {
            return Err(ApiError::invalid_field(
                name,
                "字段重复 / the field appears twice",
            ));
        }
    }
    Ok(parts)
}

/// A required part.
pub fn required<'a>(parts: &'a HashMap<String, Part>, name: &str) -> Result<&'a Part, ApiError> {
    parts.get(name).ok_or_else(|| {
        ApiError::invalid_field(name, format!("缺少字段 {name} / missing field {name}"))
    })
}
