//! The one place uploaded image bytes are judged: claim materials (ID cards, settlement slips,
//! invoices…) photographed on the phone, and the ID card photos and hand-drawn signature of a
//! payment authorisation.
//!
//! Pure: bytes in, a safe stored image + thumbnail + hashes out (or the upload itself, judged
//! and kept byte for byte), or a [`PhotoError`] that tells the worker what to do. No I/O.
//!
//! Order of the checks, cheapest and safest first:
//! 1. size (empty, over [`PhotoLimits::max_bytes`]);
//! 2. type, from the magic bytes only (never the file name or the client's content type):
//!    JPEG, PNG and WebP are recognised; HEIC/AVIF, PDF, SVG/XML, GIF, BMP, TIFF, ZIP/Office,
//!    video, text and anything else are refused, each with its own code and message (or all
//!    as `file_type_not_allowed`, see [`RefusedTypes`]);
//! 3. structure: the container must be complete (JPEG end-of-image marker reached by walking the
//!    segments, PNG `IEND` chunk, WebP RIFF length) — `image` would silently decode a truncated
//!    JPEG;
//! 4. dimensions from the header, **before** decoding (decompression bombs);
//! 5. decoding under explicit [`image::Limits`], applying the EXIF orientation;
//! 6. re-encoding: JPEG (quality 85) for JPEG and WebP uploads, PNG for PNG uploads. The encoders
//!    write no EXIF/GPS/XMP/ICC/comments, and nothing that followed the image in the upload
//!    (an appended ZIP…) survives;
//! 7. a JPEG thumbnail, the SHA-256 of the original bytes and a perceptual (gradient) hash of
//!    the upright image.
//!
//! Each use brings its [`PhotoRules`] (size and dimension limits, accepted kinds, how refused
//! types are answered, whether the header is read before the structure is walked, whether a
//! blank image is refused, the wording) and picks its treatment: [`process_with`] decodes and
//! re-encodes (steps 1–7: what is stored is ours), [`check_with`] keeps the upload byte for byte
//! (steps 1, 2 and 4, then a decode only to refuse a blank signature). The presets say which
//! rule gives each endpoint the answers it has always given: [`PhotoRules::claim_material`],
//! [`PhotoRules::ID_CARD_PHOTO`], [`PhotoRules::SIGNATURE`].

use std::io::Cursor;

use image::codecs::png::PngEncoder;
use image::{
    DynamicImage, ImageDecoder, ImageEncoder, ImageError, ImageFormat, ImageReader, Limits,
    RgbImage, RgbaImage,
};
use image_hasher::{HashAlg, HasherConfig};
use sha2::{Digest, Sha256};

/// JPEG quality of the stored copy of a JPEG or WebP upload.
pub const STORED_JPEG_QUALITY: u8 = 85;
/// JPEG quality of thumbnails.
pub const THUMBNAIL_JPEG_QUALITY: u8 = 80;

/// Largest [`hash_distance`] (in bits, of 64) at which two photos are taken to show the same
/// document and are flagged to reviewers as a possible duplicate.
///
/// Measured on synthetic documents (see the tests): the same bill re-encoded at quality 40,
/// scaled 85–130 %, saved as PNG or EXIF-rotated is 0 bits away; cropped by 2 % with changed
/// light (a crude re-photograph) 5 bits; a different layout 26–32 bits; the same bill sideways
/// *without* applying EXIF 36 bits. `build-notes.md` reports 1–3 bits for real re-photographs and
/// 22+ for unrelated documents. 8 leaves room for real re-photos (angle, light, framing) with a
/// wide margin to unrelated documents.
///
/// Limitation: two slips printed from the **same template** (same hospital, other patient) are
/// only 3–5 bits apart at 8 × 8, as close as a re-photograph. A match is a hint for the reviewer
/// to compare the two photos, never an automatic refusal.
pub const SAME_DOCUMENT_MAX_DISTANCE: u32 = 8;

/// Limits applied to every upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhotoLimits {
    /// Largest upload accepted, in bytes.
    pub max_bytes: usize,
    /// Largest width accepted, in pixels, as stored in the file (before orientation).
    pub max_width: u32,
    /// Largest height accepted, in pixels, as stored in the file (before orientation).
    pub max_height: u32,
    /// Largest width × height accepted.
    pub max_pixels: u64,
    /// Longest edge of the thumbnail, in pixels (smaller images are not enlarged).
    pub thumbnail_edge: u32,
    /// Most memory the decoder may use for one image; `None`: 8 bytes per accepted pixel
    /// (16-bit RGBA), at least 64 MiB.
    pub max_decode_bytes: Option<u64>,
}

impl PhotoLimits {
    /// 15 MiB, 8000 × 8000 px at most, 40 megapixels at most, 320 px thumbnails.
    pub const DEFAULT: PhotoLimits = PhotoLimits {
        max_bytes: 15 * 1024 * 1024,
        max_width: 8000,
        max_height: 8000,
        max_pixels: 40_000_000,
        thumbnail_edge: 320,
        max_decode_bytes: None,
    };
}

impl Default for PhotoLimits {
    /// [`PhotoLimits::DEFAULT`].
    fn default() -> Self {
        PhotoLimits::DEFAULT
    }
}

/// How a type that is not accepted is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedTypes {
    /// Each by what it looks like (`file_type_heic`, `file_type_pdf`, …): the worker is told
    /// how to fix it.
    ByKind,
    /// All as `file_type_not_allowed`, naming the accepted kinds.
    NotAllowed,
}

/// The language of the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wording {
    /// Chinese, telling the worker what to do ([`PhotoError::message_zh`]).
    Worker,
    /// Chinese / English, as the payment authorisation screen has always put it — for the
    /// refusals its own judge made (empty, too large, type, unreadable header, a side over the
    /// limit, blank); the rest keep the worker's wording, which is what that screen has shown
    /// for them since its photos were re-encoded here.
    Bilingual,
}

/// How one use judges its uploads (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhotoRules {
    pub limits: PhotoLimits,
    /// The kinds accepted; any other is refused as [`RefusedTypes`] says.
    pub accepted: &'static [PhotoKind],
    pub refused_types: RefusedTypes,
    /// Read the dimensions (and check each side) before walking the structure: a file cut
    /// inside its header is then `image_unreadable` rather than `image_truncated`, and a side
    /// over the limit is reported even when the file is also cut short. The pixel count is
    /// checked after the walk either way.
    pub header_first: bool,
    /// Refuse an image whose every pixel looks the same (a signature pad without a stroke).
    pub refuse_blank: bool,
    pub wording: Wording,
}

impl PhotoRules {
    /// Claim materials: JPEG, PNG or WebP, each refused type named by its code, the structure
    /// walked before the header is trusted, in the worker's wording.
    pub const fn claim_material(limits: PhotoLimits) -> PhotoRules {
        PhotoRules {
            limits,
            accepted: &[PhotoKind::Jpeg, PhotoKind::Png, PhotoKind::Webp],
            refused_types: RefusedTypes::ByKind,
            header_first: false,
            refuse_blank: false,
            wording: Wording::Worker,
        }
    }

    /// The ID card photos of a payment authorisation (re-encoded before they are stored): what
    /// that endpoint has always answered — 8 MiB, JPEG or PNG only (WebP too is
    /// `file_type_not_allowed`), the header and each side (8000 px) checked before the
    /// structure and the pixel count (40 megapixels) after it, bilingual.
    pub const ID_CARD_PHOTO: PhotoRules = PhotoRules {
        limits: PhotoLimits {
            max_bytes: 8 * 1024 * 1024,
            ..PhotoLimits::DEFAULT
        },
        accepted: &[PhotoKind::Jpeg, PhotoKind::Png],
        refused_types: RefusedTypes::NotAllowed,
        header_first: true,
        refuse_blank: false,
        wording: Wording::Bilingual,
    };

    /// The hand-drawn signature of a payment authorisation, kept byte for byte (its SHA-256 is
    /// recorded): 8 MiB, PNG only, 8000 px a side with no pixel count of its own, decoded under
    /// 300 MiB only to refuse a blank pad, bilingual.
    pub const SIGNATURE: PhotoRules = PhotoRules {
        limits: PhotoLimits {
            max_bytes: 8 * 1024 * 1024,
            max_pixels: 8000 * 8000,
            // 8000 × 8000 RGBA is 256 MB.
            max_decode_bytes: Some(300 * 1024 * 1024),
            ..PhotoLimits::DEFAULT
        },
        accepted: &[PhotoKind::Png],
        refused_types: RefusedTypes::NotAllowed,
        header_first: true,
        refuse_blank: true,
        wording: Wording::Bilingual,
    };

    /// What the person on the phone reads about a refusal under these rules.
    pub fn message(&self, error: &PhotoError) -> String {
        match self.wording {
            Wording::Worker => error.message_zh(),
            Wording::Bilingual => bilingual_message(error, &self.limits),
        }
    }
}

/// The image types recognised (each use says which it accepts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PhotoKind {
    /// JPEG (`FF D8 FF`).
    Jpeg,
    /// PNG (`89 50 4E 47 0D 0A 1A 0A`).
    Png,
    /// WebP (`RIFF….WEBP`); re-encoded as JPEG.
    Webp,
}

