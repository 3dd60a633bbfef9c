//! Checking uploaded photos before anything else touches them: the type is read from the
//! magic bytes (never from the file name or the client's content type), the dimensions from the
//! header, and only then — for images that must be decoded — the pixels, under a memory limit.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

/// Largest upload accepted, in bytes.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Largest width or height accepted, in pixels.
pub const MAX_SIDE: u32 = 8000;
/// Most memory a decoder may use for one image (8000 × 8000 RGBA is 256 MB).
const MAX_DECODE_BYTES: u64 = 300 * 1024 * 1024;

/// The image types we accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
}

impl ImageKind {
    /// MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
        }
    }

    /// File extension chosen by the server.
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpg",
            ImageKind::Png => "png",
        }
    }

    fn format(self) -> ImageFormat {
        match self {
            ImageKind::Jpeg => ImageFormat::Jpeg,
            ImageKind::Png => ImageFormat::Png,
        }
    }
}

/// An upload that passed the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckedImage {
    pub kind: ImageKind,
    pub width: u32,
    pub height: u32,
}

/// Why an upload is not an acceptable image. Each has a stable code and a message in Chinese
/// and English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageProblem {
    #[error("empty file")]
    Empty,
    #[error("file too large")]
    TooLarge { limit: usize },
    #[error("not an allowed image type")]
    WrongType { allowed: &'static [ImageKind] },
    #[error("image unreadable")]
    Unreadable,
    #[error("image too large")]
    TooManyPixels { width: u32, height: u32 },
    #[error("image is blank")]
    Blank,
}

impl ImageProblem {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            ImageProblem::Empty => "file_empty",
            ImageProblem::TooLarge { .. } => "file_too_large",
            ImageProblem::WrongType { .. } => "file_type_not_allowed",
            ImageProblem::Unreadable => "image_unreadable",
            ImageProblem::TooManyPixels { .. } => "image_too_large",
            ImageProblem::Blank => "signature_blank",
        }
    }

    /// What the person on the phone reads.
    pub fn message(&self) -> String {
        match self {
            ImageProblem::Empty => "文件为空 / the file is empty".into(),
            ImageProblem::TooLarge { limit } => format!(
                "文件不能超过 {} MB / the file must not exceed {} MB",
                limit / (1024 * 1024),
                limit / (1024 * 1024)
            ),
            ImageProblem::WrongType { allowed } => {
                let names: Vec<&str> = allowed
                    .iter()
                    .map(|k| match k {
                        ImageKind::Jpeg => "JPEG",
                        ImageKind::Png => "PNG",
                    })
                    .collect();
                format!(
                    "只接受 {} 图片（HEIC、PDF 或改了扩展名的文件都不行，请在相机设置中选择“兼容性最佳”或截图后上传）/ only {} images are accepted (not HEIC, PDF or renamed files)",
                    names.join("、"),
                    names.join(" or ")
                )
            }
            ImageProblem::Unreadable => {
                "图片已损坏，无法读取 / the image is damaged and cannot be read".into()
            }
            ImageProblem::TooManyPixels { width, height } => format!(
                "图片尺寸 {width}×{height} 过大，长宽均不能超过 {MAX_SIDE} 像素 / the image is {width}×{height}; neither side may exceed {MAX_SIDE} pixels"
            ),
            ImageProblem::Blank => {
                "签名是空白的，请手写签名后再提交 / the signature is blank: please sign by hand"
                    .into()
            }
        }
    }
}

/// The type by magic bytes alone, if it is one of ours.
pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    match image::guess_format(bytes).ok()? {
        ImageFormat::Jpeg => Some(ImageKind::Jpeg),
        ImageFormat::Png => Some(ImageKind::Png),
        _ => None,
    }
}

/// Checks size, type (by magic bytes, against `allowed`) and dimensions (from the header, so a
/// decompression bomb is refused before it is decoded).
pub fn check(bytes: &[u8], allowed: &'static [ImageKind]) -> Result<CheckedImage, ImageProblem> {
    if bytes.is_empty() {
        return Err(ImageProblem::Empty);
    }
    if bytes.len() > MAX_BYTES {
        return Err(ImageProblem::TooLarge { limit: MAX_BYTES });
    }
    let kind = sniff(bytes)
        .filter(|k| allowed.contains(k))
        .ok_or(ImageProblem::WrongType { allowed })?;
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), kind.format())
        .into_dimensions()
        .map_err(|_| ImageProblem::Unreadable)?;
    if width == 0 || height == 0 {
        return Err(ImageProblem::Unreadable);
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImageProblem::TooManyPixels { width, height });
    }
    Ok(CheckedImage {
        kind,
        width,
        height,
    })
}

