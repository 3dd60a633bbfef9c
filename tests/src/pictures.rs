//! Pictures for upload tests, made here so they are real: documents that differ from each
//! other, a photo carrying GPS in its EXIF, and the uploads a phone must never get through.

use std::io::Cursor;

use image::{ImageBuffer, ImageFormat, Rgb, RgbImage};

fn encode(img: RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .expect("encode");
    out.into_inner()
}

/// A photographed page: a grid of grey blocks drawn from `seed`, so two seeds give documents
/// whose perceptual hashes are far apart and one seed gives the same document.
pub fn document(seed: u64) -> RgbImage {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u8
    };
    let blocks: Vec<u8> = (0..16 * 12).map(|_| next()).collect();
    ImageBuffer::from_fn(480, 640, |x, y| {
        let v = blocks[((y / 54).min(11) * 16 + (x / 30).min(15)) as usize];
        Rgb([v, v, v])
    })
}

/// A small [`document`] (120 × 160 px) as a JPEG, for tests that upload hundreds of photos.
pub fn small_document_jpeg(seed: u64) -> Vec<u8> {
    let small = image::imageops::resize(
        &document(seed),
        120,
        160,
        image::imageops::FilterType::Nearest,
    );
    encode(small, ImageFormat::Jpeg)
}

/// [`document`] as a JPEG.
pub fn document_jpeg(seed: u64) -> Vec<u8> {
    encode(document(seed), ImageFormat::Jpeg)
}

/// [`document`] as a PNG (the same bill saved another way: other bytes, same picture).
pub fn document_png(seed: u64) -> Vec<u8> {
    encode(document(seed), ImageFormat::Png)
}

fn exif_with_gps() -> Vec<u8> {
    fn entry(t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
        t.extend(tag.to_le_bytes());
        t.extend(kind.to_le_bytes());
        t.extend(count.to_le_bytes());
        t.extend(value);
    }
    let mut t = b"Exif\0\0II*\0".to_vec();
    t.extend(8u32.to_le_bytes());
    // IFD0: orientation 1 and a pointer to the GPS IFD at 38.
    t.extend(2u16.to_le_bytes());
    entry(&mut t, 0x0112, 3, 1, [1, 0, 0, 0]);
    entry(&mut t, 0x8825, 4, 1, 38u32.to_le_bytes());
    t.extend(0u32.to_le_bytes());
    // GPS IFD: version, latitude ref N, latitude (three rationals at 80).
    t.extend(3u16.to_le_bytes());
    entry(&mut t, 0x0000, 1, 4, [2, 2, 0, 0]);
    entry(&mut t, 0x0001, 2, 2, *b"N\0\0\0");
    entry(&mut t, 0x0002, 5, 3, 80u32.to_le_bytes());
    t.extend(0u32.to_le_bytes());
    for (num, den) in [(40u32, 1u32), (50, 1), (2712, 100)] {
        t.extend(num.to_le_bytes());
        t.extend(den.to_le_bytes());
    }
    t
}

/// The marker bytes every EXIF block starts with; absent from a cleaned photo.
pub const EXIF_MARKER: &[u8] = b"Exif\0\0";

/// A JPEG of [`document`] with an EXIF block holding a GPS position (as phones write).
pub fn jpeg_with_gps(seed: u64) -> Vec<u8> {
    let jpeg = document_jpeg(seed);
    let payload = exif_with_gps();
    let len = u16::try_from(payload.len() + 2).expect("short");
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(len.to_be_bytes());
    out.extend(&payload);
    out.extend(&jpeg[2..]);
    out
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
    out.extend(u32::try_from(data.len()).expect("short").to_be_bytes());
    let mut body = kind.to_vec();
    body.extend(data);
    out.extend(&body);
    out.extend(crc32(&body).to_be_bytes());
}

/// A decompression bomb: a few hundred bytes whose header announces 30000 × 30000 pixels
/// (900 million: gigabytes once decoded).
pub fn png_bomb() -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(30000u32.to_be_bytes());
    ihdr.extend(30000u32.to_be_bytes());
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

/// A JPEG cut off two thirds of the way (a broken upload).
pub fn truncated_jpeg(seed: u64) -> Vec<u8> {
    let jpeg = document_jpeg(seed);
    jpeg[..jpeg.len() * 2 / 3].to_vec()
}

/// An SVG with a script in it.
pub fn svg() -> Vec<u8> {
    b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"
        .to_vec()
}

/// A PDF (sent under a `.jpg` name by the tests).
pub fn pdf() -> Vec<u8> {
    b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec()
}

/// The start of an iPhone HEIC photo.
pub fn heic() -> Vec<u8> {
    let mut heic = vec![0, 0, 0, 0x18];
    heic.extend(b"ftypheic\0\0\0\0mif1heic");
    heic.extend([0u8; 64]);
    heic
}

/// A 4000 × 3000 photographed page with sensor-like noise, as a phone's JPEG (quality 90).
pub fn twelve_megapixel_jpeg(seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let img = ImageBuffer::from_fn(4000, 3000, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let block = (((x / 250) * 7 + (y / 200) * 13 + seed as u32) % 200) as u8 + 30;
        let noise = (state % 24) as u8;
        Rgb([block + noise, block + noise / 2, block])
    });
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .expect("encode");
    out.into_inner()
}