impl PhotoKind {
    /// What people call it.
    pub fn name(self) -> &'static str {
        match self {
            PhotoKind::Jpeg => "JPEG",
            PhotoKind::Png => "PNG",
            PhotoKind::Webp => "WebP",
        }
    }

    /// MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            PhotoKind::Jpeg => "image/jpeg",
            PhotoKind::Png => "image/png",
            PhotoKind::Webp => "image/webp",
        }
    }

    /// File extension chosen by the server (never the client's).
    pub fn extension(self) -> &'static str {
        match self {
            PhotoKind::Jpeg => "jpg",
            PhotoKind::Png => "png",
            PhotoKind::Webp => "webp",
        }
    }

    fn format(self) -> ImageFormat {
        match self {
            PhotoKind::Jpeg => ImageFormat::Jpeg,
            PhotoKind::Png => ImageFormat::Png,
            PhotoKind::Webp => ImageFormat::WebP,
        }
    }
}

/// What the header says, read without decoding any pixels (see [`inspect`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhotoHeader {
    /// Type, from the magic bytes.
    pub kind: PhotoKind,
    /// Width as stored in the file (before orientation).
    pub width: u32,
    /// Height as stored in the file (before orientation).
    pub height: u32,
}

/// An upload that passed every check, ready for object storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessedPhoto {
    /// Type of [`stored`](Self::stored): JPEG for photos (JPEG and WebP uploads), PNG stays PNG.
    pub kind: PhotoKind,
    /// Type of the upload as sniffed from its bytes.
    pub source_kind: PhotoKind,
    /// The re-encoded image to store: orientation applied, no metadata (EXIF, GPS, XMP, ICC,
    /// comments), nothing after the end of the image.
    pub stored: Vec<u8>,
    /// Width of the stored image (after orientation).
    pub width: u32,
    /// Height of the stored image (after orientation).
    pub height: u32,
    /// JPEG thumbnail whose longest edge is [`PhotoLimits::thumbnail_edge`] (or the image's own,
    /// if smaller).
    pub thumbnail: Vec<u8>,
    /// Width of the thumbnail.
    pub thumbnail_width: u32,
    /// Height of the thumbnail.
    pub thumbnail_height: u32,
    /// SHA-256 (lowercase hex) of the original upload, byte for byte: exact duplicates.
    pub sha256: String,
    /// `image_hasher` gradient hash (8 × 8 = 64 bits) of the upright image, as 16 lowercase hex
    /// digits; compare with [`hash_distance`].
    pub perceptual_hash: String,
    /// Every pixel looks the same (fully transparent pixels alike whatever their colour
    /// channels say): a signature pad submitted without a stroke, a blank page.
    pub blank: bool,
}

/// Why an upload is refused. Each has a stable [`code`](Self::code) and a Chinese message
/// telling the worker what to do ([`message_zh`](Self::message_zh)).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    /// Nothing was uploaded.
    #[error("the file is empty")]
    Empty,
    /// More bytes than [`PhotoLimits::max_bytes`].
    #[error("the file is larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Not a JPEG, PNG or WebP image. `detected` is one of `heic`, `avif`, `pdf`, `svg`, `gif`,
    /// `bmp`, `tiff`, `zip`, `video`, `text`, `unknown`.
    #[error("not an accepted image type (detected: {detected})")]
    UnsupportedType {
        /// What the bytes look like.
        detected: &'static str,
    },
    /// A recognised or unrecognised type this use does not accept
    /// ([`RefusedTypes::NotAllowed`], or WebP where only JPEG and PNG are).
    #[error("not an accepted image type")]
    NotAllowed {
        /// What is accepted, for the message.
        accepted: &'static [PhotoKind],
    },
    /// The header (dimensions) cannot be read, or — for an image kept as uploaded — nor can the
    /// pixels.
    #[error("the image cannot be read")]
    Unreadable,
    /// The file stops before the end of the image (interrupted upload).
    #[error("the image is incomplete")]
    Truncated,
    /// Width, height or pixel count over the limits (read from the header, before decoding).
    #[error("the image is {width}×{height}, over the limits")]
    DimensionsTooLarge {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
    },
    /// The header is fine but the pixels cannot be decoded (while re-encoding).
    #[error("the image cannot be decoded")]
    Undecodable,
    /// Every pixel looks the same, where [`PhotoRules::refuse_blank`] says so.
    #[error("the image is blank")]
    Blank,
}

impl PhotoError {
    /// Stable snake_case code for the client. Refused types all start with `file_type_`
    /// (`file_type_heic`, `file_type_pdf`, …, `file_type_not_allowed` for unrecognised bytes).
    pub fn code(&self) -> &'static str {
        match self {
            PhotoError::Empty => "file_empty",
            PhotoError::TooLarge { .. } => "file_too_large",
            PhotoError::UnsupportedType { detected } => match *detected {
                "heic" => "file_type_heic",
                "avif" => "file_type_avif",
                "pdf" => "file_type_pdf",
                "svg" => "file_type_svg",
                "gif" => "file_type_gif",
                "bmp" => "file_type_bmp",
                "tiff" => "file_type_tiff",
                "zip" => "file_type_zip",
                "video" => "file_type_video",
                "text" => "file_type_text",
                _ => "file_type_not_allowed",
            },
            PhotoError::NotAllowed { .. } => "file_type_not_allowed",
            PhotoError::Truncated => "image_truncated",
            PhotoError::DimensionsTooLarge { .. } => "image_too_large",
            PhotoError::Unreadable | PhotoError::Undecodable => "image_unreadable",
            PhotoError::Blank => "signature_blank",
        }
    }

    /// What the worker reads on the phone: what went wrong and what to do.
    pub fn message_zh(&self) -> String {
        const RETAKE: &str = "请拍照或截图后上传 JPEG、PNG 图片";
        match self {
            PhotoError::Empty => "文件是空的，请重新拍照或选择照片后上传".into(),
            PhotoError::TooLarge { limit } => format!(
                "照片不能超过 {} MB，请不要勾选“原图”，或截图后重新上传",
                limit / (1024 * 1024)
            ),
            PhotoError::UnsupportedType { detected } => match *detected {
                "heic" | "avif" => {
                    "这是 HEIC 格式的照片（苹果手机默认格式），暂不支持：请在相机设置中选择“兼容性最佳”或截图后上传 JPEG".into()
                }
                "pdf" => format!("这是 PDF 文件，不是照片：{RETAKE}"),
                "svg" => format!("这是 SVG/XML 文件，不是照片：{RETAKE}"),
                "gif" => format!("不支持 GIF 动图：{RETAKE}"),
                "bmp" | "tiff" => format!("不支持 BMP、TIFF 格式：{RETAKE}"),
                "zip" => format!("这是压缩包或 Word/Excel 文档，不是照片：请逐张{RETAKE}"),
                "video" => format!("这是视频文件，不是照片：{RETAKE}"),
                "text" => format!("这是文本文件（可能只是改了扩展名），不是照片：{RETAKE}"),
                _ => format!("无法识别的文件，只接受 JPEG、PNG、WebP 图片：{RETAKE}"),
            },
            PhotoError::NotAllowed { accepted } => format!(
                "只接受 {} 图片，请拍照或截图后重新上传",
                names(accepted, "、")
            ),
            PhotoError::Truncated => {
                "照片没有上传完整，请检查网络后重新上传".into()
            }
            PhotoError::DimensionsTooLarge { width, height } => format!(
                "照片尺寸 {width}×{height} 过大，请不要勾选“原图”或关闭超高像素模式，或截图后重新上传"
            ),
            PhotoError::Unreadable | PhotoError::Undecodable => {
                "照片已损坏，无法打开，请重新拍照后上传".into()
            }
            PhotoError::Blank => "图片是空白的，请手写签名或重新拍照后上传".into(),
        }
    }
}

fn names(kinds: &[PhotoKind], separator: &str) -> String {
    kinds
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(separator)
}

/// [`Wording::Bilingual`]: the payment authorisation's own sentences where it had them.
fn bilingual_message(error: &PhotoError, limits: &PhotoLimits) -> String {
    const MIB: usize = 1024 * 1024;
    match error {
        PhotoError::Empty => "文件为空 / the file is empty".into(),
        PhotoError::TooLarge { limit } => format!(
            "文件不能超过 {} MB / the file must not exceed {} MB",
            limit / MIB,
            limit / MIB
        ),
        PhotoError::NotAllowed { accepted } => format!(
            "只接受 {} 图片（HEIC、PDF 或改了扩展名的文件都不行，请在相机设置中选择“兼容性最佳”或截图后上传）/ only {} images are accepted (not HEIC, PDF or renamed files)",
            names(accepted, "、"),
            names(accepted, " or ")
        ),
        PhotoError::Unreadable => {
            "图片已损坏，无法读取 / the image is damaged and cannot be read".into()
        }
        PhotoError::DimensionsTooLarge { width, height }
            if *width > limits.max_width || *height > limits.max_height =>
        {
            // The authorisation's limits are square: one number for both sides.
            let side = limits.max_width.max(limits.max_height);
            format!(
                "图片尺寸 {width}×{height} 过大，长宽均不能超过 {side} 像素 / the image is {width}×{height}; neither side may exceed {side} pixels"
            )
        }
        PhotoError::Blank => {
            "签名是空白的，请手写签名后再提交 / the signature is blank: please sign by hand".into()
        }
        other => other.message_zh(),
    }
}