/// Decodes a checked image (under size and memory limits) and refuses one whose every pixel
/// looks the same — a signature pad submitted without a stroke. Fully transparent pixels count
/// as the same whatever their colour channels say.
pub fn ensure_not_blank(bytes: &[u8], checked: &CheckedImage) -> Result<(), ImageProblem> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), checked.kind.format());
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|_| ImageProblem::Unreadable)?;
    let rgba = decoded.to_rgba8();
    let visible = |p: &image::Rgba<u8>| if p.0[3] == 0 { [0u8; 4] } else { p.0 };
    let mut pixels = rgba.pixels();
    let Some(first) = pixels.next().map(visible) else {
        return Err(ImageProblem::Blank);
    };
    if pixels.all(|p| visible(p) == first) {
        Err(ImageProblem::Blank)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgba};

    const BOTH: &[ImageKind] = &[ImageKind::Jpeg, ImageKind::Png];
    const PNG_ONLY: &[ImageKind] = &[ImageKind::Png];

    fn png(width: u32, height: u32, stroke: bool) -> Vec<u8> {
        let mut img = ImageBuffer::from_pixel(width, height, Rgba([255u8, 255, 255, 0]));
        if stroke {
            for x in 2..width.saturating_sub(2) {
                img.put_pixel(x, height / 2, Rgba([0, 0, 0, 255]));
            }
        }
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_png_and_a_jpeg_pass_with_their_dimensions() {
        let checked = check(&png(40, 20, true), BOTH).unwrap();
        assert_eq!(
            (checked.kind, checked.width, checked.height),
            (ImageKind::Png, 40, 20)
        );
        let checked = check(&jpeg(64, 48), BOTH).unwrap();
        assert_eq!(
            (checked.kind, checked.width, checked.height),
            (ImageKind::Jpeg, 64, 48)
        );
    }

    #[test]
    fn a_jpeg_is_refused_where_only_png_is_allowed() {
        let err = check(&jpeg(8, 8), PNG_ONLY).unwrap_err();
        assert_eq!(err.code(), "file_type_not_allowed");
        assert!(err.message().contains("PNG"), "{}", err.message());
    }

    #[test]
    fn pdf_and_heic_are_refused_by_their_bytes() {
        let pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n".to_vec();
        assert_eq!(
            check(&pdf, BOTH).unwrap_err().code(),
            "file_type_not_allowed"
        );
        let mut heic = vec![0, 0, 0, 0x18];
        heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
        assert_eq!(
            check(&heic, BOTH).unwrap_err().code(),
            "file_type_not_allowed"
        );
        assert_eq!(check(&[], BOTH).unwrap_err(), ImageProblem::Empty);
    }

    #[test]
    fn a_truncated_header_is_unreadable() {
        let bytes = png(10, 10, true);
        assert_eq!(
            check(&bytes[..12], BOTH).unwrap_err(),
            ImageProblem::Unreadable
        );
    }

    #[test]
    fn oversized_dimensions_are_refused_from_the_header_alone() {
        let bytes = png(9000, 10, false);
        assert_eq!(
            check(&bytes, BOTH).unwrap_err(),
            ImageProblem::TooManyPixels {
                width: 9000,
                height: 10
            }
        );
    }

    #[test]
    fn a_file_over_the_byte_limit_is_refused_before_it_is_read() {
        let mut bytes = png(4, 4, true);
        bytes.resize(MAX_BYTES + 1, 0);
        assert_eq!(check(&bytes, BOTH).unwrap_err().code(), "file_too_large");
    }

    #[test]
    fn a_blank_signature_is_refused_and_a_stroke_passes() {
        let blank = png(100, 40, false);
        let checked = check(&blank, PNG_ONLY).unwrap();
        assert_eq!(ensure_not_blank(&blank, &checked), Err(ImageProblem::Blank));
        let signed = png(100, 40, true);
        let checked = check(&signed, PNG_ONLY).unwrap();
        assert_eq!(ensure_not_blank(&signed, &checked), Ok(()));
    }
}