/// The type, from the magic bytes alone; anything but JPEG, PNG or WebP is
/// [`PhotoError::UnsupportedType`] with what it looks like.
pub fn sniff(bytes: &[u8]) -> Result<PhotoKind, PhotoError> {
    let refuse = |detected| Err(PhotoError::UnsupportedType { detected });
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(PhotoKind::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(PhotoKind::Png);
    }
    if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        return Ok(PhotoKind::Webp);
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return refuse(iso_media_kind(bytes));
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return refuse("gif");
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return refuse("tiff");
    }
    if bytes.starts_with(b"BM") && bytes.len() >= 26 {
        return refuse("bmp");
    }
    if bytes.starts_with(b"PK\x03\x04")
        || bytes.starts_with(b"PK\x05\x06")
        || bytes.starts_with(b"PK\x07\x08")
    {
        return refuse("zip");
    }
    // Readers accept a PDF whose header is anywhere in the first kilobyte.
    let head = &bytes[..bytes.len().min(1024)];
    if contains(head, b"%PDF-") {
        return refuse("pdf");
    }
    let text = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(bytes)
        .trim_ascii_start();
    let text_head = &text[..text.len().min(4096)];
    let lower: Vec<u8> = text_head.to_ascii_lowercase();
    if lower.starts_with(b"<?xml") || lower.starts_with(b"<svg") || contains(&lower, b"<svg") {
        return refuse("svg");
    }
    if looks_like_text(&bytes[..bytes.len().min(1024)]) {
        return refuse("text");
    }
    refuse("unknown")
}

/// Size, type and header dimensions of a claim material, without decoding any pixels: what a
/// caller that only needs to know "is this an acceptable image, and how big" uses.
pub fn inspect(bytes: &[u8], limits: &PhotoLimits) -> Result<PhotoHeader, PhotoError> {
    judge_header(bytes, &PhotoRules::claim_material(*limits), true)
}

/// Checks a claim material and produces what is stored: see the module documentation for the
/// steps.
pub fn process(bytes: &[u8], limits: &PhotoLimits) -> Result<ProcessedPhoto, PhotoError> {
    process_with(bytes, &PhotoRules::claim_material(*limits))
}

/// Checks an upload under `rules`, then decodes and re-encodes it: what is stored is ours.
pub fn process_with(bytes: &[u8], rules: &PhotoRules) -> Result<ProcessedPhoto, PhotoError> {
    let limits = &rules.limits;
    let header = judge_header(bytes, rules, true)?;
    let too_large = PhotoError::DimensionsTooLarge {
        width: header.width,
        height: header.height,
    };

    let mut reader = ImageReader::with_format(Cursor::new(bytes), header.kind.format());
    reader.limits(decode_limits(limits, true));
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        ImageError::Limits(_) => too_large.clone(),
        _ => PhotoError::Undecodable,
    })?;
    // A damaged EXIF block is no reason to refuse the photo: it is then taken as upright.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        ImageError::Limits(_) => too_large.clone(),
        _ => PhotoError::Undecodable,
    })?;
    if (image.width(), image.height()) != (header.width, header.height) {
        return Err(PhotoError::Undecodable);
    }
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());

    // A PNG is stored as decoded; a JPEG or WebP is re-encoded from the flat RGB pixels.
    let png = (header.kind == PhotoKind::Png)
        .then(|| encode_png(&image))
        .transpose()?;
    // One RGBA copy at most: only images with an alpha channel need it; an RGB image (every
    // phone photo) is taken as it is, without a copy.
    let (flat, blank) = if image.color().has_alpha() {
        let rgba = image.to_rgba8();
        (flatten_on_white(&rgba), is_blank(&rgba))
    } else {
        let rgb = image.into_rgb8();
        let blank = all_alike(rgb.pixels());
        (rgb, blank)
    };
    if blank && rules.refuse_blank {
        return Err(PhotoError::Blank);
    }

    let (kind, stored) = match png {
        Some(png) => (PhotoKind::Png, png),
        None => (PhotoKind::Jpeg, encode_jpeg(&flat, STORED_JPEG_QUALITY)?),
    };

    // One pass over the full image makes the thumbnail; the perceptual hash is taken from the
    // thumbnail (an area average of the same pixels), not from a second full pass.
    let (thumbnail_width, thumbnail_height) =
        thumbnail_size(width, height, limits.thumbnail_edge.max(1));
    let small = if (thumbnail_width, thumbnail_height) == (width, height) {
        None
    } else {
        Some(image::imageops::thumbnail(
            &flat,
            thumbnail_width,
            thumbnail_height,
        ))
    };
    let small_or_flat = small.as_ref().unwrap_or(&flat);
    let thumbnail = encode_jpeg(small_or_flat, THUMBNAIL_JPEG_QUALITY)?;
    let hash_source =
        if small_or_flat.width() >= HASH_SOURCE.0 && small_or_flat.height() >= HASH_SOURCE.1 {
            small_or_flat
        } else {
            &flat
        };

    Ok(ProcessedPhoto {
        kind,
        source_kind: header.kind,
        stored,
        width,
        height,
        thumbnail,
        thumbnail_width,
        thumbnail_height,
        sha256: hex::encode(Sha256::digest(bytes)),
        perceptual_hash: perceptual_hash(hash_source),
        blank,
    })
}

/// Checks an upload under `rules` that is kept byte for byte: size, type and header, then —
/// when blank images are refused — a decode (any failure is [`PhotoError::Unreadable`]) to look
/// at the pixels. The structure is not walked: nothing is cut at the end of the image.
pub fn check_with(bytes: &[u8], rules: &PhotoRules) -> Result<PhotoHeader, PhotoError> {
    let header = judge_header(bytes, rules, false)?;
    if rules.refuse_blank {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), header.kind.format());
        reader.limits(decode_limits(&rules.limits, true));
        let decoded = reader.decode().map_err(|_| PhotoError::Unreadable)?;
        if is_blank(&decoded.to_rgba8()) {
            return Err(PhotoError::Blank);
        }
    }
    Ok(header)
}

/// Steps 1–4 in the order `rules` gives them; `walk` for uploads that will be re-encoded.
fn judge_header(bytes: &[u8], rules: &PhotoRules, walk: bool) -> Result<PhotoHeader, PhotoError> {
    let limits = &rules.limits;
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(PhotoError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let not_allowed = PhotoError::NotAllowed {
        accepted: rules.accepted,
    };
    let kind = match sniff(bytes) {
        Ok(kind) if rules.accepted.contains(&kind) => kind,
        Ok(_) => return Err(not_allowed),
        Err(e) => {
            return Err(match rules.refused_types {
                RefusedTypes::ByKind => e,
                RefusedTypes::NotAllowed => not_allowed,
            });
        }
    };
    let walk_to_end = || match kind {
        PhotoKind::Jpeg => jpeg_end(bytes),
        PhotoKind::Png => png_end(bytes),
        PhotoKind::Webp => webp_end(bytes),
    };
    if walk && !rules.header_first {
        walk_to_end()?;
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.format());
    reader.limits(decode_limits(limits, false));
    let (width, height) = reader
        .into_dimensions()
        .map_err(|_| PhotoError::Unreadable)?;
    if width == 0 || height == 0 {
        return Err(PhotoError::Unreadable);
    }
    let too_large = PhotoError::DimensionsTooLarge { width, height };
    if width > limits.max_width || height > limits.max_height {
        return Err(too_large);
    }
    if walk && rules.header_first {
        walk_to_end()?;
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(too_large);
    }
    Ok(PhotoHeader {
        kind,
        width,
        height,
    })
}

/// Hamming distance, in bits, between two [`ProcessedPhoto::perceptual_hash`] values; `None`
/// if either is not hex or their lengths differ. Photos of the same document are within
/// [`SAME_DOCUMENT_MAX_DISTANCE`].
pub fn hash_distance(a: &str, b: &str) -> Option<u32> {
    let a = hex::decode(a.trim()).ok()?;
    let b = hex::decode(b.trim()).ok()?;
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    Some(a.iter().zip(&b).map(|(x, y)| (x ^ y).count_ones()).sum())
}

/// `true` if two perceptual hashes are close enough to flag the photos as the same document.
pub fn same_document(a: &str, b: &str) -> bool {
    hash_distance(a, b).is_some_and(|d| d <= SAME_DOCUMENT_MAX_DISTANCE)
}

/// Every image is first shrunk (fast area averaging, aspect ratio ignored as the hash itself
/// does) to this size, 16 × the 9 × 8 grid the gradient hash reads: Lanczos on 12 megapixels
/// costs a quarter of a second, and the same pipeline for every size keeps hashes comparable.
const HASH_SOURCE: (u32, u32) = (144, 128);

fn perceptual_hash(upright: &RgbImage) -> String {
    let source = image::imageops::thumbnail(upright, HASH_SOURCE.0, HASH_SOURCE.1);
    let hasher = HasherConfig::with_bytes_type::<[u8; 8]>()
        .hash_alg(HashAlg::Gradient)
        .hash_size(8, 8)
        .to_hasher();
    hex::encode(hasher.hash_image(&source).as_bytes())
}

/// Limits for the decoder: the dimensions are ours; memory as [`PhotoLimits::max_decode_bytes`]
/// says (by default the largest accepted image at 8 bytes per pixel, 16-bit RGBA PNG).
/// `with_size` is false for reading the header only, where the dimension check is done by
/// [`judge_header`] itself so that it can report them.
fn decode_limits(limits: &PhotoLimits, with_size: bool) -> Limits {
    let mut l = Limits::default();
    l.max_alloc = Some(
        limits
            .max_decode_bytes
            .unwrap_or_else(|| limits.max_pixels.saturating_mul(8).max(64 * 1024 * 1024)),
    );
    if with_size {
        l.max_image_width = Some(limits.max_width);
        l.max_image_height = Some(limits.max_height);
    } else {
        l.max_image_width = None;
        l.max_image_height = None;
    }
    l
}

/// RGB with any transparency composited over white (so a signature on a transparent background
/// is black on white, not black on black).
fn flatten_on_white(rgba: &RgbaImage) -> RgbImage {
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u16::from(src.0[3]);
        for c in 0..3 {
            let v = (u16::from(src.0[c]) * a + 255 * (255 - a) + 127) / 255;
            dst.0[c] = u8::try_from(v).unwrap_or(u8::MAX);
        }
    }
    out
}

/// Every pixel looks the same; fully transparent pixels are alike whatever their colour
/// channels say (a pad's untouched background), so white strokes on a transparent pad count.
fn is_blank(rgba: &RgbaImage) -> bool {
    all_alike(
        rgba.pixels()
            .map(|p| if p.0[3] == 0 { [0u8; 4] } else { p.0 }),
    )
}

fn all_alike<T: PartialEq>(mut items: impl Iterator<Item = T>) -> bool {
    match items.next() {
        Some(first) => items.all(|p| p == first),
        None => true,
    }
}

/// Baseline JPEG of `image` (`jpeg-encoder`, with its AVX2 paths where the CPU has them:
/// several times faster than `image`'s own encoder on a 12-megapixel photo).
fn encode_jpeg(image: &RgbImage, quality: u8) -> Result<Vec<u8>, PhotoError> {
    let (Ok(width), Ok(height)) = (u16::try_from(image.width()), u16::try_from(image.height()))
    else {
        return Err(PhotoError::Undecodable);
    };
    let mut out = Vec::with_capacity(image.as_raw().len() / 8);
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(image.as_raw(), width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|_| PhotoError::Undecodable)?;
    Ok(out)
}

fn encode_png(image: &DynamicImage) -> Result<Vec<u8>, PhotoError> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(
            image.as_bytes(),
            image.width(),
            image.height(),
            image.color().into(),
        )
        .map_err(|_| PhotoError::Undecodable)?;
    Ok(out)
}

/// Size of a thumbnail whose longest edge is `edge`, never larger than the image.
fn thumbnail_size(width: u32, height: u32, edge: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= edge {
        return (width, height);
    }
    let scale = |side: u32| -> u32 {
        let v = (u64::from(side) * u64::from(edge) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(v).unwrap_or(edge).max(1)
    };
    (scale(width), scale(height))
}

/// What an ISO base media file (`....ftyp`) is: HEIC/HEIF, AVIF, or a video.
fn iso_media_kind(bytes: &[u8]) -> &'static str {
    const HEIF: [&[u8; 4]; 10] = [
        b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",
    ];
    let box_len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let end = box_len.clamp(12, bytes.len().min(256));
    let brands: Vec<&[u8]> = std::iter::once(&bytes[8..12])
        .chain(bytes.get(16..end).unwrap_or(&[]).chunks_exact(4))
        .collect();
    if brands.iter().any(|b| *b == b"avif" || *b == b"avis") {
        "avif"
    } else if brands
        .iter()
        .any(|b| HEIF.iter().any(|h| h.as_slice() == *b))
    {
        "heic"
    } else {
        "video"
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// UTF-8 (a cut last character allowed) without control characters other than whitespace.
fn looks_like_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
}

/// Walks the JPEG segments to the end-of-image marker (`FF D9`) and returns the offset just
/// past it. A marker found by scanning for `FF D9` would be fooled by the EXIF thumbnail (a
/// whole JPEG inside APP1); walking the segment lengths is not. Running out of bytes first is
/// [`PhotoError::Truncated`].
fn jpeg_end(b: &[u8]) -> Result<usize, PhotoError> {
    let mut i = 2; // after SOI
    loop {
        // Find the next marker; stray bytes between segments are skipped, as libjpeg does.
        while *b.get(i).ok_or(PhotoError::Truncated)? != 0xFF {
            i += 1;
        }
        while *b.get(i).ok_or(PhotoError::Truncated)? == 0xFF {
            i += 1; // fill bytes
        }
        let marker = b[i];
        i += 1;
        match marker {
            0xD9 => return Ok(i),
            0xD8 => return Err(PhotoError::Undecodable),
            0x01 | 0xD0..=0xD7 => {}
            _ => {
                let len = usize::from(u16::from_be_bytes([
                    *b.get(i).ok_or(PhotoError::Truncated)?,
                    *b.get(i + 1).ok_or(PhotoError::Truncated)?,
                ]));
                if len < 2 {
                    return Err(PhotoError::Undecodable);
                }
                i += len;
                if i > b.len() {
                    return Err(PhotoError::Truncated);
                }
                if marker == 0xDA {
                    // Entropy-coded data: FF is stuffed as FF 00; RSTn may appear.
                    loop {
                        while *b.get(i).ok_or(PhotoError::Truncated)? != 0xFF {
                            i += 1;
                        }
                        match *b.get(i + 1).ok_or(PhotoError::Truncated)? {
                            0x00 | 0xD0..=0xD7 => i += 2,
                            _ => break,
                        }
                    }
                }
            }
        }
    }
}

/// Walks the PNG chunks to `IEND` and returns the offset just past it.
fn png_end(b: &[u8]) -> Result<usize, PhotoError> {
    let mut i = 8;
    loop {
        let head = b.get(i..i + 8).ok_or(PhotoError::Truncated)?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if len > 0x7FFF_FFFF {
            return Err(PhotoError::Undecodable);
        }
        let end = i + 12 + len as usize;
        if end > b.len() {
            return Err(PhotoError::Truncated);
        }
        if &head[4..8] == b"IEND" {
            return Ok(end);
        }
        i = end;
    }
}

/// The end of the RIFF container of a WebP file.
fn webp_end(b: &[u8]) -> Result<usize, PhotoError> {
    let size = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    let end = 8 + size + (size & 1);
    if size < 4 {
        return Err(PhotoError::Undecodable);
    }
    // The pad byte of an odd-sized last chunk is often missing; tolerate that one byte.
    if 8 + size > b.len() {
        return Err(PhotoError::Truncated);
    }
    Ok(end.min(b.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, Rgba, RgbaImage};
    use proptest::prelude::*;

    // ---------- builders ----------

    fn jpeg_of(img: &RgbImage, quality: u8) -> Vec<u8> {
        encode_jpeg(img, quality).unwrap()
    }

    fn png_of(img: &DynamicImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn webp_of(img: &DynamicImage) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::WebP).unwrap();
        out.into_inner()
    }

    fn decode(bytes: &[u8]) -> DynamicImage {
        image::load_from_memory(bytes).unwrap()
    }

    fn find(haystack: &[u8], needle: &[u8]) -> bool {
        contains(haystack, needle)
    }

    /// A TIFF/EXIF block by hand: IFD0 with Orientation and a GPS IFD pointer; the GPS IFD with
    /// version, latitude ref "N" and latitude 39° 54' 27.12".
    const GPS_CANARY: [u8; 8] = [0x98, 0x0A, 0, 0, 0x64, 0, 0, 0]; // 2712/100 little-endian

    fn exif_tiff(orientation: u16) -> Vec<u8> {
        fn entry(t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
            t.extend(tag.to_le_bytes());
            t.extend(kind.to_le_bytes());
            t.extend(count.to_le_bytes());
            t.extend(value);
        }
        let mut t = Vec::new();
        t.extend(b"II*\0");
        t.extend(8u32.to_le_bytes());
        // IFD0 at 8: 2 entries → ends at 8 + 2 + 24 + 4 = 38.
        t.extend(2u16.to_le_bytes());
        let o = orientation.to_le_bytes();
        entry(&mut t, 0x0112, 3, 1, [o[0], o[1], 0, 0]);
        entry(&mut t, 0x8825, 4, 1, 38u32.to_le_bytes());
        t.extend(0u32.to_le_bytes());
        // GPS IFD at 38: 3 entries → ends at 38 + 2 + 36 + 4 = 80.
        t.extend(3u16.to_le_bytes());
        entry(&mut t, 0x0000, 1, 4, [2, 2, 0, 0]);
        entry(&mut t, 0x0001, 2, 2, *b"N\0\0\0");
        entry(&mut t, 0x0002, 5, 3, 80u32.to_le_bytes());
        t.extend(0u32.to_le_bytes());
        assert_eq!(t.len(), 80);
        for (num, den) in [(39u32, 1u32), (54, 1), (2712, 100)] {
            t.extend(num.to_le_bytes());
            t.extend(den.to_le_bytes());
        }
        t
    }

    /// Inserts an APP1 segment right after SOI.
    fn with_app1(jpeg: &[u8], payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(payload.len() + 2).unwrap();
        let mut out = jpeg[..2].to_vec();
        out.extend([0xFF, 0xE1]);
        out.extend(len.to_be_bytes());
        out.extend(payload);
        out.extend(&jpeg[2..]);
        out
    }

    fn with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend(exif_tiff(orientation));
        with_app1(jpeg, &payload)
    }

    /// Markers of the segments before the first scan.
    fn header_markers(jpeg: &[u8]) -> Vec<u8> {
        let mut markers = Vec::new();
        let mut i = 2;
        while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
            let marker = jpeg[i + 1];
            markers.push(marker);
            if marker == 0xDA {
                break;
            }
            i += 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        }
        markers
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }

    /// A PNG whose IHDR claims `width` × `height` (8-bit grey) with a token IDAT.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend(width.to_be_bytes());
        ihdr.extend(height.to_be_bytes());
        ihdr.extend([8, 0, 0, 0, 0]);
        png_chunk(&mut out, b"IHDR", &ihdr);
        png_chunk(
            &mut out,
            b"IDAT",
            &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        );
        png_chunk(&mut out, b"IEND", &[]);
        out
    }

    /// A small deterministic generator (no `rand` needed).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, below: u32) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % u64::from(below)) as u32
        }
    }

    fn fill(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, c: Rgb<u8>) {
        for yy in y..(y + h).min(img.height()) {
            for xx in x..(x + w).min(img.width()) {
                img.put_pixel(xx, yy, c);
            }
        }
    }

    /// Layouts of synthetic documents: a settlement slip (title, grid table, text-like bars,
    /// total, stamp) and a medication list (left-aligned lines, no grid, footer signature).
    #[derive(Clone, Copy)]
    enum Layout {
        SettlementSlip,
        MedicationList,
    }

    fn document(layout: Layout, seed: u64) -> RgbImage {
        let (w, h) = (600u32, 840u32);
        let ink = Rgb([30u8, 30, 40]);
        let mut img = RgbImage::from_pixel(w, h, Rgb([250, 250, 245]));
        let mut rng = Lcg(seed);
        match layout {
            Layout::SettlementSlip => {
                fill(&mut img, 150, 40, 300, 28, ink); // title
                fill(&mut img, 40, 100, 220, 12, ink);
                fill(&mut img, 340, 100, 200, 12, ink);
                for row in 0..16 {
                    let y = 140 + row * 36;
                    fill(&mut img, 30, y, 540, 2, ink); // horizontal rule
                    for (cx, cw) in [(40u32, 150u32), (210, 110), (340, 90), (450, 110)] {
                        let len = 20 + rng.next(cw - 20);
                        fill(&mut img, cx, y + 12, len, 12, ink);
                    }
                }
                for x in [30u32, 200, 330, 440, 568] {
                    fill(&mut img, x, 140, 2, 15 * 36, ink); // vertical rules
                }
                fill(&mut img, 330, 730, 240, 20, ink); // total
                for yy in 0..80u32 {
                    for xx in 0..80u32 {
                        let (dx, dy) = (xx as i32 - 40, yy as i32 - 40);
                        let r2 = dx * dx + dy * dy;
                        if (1300..1600).contains(&r2) {
                            img.put_pixel(430 + xx, 640 + yy, Rgb([200, 30, 30]));
                        }
                    }
                }
            }
            Layout::MedicationList => {
                fill(&mut img, 40, 50, 200, 24, ink); // title, left
                for line in 0..26 {
                    let y = 110 + line * 26;
                    let indent = if line % 5 == 0 { 40 } else { 70 };
                    let len = 60 + rng.next(440);
                    let mut x = indent;
                    while x < indent + len {
                        let word = 15 + rng.next(50);
                        fill(&mut img, x, y, word.min(indent + len - x), 10, ink);
                        x += word + 8;
                    }
                }
                fill(&mut img, 380, 790, 180, 14, ink); // signature line
            }
        }
        img
    }

    fn scaled(img: &RgbImage, factor: f32) -> RgbImage {
        let w = (img.width() as f32 * factor) as u32;
        let h = (img.height() as f32 * factor) as u32;
        image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle)
    }

    /// A crude re-photograph: a little darker and warmer, cropped by 2 % and resized back.
    fn rephotographed(img: &RgbImage) -> RgbImage {
        let (w, h) = img.dimensions();
        let crop =
            image::imageops::crop_imm(img, w / 50, h / 50, w - w / 25, h - h / 25).to_image();
        let mut out = image::imageops::resize(&crop, w, h, image::imageops::FilterType::Triangle);
        for p in out.pixels_mut() {
            p.0 = [
                (f32::from(p.0[0]) * 0.92 + 6.0) as u8,
                (f32::from(p.0[1]) * 0.88 + 4.0) as u8,
                (f32::from(p.0[2]) * 0.80) as u8,
            ];
        }
        out
    }

    fn processed(bytes: &[u8]) -> ProcessedPhoto {
        process(bytes, &PhotoLimits::default()).unwrap()
    }

    fn refused(bytes: &[u8]) -> PhotoError {
        process(bytes, &PhotoLimits::default()).unwrap_err()
    }

    fn is_red(p: Rgb<u8>) -> bool {
        p.0[0] > 180 && p.0[1] < 80 && p.0[2] < 80
    }

    /// 120 × 80 white with a red block in the top-left corner.
    fn marked_landscape() -> RgbImage {
        let mut img = RgbImage::from_pixel(120, 80, Rgb([255, 255, 255]));
        fill(&mut img, 0, 0, 30, 20, Rgb([230, 20, 20]));
        img
    }

    // ---------- orientation and metadata ----------

    #[test]
    fn a_jpeg_with_exif_orientation_6_and_gps_comes_out_rotated_without_any_exif_or_gps() {
        let upload = with_exif(&jpeg_of(&marked_landscape(), 92), 6);
        assert!(find(&upload, b"Exif\0\0") && find(&upload, &GPS_CANARY));

        let photo = processed(&upload);

        assert_eq!(
            (photo.kind, photo.source_kind),
            (PhotoKind::Jpeg, PhotoKind::Jpeg)
        );
        assert_eq!(
            (photo.width, photo.height),
            (80, 120),
            "rotated to portrait"
        );
        let stored = decode(&photo.stored).to_rgb8();
        assert_eq!(stored.dimensions(), (80, 120));
        // Orientation 6 = turn 90° clockwise: the top-left mark ends up top-right.
        assert!(
            is_red(*stored.get_pixel(75, 5)),
            "{:?}",
            stored.get_pixel(75, 5)
        );
        assert!(!is_red(*stored.get_pixel(5, 5)));
        assert!(!is_red(*stored.get_pixel(75, 115)));
        // No EXIF, no GPS, no APP1 (EXIF/XMP), APP2 (ICC) or COM segment.
        assert!(!find(&photo.stored, b"Exif"));
        assert!(!find(&photo.stored, &GPS_CANARY));
        let markers = header_markers(&photo.stored);
        assert!(markers.contains(&0xDA), "{markers:02X?}");
        assert!(
            !markers.iter().any(|m| matches!(m, 0xE1..=0xEF | 0xFE)),
            "{markers:02X?}"
        );
        let mut decoder = ImageReader::with_format(Cursor::new(&photo.stored), ImageFormat::Jpeg)
            .into_decoder()
            .unwrap();
        assert_eq!(decoder.exif_metadata().unwrap(), None);
        // Nor in the thumbnail.
        assert!(!find(&photo.thumbnail, b"Exif") && !find(&photo.thumbnail, &GPS_CANARY));
    }

    #[test]
    fn every_exif_orientation_is_applied() {
        // (orientation, where the top-left red mark of a 120×80 image is expected, size)
        let cases = [
            (1u16, (5u32, 5u32), (120u32, 80u32)),
            (2, (115, 5), (120, 80)),
            (3, (115, 75), (120, 80)),
            (4, (5, 75), (120, 80)),
            (5, (5, 5), (80, 120)),
            (6, (75, 5), (80, 120)),
            (7, (75, 115), (80, 120)),
            (8, (5, 115), (80, 120)),
        ];
        for (orientation, (x, y), size) in cases {
            let photo = processed(&with_exif(&jpeg_of(&marked_landscape(), 92), orientation));
            assert_eq!(
                (photo.width, photo.height),
                size,
                "orientation {orientation}"
            );
            let stored = decode(&photo.stored).to_rgb8();
            assert!(is_red(*stored.get_pixel(x, y)), "orientation {orientation}");
        }
    }

    #[test]
    fn a_png_with_an_exif_chunk_is_rotated_and_stored_as_png_without_it() {
        let mut png = png_of(&DynamicImage::ImageRgb8(marked_landscape()));
        // Insert an eXIf chunk before IDAT (after the 8-byte signature and 25-byte IHDR).
        let mut chunk = Vec::new();
        png_chunk(&mut chunk, b"eXIf", &exif_tiff(6));
        png.splice(33..33, chunk);
        let photo = processed(&png);
        assert_eq!(
            (photo.kind, photo.width, photo.height),
            (PhotoKind::Png, 80, 120)
        );
        assert!(!find(&photo.stored, b"eXIf") && !find(&photo.stored, &GPS_CANARY));
        assert!(is_red(*decode(&photo.stored).to_rgb8().get_pixel(75, 5)));
    }

    #[test]
    fn a_damaged_exif_block_leaves_the_photo_upright_instead_of_refusing_it() {
        let mut payload = b"Exif\0\0II*\0\xFF\xFF\xFF\x7F".to_vec();
        payload.extend([0u8; 8]);
        let photo = processed(&with_app1(&jpeg_of(&marked_landscape(), 90), &payload));
        assert_eq!((photo.width, photo.height), (120, 80));
    }

    // ---------- appended data, truncation ----------

    #[test]
    fn a_jpeg_with_a_zip_appended_is_stored_without_it() {
        let jpeg = jpeg_of(&marked_landscape(), 90);
        let mut upload = jpeg.clone();
        upload.extend(b"PK\x03\x04\x14\x00\x00\x00\x08\x00secret-payroll.xlsx");
        upload.extend([0u8; 64]);
        upload.extend(b"PK\x05\x06");
        upload.extend([0u8; 18]);

        let photo = processed(&upload);

        assert!(!find(&photo.stored, b"PK\x03\x04"));
        assert!(!find(&photo.stored, b"secret-payroll"));
        assert!(photo.stored.ends_with(&[0xFF, 0xD9]));
        assert_eq!(jpeg_end(&photo.stored), Ok(photo.stored.len()));
        assert_eq!(jpeg_end(&upload), Ok(jpeg.len()));
        // The SHA-256 is of what was uploaded, appended bytes included.
        assert_eq!(photo.sha256, hex::encode(Sha256::digest(&upload)));
        assert_ne!(photo.sha256, hex::encode(Sha256::digest(&jpeg)));
    }

    #[test]
    fn a_truncated_jpeg_is_refused_even_though_image_would_decode_it() {
        let jpeg = jpeg_of(&document(Layout::SettlementSlip, 1), 85);
        let half = &jpeg[..jpeg.len() / 2];
        assert!(
            image::load_from_memory(half).is_ok(),
            "image fills in the missing part"
        );
        assert_eq!(refused(half), PhotoError::Truncated);
        assert_eq!(refused(half).code(), "image_truncated");
        assert_eq!(refused(&jpeg[..jpeg.len() - 2]), PhotoError::Truncated);
    }

    #[test]
    fn no_strict_prefix_of_a_jpeg_is_accepted() {
        let jpeg = with_exif(&jpeg_of(&marked_landscape(), 90), 6);
        for cut in 3..jpeg.len() {
            let err = refused(&jpeg[..cut]);
            assert!(
                matches!(err, PhotoError::Truncated | PhotoError::Undecodable),
                "cut at {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn an_exif_thumbnail_end_marker_does_not_hide_a_truncated_photo() {
        // Phones embed a whole JPEG thumbnail (with its own FF D9) in the EXIF segment.
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend(exif_tiff(1));
        payload.extend(jpeg_of(&RgbImage::from_pixel(16, 16, Rgb([9, 9, 9])), 80));
        let upload = with_app1(&jpeg_of(&document(Layout::SettlementSlip, 2), 85), &payload);
        assert!(processed(&upload).width == 600);
        let cut = &upload[..upload.len() * 2 / 3];
        assert!(
            find(cut, &[0xFF, 0xD9]),
            "a naive search would find an end marker"
        );
        assert_eq!(refused(cut), PhotoError::Truncated);
    }

    #[test]
    fn a_truncated_png_and_webp_are_refused() {
        let img = DynamicImage::ImageRgb8(document(Layout::MedicationList, 3));
        let png = png_of(&img);
        assert_eq!(refused(&png[..png.len() - 12]), PhotoError::Truncated);
        assert_eq!(refused(&png[..png.len() / 2]), PhotoError::Truncated);
        let webp = webp_of(&img);
        assert_eq!(refused(&webp[..webp.len() / 2]), PhotoError::Truncated);
    }

    // ---------- dimensions ----------

    #[test]
    fn a_png_whose_header_claims_30000_by_30000_is_refused_before_decoding() {
        let bomb = png_claiming(30000, 30000);
        assert!(bomb.len() < 100);
        // The IDAT is a token: decoding would fail as Undecodable, so this proves the header
        // check came first.
        let err = refused(&bomb);
        assert_eq!(
            err,
            PhotoError::DimensionsTooLarge {
                width: 30000,
                height: 30000
            }
        );
        assert_eq!(err.code(), "image_too_large");
        assert!(err.message_zh().contains("30000×30000"));
        assert_eq!(inspect(&bomb, &PhotoLimits::default()), Err(err));
    }

    #[test]
    fn a_jpeg_whose_header_claims_9000_pixels_wide_is_refused_before_decoding() {
        let mut jpeg = jpeg_of(&marked_landscape(), 90);
        // Patch the SOF0 frame header (FF C0, length, precision, height, width).
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 5..sof + 7].copy_from_slice(&100u16.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&9000u16.to_be_bytes());
        assert_eq!(
            refused(&jpeg),
            PhotoError::DimensionsTooLarge {
                width: 9000,
                height: 100
            }
        );
    }

    #[test]
    fn the_pixel_count_limit_applies_even_when_each_side_is_allowed() {
        let limits = PhotoLimits {
            max_pixels: 5000,
            ..PhotoLimits::default()
        };
        let png = png_of(&DynamicImage::ImageRgb8(RgbImage::new(100, 60)));
        assert_eq!(
            process(&png, &limits),
            Err(PhotoError::DimensionsTooLarge {
                width: 100,
                height: 60
            })
        );
        let ok = png_of(&DynamicImage::ImageRgb8(RgbImage::new(100, 50)));
        assert!(process(&ok, &limits).is_ok());
    }

    // ---------- types ----------

    #[test]
    fn heic_pdf_svg_gif_and_a_renamed_text_file_are_each_refused_with_their_code() {
        let mut heic = vec![0, 0, 0, 0x18];
        heic.extend(b"ftypheic\0\0\0\0mif1heic");
        let mut heif_mif1 = vec![0, 0, 0, 0x1C];
        heif_mif1.extend(b"ftypmif1\0\0\0\0mif1heicmiaf");
        let mut avif = vec![0, 0, 0, 0x1C];
        avif.extend(b"ftypavif\0\0\0\0avifmif1miaf");
        let mut mp4 = vec![0, 0, 0, 0x18];
        mp4.extend(b"ftypisom\0\0\x02\0isomiso2");
        let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("heic", heic, "file_type_heic"),
            ("heif mif1", heif_mif1, "file_type_heic"),
            ("avif", avif, "file_type_avif"),
            ("mp4", mp4, "file_type_video"),
            ("pdf", b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n".to_vec(), "file_type_pdf"),
            ("pdf after junk", b"\r\n\r\n%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec(), "file_type_pdf"),
            (
                "svg",
                b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
                "file_type_svg",
            ),
            ("bare svg with BOM", b"\xEF\xBB\xBF  <svg width=\"10\"/>".to_vec(), "file_type_svg"),
            ("gif", gif, "file_type_gif"),
            ("bmp", [b"BM".as_slice(), &[0u8; 60]].concat(), "file_type_bmp"),
            ("tiff", b"II*\0\x08\0\0\0\0\0\0\0".to_vec(), "file_type_tiff"),
            ("zip / xlsx", b"PK\x03\x04\x14\0\x06\0[Content_Types].xml".to_vec(), "file_type_zip"),
            (
                "text renamed .jpg",
                "序号,姓名,身份证号码\n1,张三,110101199003074512\n".as_bytes().to_vec(),
                "file_type_text",
            ),
            ("binary junk", vec![0x00, 0x13, 0x37, 0xC0, 0xFF, 0xEE, 0x00, 0x01], "file_type_not_allowed"),
        ];
        for (name, bytes, code) in cases {
            let err = refused(&bytes);
            assert!(
                matches!(err, PhotoError::UnsupportedType { .. }),
                "{name}: {err:?}"
            );
            assert_eq!(err.code(), code, "{name}");
            assert!(!err.message_zh().is_empty());
        }
    }

    #[test]
    fn the_heic_message_tells_the_worker_how_to_fix_it() {
        let err = PhotoError::UnsupportedType { detected: "heic" };
        assert!(
            err.message_zh().contains("兼容性最佳"),
            "{}",
            err.message_zh()
        );
        assert!(err.message_zh().contains("JPEG"));
    }

    #[test]
    fn a_jpeg_named_heic_and_a_pdf_named_jpg_are_judged_by_their_bytes() {
        // There is no name to pass: the API only takes bytes.
        assert_eq!(
            sniff(&jpeg_of(&marked_landscape(), 80)),
            Ok(PhotoKind::Jpeg)
        );
        assert_eq!(
            sniff(b"%PDF-1.3"),
            Err(PhotoError::UnsupportedType { detected: "pdf" })
        );
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert_eq!(refused(&[]), PhotoError::Empty);
        assert_eq!(PhotoError::Empty.code(), "file_empty");
    }

    #[test]
    fn a_file_over_the_byte_limit_is_refused_before_its_type_is_looked_at() {
        let limits = PhotoLimits::default();
        let mut bytes = jpeg_of(&marked_landscape(), 90);
        bytes.resize(limits.max_bytes + 1, 0);
        let err = process(&bytes, &limits).unwrap_err();
        assert_eq!(
            err,
            PhotoError::TooLarge {
                limit: 15 * 1024 * 1024
            }
        );
        assert_eq!(err.code(), "file_too_large");
        assert!(err.message_zh().contains("15 MB"), "{}", err.message_zh());
        let mut junk = vec![0u8; limits.max_bytes + 1];
        junk[..5].copy_from_slice(b"%PDF-");
        assert_eq!(
            process(&junk, &limits).unwrap_err().code(),
            "file_too_large"
        );
    }

    #[test]
    fn a_webp_upload_is_stored_as_jpeg() {
        let photo = processed(&webp_of(&DynamicImage::ImageRgb8(marked_landscape())));
        assert_eq!(
            (photo.kind, photo.source_kind),
            (PhotoKind::Jpeg, PhotoKind::Webp)
        );
        assert_eq!(sniff(&photo.stored), Ok(PhotoKind::Jpeg));
        assert_eq!((photo.width, photo.height), (120, 80));
    }

    #[test]
    fn damaged_pixels_behind_a_valid_header_are_undecodable() {
        let mut png = png_of(&DynamicImage::ImageRgb8(marked_landscape()));
        let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
        for b in &mut png[idat + 4..idat + 20] {
            *b ^= 0x5A;
        }
        assert_eq!(refused(&png), PhotoError::Undecodable);
    }

    // ---------- PNG, signatures, thumbnails ----------

    #[test]
    fn a_transparent_png_signature_stays_png_and_its_thumbnail_is_black_on_white() {
        let mut sig = RgbaImage::from_pixel(400, 160, Rgba([0, 0, 0, 0]));
        for x in 40..360 {
            for y in 78..84 {
                sig.put_pixel(x, y, Rgba([0, 0, 0, 255]));
            }
        }
        let photo = processed(&png_of(&DynamicImage::ImageRgba8(sig)));
        assert_eq!(
            (photo.kind, photo.width, photo.height),
            (PhotoKind::Png, 400, 160)
        );
        assert!(!photo.blank);
        let stored = decode(&photo.stored);
        assert!(
            stored.color().has_alpha(),
            "transparency kept in the stored PNG"
        );
        let thumb = decode(&photo.thumbnail).to_rgb8();
        assert_eq!(thumb.dimensions(), (320, 128));
        assert!(
            thumb.get_pixel(5, 5).0.iter().all(|&c| c > 240),
            "background is white"
        );
        assert!(
            thumb.get_pixel(160, 64).0.iter().all(|&c| c < 60),
            "stroke is dark"
        );
    }

    #[test]
    fn a_blank_signature_is_marked_blank() {
        let blank = RgbaImage::from_pixel(400, 160, Rgba([0, 0, 0, 0]));
        assert!(processed(&png_of(&DynamicImage::ImageRgba8(blank))).blank);
        assert!(!processed(&jpeg_of(&document(Layout::SettlementSlip, 1), 85)).blank);
    }

    #[test]
    fn thumbnails_have_the_longest_edge_at_the_limit_for_portrait_and_landscape() {
        let portrait = processed(&jpeg_of(
            &RgbImage::from_pixel(600, 900, Rgb([1, 2, 3])),
            80,
        ));
        assert_eq!(
            (portrait.thumbnail_width, portrait.thumbnail_height),
            (213, 320)
        );
        assert_eq!(
            decode(&portrait.thumbnail).to_rgb8().dimensions(),
            (213, 320)
        );

        let landscape = processed(&jpeg_of(
            &RgbImage::from_pixel(1000, 500, Rgb([1, 2, 3])),
            80,
        ));
        assert_eq!(
            decode(&landscape.thumbnail).to_rgb8().dimensions(),
            (320, 160)
        );

        // The thumbnail follows the orientation: a landscape sensor image shown portrait.
        let rotated = processed(&with_exif(
            &jpeg_of(&RgbImage::from_pixel(1000, 500, Rgb([1, 2, 3])), 80),
            6,
        ));
        assert_eq!(
            decode(&rotated.thumbnail).to_rgb8().dimensions(),
            (160, 320)
        );

        let small = processed(&jpeg_of(&RgbImage::from_pixel(100, 50, Rgb([1, 2, 3])), 80));
        assert_eq!(
            decode(&small.thumbnail).to_rgb8().dimensions(),
            (100, 50),
            "not enlarged"
        );

        let custom = PhotoLimits {
            thumbnail_edge: 64,
            ..PhotoLimits::default()
        };
        let photo = process(
            &jpeg_of(&RgbImage::from_pixel(3, 900, Rgb([1, 2, 3])), 80),
            &custom,
        )
        .unwrap();
        assert_eq!((photo.thumbnail_width, photo.thumbnail_height), (1, 64));
    }

    // ---------- hashes ----------

    #[test]
    fn the_sha256_is_of_the_original_upload() {
        let upload = with_exif(&jpeg_of(&marked_landscape(), 90), 6);
        let photo = processed(&upload);
        assert_eq!(photo.sha256, hex::encode(Sha256::digest(&upload)));
        assert_eq!(photo.sha256.len(), 64);
        assert_ne!(photo.sha256, hex::encode(Sha256::digest(&photo.stored)));
        // A known vector, to pin the encoding (lowercase hex).
        let empty_photo_bytes = b"abc";
        assert_eq!(
            hex::encode(Sha256::digest(empty_photo_bytes)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_same_bill_re_encoded_scaled_re_photographed_or_exif_rotated_is_within_the_threshold_and_another_document_is_far()
     {
        let bill = document(Layout::SettlementSlip, 7);
        let original = processed(&jpeg_of(&bill, 92));
        assert_eq!(original.perceptual_hash.len(), 16);

        let sideways = image::imageops::rotate270(&bill); // what the sensor recorded
        let variants = [
            ("re-encoded at quality 40", jpeg_of(&bill, 40)),
            ("scaled to 85 %", jpeg_of(&scaled(&bill, 0.85), 85)),
            ("scaled to 130 %", jpeg_of(&scaled(&bill, 1.3), 85)),
            (
                "re-photographed (crop, light)",
                jpeg_of(&rephotographed(&bill), 80),
            ),
            (
                "rotated, EXIF orientation 6",
                with_exif(&jpeg_of(&sideways, 85), 6),
            ),
            ("as PNG", png_of(&DynamicImage::ImageRgb8(bill.clone()))),
        ];
        for (name, bytes) in &variants {
            let d = hash_distance(&original.perceptual_hash, &processed(bytes).perceptual_hash)
                .unwrap();
            eprintln!("same bill, {name}: {d} bits");
            assert!(d <= SAME_DOCUMENT_MAX_DISTANCE, "{name}: {d}");
            assert!(same_document(
                &original.perceptual_hash,
                &processed(bytes).perceptual_hash
            ));
        }

        // Without applying the orientation the rotated re-photo would be missed.
        let unrotated = processed(&jpeg_of(&sideways, 85));
        let d = hash_distance(&original.perceptual_hash, &unrotated.perceptual_hash).unwrap();
        eprintln!("same bill, sideways without EXIF: {d} bits");
        assert!(d > SAME_DOCUMENT_MAX_DISTANCE);

        let others = [
            ("medication list", document(Layout::MedicationList, 7)),
            (
                "another medication list",
                document(Layout::MedicationList, 99),
            ),
            (
                "a photo-like gradient",
                RgbImage::from_fn(600, 840, |x, y| Rgb([(x / 3) as u8, (y / 4) as u8, 90])),
            ),
        ];
        for (name, img) in &others {
            let d = hash_distance(
                &original.perceptual_hash,
                &processed(&jpeg_of(img, 85)).perceptual_hash,
            )
            .unwrap();
            eprintln!("different document, {name}: {d} bits");
            assert!(d >= 2 * SAME_DOCUMENT_MAX_DISTANCE, "{name}: {d}");
        }

        // Same template, different patient: closer than unrelated documents (reported, and why
        // a flag is a hint for the reviewer, not a refusal).
        for seed in [8u64, 9, 10] {
            let d = hash_distance(
                &original.perceptual_hash,
                &processed(&jpeg_of(&document(Layout::SettlementSlip, seed), 85)).perceptual_hash,
            )
            .unwrap();
            eprintln!("same template, other contents (seed {seed}): {d} bits");
        }
    }

    #[test]
    fn hash_distance_counts_differing_bits_and_rejects_malformed_hashes() {
        assert_eq!(
            hash_distance("0000000000000000", "0000000000000000"),
            Some(0)
        );
        assert_eq!(
            hash_distance("0000000000000000", "ffffffffffffffff"),
            Some(64)
        );
        assert_eq!(
            hash_distance("00000000000000f1", "0000000000000000"),
            Some(5)
        );
        assert_eq!(
            hash_distance("00000000000000F1", "00000000000000f1"),
            Some(0)
        );
        assert_eq!(hash_distance("00", "0000"), None);
        assert_eq!(hash_distance("zz", "00"), None);
        assert_eq!(hash_distance("", ""), None);
    }

    #[test]
    fn inspect_reads_type_and_dimensions_without_decoding() {
        let png = png_of(&DynamicImage::ImageRgb8(marked_landscape()));
        assert_eq!(
            inspect(&png, &PhotoLimits::default()),
            Ok(PhotoHeader {
                kind: PhotoKind::Png,
                width: 120,
                height: 80
            })
        );
        assert_eq!(PhotoKind::Png.mime(), "image/png");
        assert_eq!(PhotoKind::Jpeg.extension(), "jpg");
    }

    #[test]
    fn every_error_has_a_code_and_a_chinese_message() {
        let all = [
            PhotoError::Empty,
            PhotoError::TooLarge { limit: 1 },
            PhotoError::UnsupportedType {
                detected: "unknown",
            },
            PhotoError::Truncated,
            PhotoError::DimensionsTooLarge {
                width: 1,
                height: 2,
            },
            PhotoError::Undecodable,
        ];
        for e in all {
            assert!(!e.code().is_empty() && e.code().is_ascii());
            assert!(
                e.message_zh()
                    .chars()
                    .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
            );
        }
    }

    // ---------- other uses: a payment authorisation's ID card photos and signature ----------

    /// A transparent pad, with or without a black stroke across it.
    fn pad(width: u32, height: u32, stroke: bool) -> Vec<u8> {
        let mut img = RgbaImage::from_pixel(width, height, Rgba([255, 255, 255, 0]));
        if stroke {
            for x in 2..width.saturating_sub(2) {
                img.put_pixel(x, height / 2, Rgba([0, 0, 0, 255]));
            }
        }
        png_of(&DynamicImage::ImageRgba8(img))
    }

    const ID_CARD: PhotoRules = PhotoRules::ID_CARD_PHOTO;
    const SIGNATURE: PhotoRules = PhotoRules::SIGNATURE;

    #[test]
    fn an_id_card_photo_passes_as_png_or_jpeg_with_its_dimensions_and_is_re_encoded() {
        let header = check_with(&pad(40, 20, true), &ID_CARD).unwrap();
        assert_eq!(
            (header.kind, header.width, header.height),
            (PhotoKind::Png, 40, 20)
        );
        let upload = with_exif(&jpeg_of(&marked_landscape(), 90), 6);
        let header = check_with(&upload, &ID_CARD).unwrap();
        assert_eq!(
            (header.kind, header.width, header.height),
            (PhotoKind::Jpeg, 120, 80)
        );
        let photo = process_with(&upload, &ID_CARD).unwrap();
        assert_eq!(
            (photo.kind, photo.width, photo.height),
            (PhotoKind::Jpeg, 80, 120)
        );
        assert!(!find(&photo.stored, b"Exif") && !find(&photo.stored, &GPS_CANARY));
    }

    #[test]
    fn a_jpeg_is_refused_where_only_png_is_allowed() {
        let err = check_with(&jpeg_of(&marked_landscape(), 80), &SIGNATURE).unwrap_err();
        assert_eq!(err.code(), "file_type_not_allowed");
        let message = SIGNATURE.message(&err);
        assert!(
            message.contains("只接受 PNG") && message.contains("only PNG images"),
            "{message}"
        );
    }

    #[test]
    fn every_refused_type_is_not_allowed_for_an_id_card_photo_webp_too() {
        let mut heic = vec![0, 0, 0, 0x18];
        heic.extend(b"ftypheic\0\0\0\0mif1heic");
        let webp = webp_of(&DynamicImage::ImageRgb8(marked_landscape()));
        for bytes in [b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n".to_vec(), heic, webp] {
            let err = process_with(&bytes, &ID_CARD).unwrap_err();
            assert_eq!(
                err,
                PhotoError::NotAllowed {
                    accepted: &[PhotoKind::Jpeg, PhotoKind::Png]
                }
            );
            assert!(ID_CARD.message(&err).contains("JPEG、PNG"));
            assert!(ID_CARD.message(&err).contains("only JPEG or PNG images"));
        }
        assert_eq!(check_with(&[], &ID_CARD).unwrap_err(), PhotoError::Empty);
        assert_eq!(
            ID_CARD.message(&PhotoError::Empty),
            "文件为空 / the file is empty"
        );
    }

    #[test]
    fn a_file_cut_inside_its_header_is_unreadable_for_an_id_card_but_truncated_as_a_material() {
        let bytes = pad(10, 10, true);
        let cut = &bytes[..12];
        assert_eq!(check_with(cut, &ID_CARD), Err(PhotoError::Unreadable));
        assert_eq!(process_with(cut, &ID_CARD), Err(PhotoError::Unreadable));
        assert_eq!(refused(cut), PhotoError::Truncated);
        assert_eq!(PhotoError::Unreadable.code(), "image_unreadable");
    }

    #[test]
    fn a_side_over_the_limit_is_refused_from_the_header_before_the_structure_is_walked() {
        let err = check_with(&pad(9000, 10, false), &ID_CARD).unwrap_err();
        assert_eq!(
            err,
            PhotoError::DimensionsTooLarge {
                width: 9000,
                height: 10
            }
        );
        assert!(
            ID_CARD.message(&err).contains("8000 像素"),
            "{}",
            ID_CARD.message(&err)
        );
        // Cut short as well: the header is read first for an ID card, the end first for a
        // claim material.
        let bomb = png_claiming(9000, 10);
        let cut = &bomb[..bomb.len() - 12];
        assert_eq!(process_with(cut, &ID_CARD), Err(err));
        assert_eq!(refused(cut), PhotoError::Truncated);
        // A pixel count over the limit with both sides allowed keeps the worker's wording.
        let many = PhotoError::DimensionsTooLarge {
            width: 7000,
            height: 7000,
        };
        assert_eq!(ID_CARD.message(&many), many.message_zh());
    }

    #[test]
    fn a_file_over_the_byte_limit_is_refused_before_it_is_read() {
        let mut bytes = pad(4, 4, true);
        bytes.resize(8 * 1024 * 1024 + 1, 0);
        let err = check_with(&bytes, &SIGNATURE).unwrap_err();
        assert_eq!(err.code(), "file_too_large");
        assert_eq!(
            SIGNATURE.message(&err),
            "文件不能超过 8 MB / the file must not exceed 8 MB"
        );
    }

    #[test]
    fn a_blank_signature_is_refused_and_a_stroke_passes() {
        assert_eq!(
            check_with(&pad(100, 40, false), &SIGNATURE),
            Err(PhotoError::Blank)
        );
        assert_eq!(PhotoError::Blank.code(), "signature_blank");
        let all_white = png_of(&DynamicImage::ImageRgba8(RgbaImage::from_pixel(
            30,
            20,
            Rgba([255, 255, 255, 255]),
        )));
        assert_eq!(check_with(&all_white, &SIGNATURE), Err(PhotoError::Blank));
        assert!(check_with(&pad(100, 40, true), &SIGNATURE).is_ok());
        // White strokes on a transparent pad are strokes.
        let mut white = RgbaImage::from_pixel(30, 20, Rgba([0, 0, 0, 0]));
        white.put_pixel(5, 5, Rgba([255, 255, 255, 255]));
        assert!(check_with(&png_of(&DynamicImage::ImageRgba8(white)), &SIGNATURE).is_ok());
        // Only where the rules refuse blank images.
        assert!(check_with(&pad(100, 40, false), &ID_CARD).is_ok());
    }

    #[test]
    fn the_new_refusals_have_a_code_and_a_message_in_both_wordings() {
        let all = [
            PhotoError::NotAllowed {
                accepted: &[PhotoKind::Png],
            },
            PhotoError::Unreadable,
            PhotoError::Blank,
        ];
        for e in all {
            assert!(!e.code().is_empty() && e.code().is_ascii());
            assert!(
                e.message_zh()
                    .chars()
                    .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
            );
            assert!(
                SIGNATURE.message(&e).contains("/ "),
                "{}",
                SIGNATURE.message(&e)
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = process(&bytes, &PhotoLimits::default());
        }

        #[test]
        fn a_damaged_jpeg_or_png_never_panics_and_is_never_stored_with_its_metadata(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            png in any::<bool>(),
        ) {
            let mut bytes = if png {
                png_of(&DynamicImage::ImageRgb8(marked_landscape()))
            } else {
                with_exif(&jpeg_of(&marked_landscape(), 90), 6)
            };
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            if let Ok(photo) = process(&bytes, &PhotoLimits::default()) {
                prop_assert!(!find(&photo.stored, &GPS_CANARY));
                prop_assert!(!find(&photo.stored, b"Exif"));
            }
        }

        #[test]
        fn hash_distance_is_symmetric_and_zero_on_itself(a in any::<u64>(), b in any::<u64>()) {
            let (ha, hb) = (format!("{a:016x}"), format!("{b:016x}"));
            prop_assert_eq!(hash_distance(&ha, &ha), Some(0));
            prop_assert_eq!(hash_distance(&ha, &hb), hash_distance(&hb, &ha));
            prop_assert_eq!(hash_distance(&ha, &hb), Some((a ^ b).count_ones()));
        }
    }
}
