//! Keys, types and image descriptions, without I/O.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

/// Thumbnails fit in this square (pixels), longest side.
pub const THUMBNAIL_MAX_PX: u32 = 512;
/// JPEG quality of thumbnails: small files, no visible blocking at 512 px.
const THUMBNAIL_QUALITY: u8 = 80;
/// Decoding refuses images that would need more than this (a 24 MP RGB
/// image needs ~72 MB; this leaves room for 16-bit and RGBA sources).
const DECODE_MAX_ALLOC: u64 = 400 * 1024 * 1024;

/// An S3 event's object key as stored: event keys are URL-encoded with `+`
/// for spaces (real S3; the local stack hands over the same).
pub fn decode_event_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// The media type of an object's first bytes, if recognised.
pub use assetbox_shared::media::media_signature as sniff;

/// What ingestion records for an image, and its thumbnail.
#[derive(Debug, Clone)]
pub struct ImageFacts {
    /// As displayed: EXIF orientation applied (a portrait photo stored
    /// landscape with orientation 6 is taller than wide).
    pub width: u32,
    pub height: u32,
    pub thumbnail_jpeg: Vec<u8>,
    pub thumbnail_width: u32,
    pub thumbnail_height: u32,
}

/// Why an image got no thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotDescribed {
    /// Its header asks for more memory than a decode may take: refused
    /// before anything was allocated. The displayed size is known.
    TooLarge { width: u32, height: u32 },
    /// Damaged, or a format not decoded here; the reason in words.
    Unreadable(String),
}

impl std::fmt::Display for NotDescribed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge { width, height } => write!(
                f,
                "image too large to decode here ({width}×{height}); no thumbnail"
            ),
            Self::Unreadable(reason) => f.write_str(reason),
        }
    }
}

/// Decodes an image (PNG, JPEG, WebP, GIF), applies its EXIF orientation and
/// makes a JPEG thumbnail of at most [`THUMBNAIL_MAX_PX`] on its longer side.
/// Every decode is bounded by what the header declares, checked before any
/// pixel buffer is allocated (a 1 MB PNG can declare 19000×19000).
pub fn describe_image(bytes: &[u8]) -> Result<ImageFacts, NotDescribed> {
    // Most photos are 8-bit JPEGs: those decode at the smallest DCT scale
    // that still covers the thumbnail (shrink-on-load, as vips does), which
    // costs a fraction of a full decode in time and memory.
    let scaled = match jpeg_frame(bytes) {
        Some(frame) if matches!(frame.components, 1 | 3) => decode_jpeg_scaled(bytes, frame).ok(),
        _ => None,
    };
    let (picture, width, height) = match scaled {
        Some(decoded) => decoded,
        None => decode_whole(bytes)?,
    };
    let small = if picture.width() > THUMBNAIL_MAX_PX || picture.height() > THUMBNAIL_MAX_PX {
        picture.thumbnail(THUMBNAIL_MAX_PX, THUMBNAIL_MAX_PX)
    } else {
        picture
    };
    // JPEG has no alpha: flatten to RGB.
    let rgb = small.to_rgb8();
    let mut thumbnail_jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut thumbnail_jpeg, THUMBNAIL_QUALITY)
        .encode_image(&rgb)
        .map_err(|e| NotDescribed::Unreadable(format!("thumbnail not encoded: {e}")))?;
    Ok(ImageFacts {
        width,
        height,
        thumbnail_width: rgb.width(),
        thumbnail_height: rgb.height(),
        thumbnail_jpeg,
    })
}

/// Any supported image, decoded at full size and turned upright; with its
/// displayed width and height.
fn decode_whole(bytes: &[u8]) -> Result<(DynamicImage, u32, u32), NotDescribed> {
    let damaged = |e: image::ImageError| {
        NotDescribed::Unreadable(format!("unsupported or damaged image: {e}"))
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| NotDescribed::Unreadable(format!("unreadable image: {e}")))?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(DECODE_MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(damaged)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // image 0.25 checks `max_alloc` in `ImageReader::decode` only, not on
    // this path (needed for the orientation): check the output buffer here.
    if decoder.total_bytes() > DECODE_MAX_ALLOC {
        let (width, height) = decoder.dimensions();
        let (width, height) = upright(width, height, orientation);
        return Err(NotDescribed::TooLarge { width, height });
    }
    let mut picture = DynamicImage::from_decoder(decoder).map_err(damaged)?;
    picture.apply_orientation(orientation);
    let (width, height) = (picture.width(), picture.height());
    Ok((picture, width, height))
}

/// An 8-bit grey or YCbCr JPEG decoded at the smallest of 1/8, 1/4, 1/2 or
/// 1 that is still at least thumbnail-sized, turned upright; with the full
/// image's displayed width and height.
fn decode_jpeg_scaled(bytes: &[u8], frame: JpegFrame) -> Result<(DynamicImage, u32, u32), String> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(DECODE_MAX_ALLOC as usize);
    let damaged = |e: jpeg_decoder::Error| format!("unsupported or damaged image: {e}");
    // Scale 1 first: the full size, which is what the asset reports.
    let (full_width, full_height) = decoder.scale(u16::MAX, u16::MAX).map_err(damaged)?;
    // A progressive JPEG's coefficients are kept at full size (2 bytes per
    // sample) whatever the output scale, and the decoder's own cap is only
    // checked at the end: refuse here what would not fit (a header of a few
    // bytes can claim 65535×65535).
    // (Baseline frames decode row by row into the scaled output: no cap.)
    let coefficients =
        u64::from(full_width) * u64::from(full_height) * u64::from(frame.components) * 2;
    if frame.progressive && coefficients > DECODE_MAX_ALLOC {
        return Err(format!(
            "image too large to decode: {full_width}×{full_height}"
        ));
    }
    let wanted = THUMBNAIL_MAX_PX as u16;
    let (width, height) = decoder.scale(wanted, wanted).map_err(damaged)?;
    // Baseline frames decode row by row into the scaled output, but that
    // output can still be large (a 65535² frame at 1/8 is 8192²).
    let output = u64::from(width) * u64::from(height) * u64::from(frame.components);
    if output > DECODE_MAX_ALLOC {
        return Err(format!(
            "image too large to decode: {full_width}×{full_height}"
        ));
    }
    let pixels = decoder.decode().map_err(damaged)?;
    let (width, height) = (u32::from(width), u32::from(height));
    let picture = match pixels.len() as u64 / (u64::from(width) * u64::from(height)).max(1) {
        1 => image::GrayImage::from_raw(width, height, pixels).map(DynamicImage::ImageLuma8),
        3 => image::RgbImage::from_raw(width, height, pixels).map(DynamicImage::ImageRgb8),
        _ => None,
    };
    let mut picture = picture.ok_or("unexpected JPEG pixel layout")?;
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    picture.apply_orientation(orientation);
    let (width, height) = upright(u32::from(full_width), u32::from(full_height), orientation);
    Ok((picture, width, height))
}

/// The displayed size of a stored `width`×`height` under `orientation`.
fn upright(width: u32, height: u32, orientation: Orientation) -> (u32, u32) {
    match orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => (height, width),
        _ => (width, height),
    }
}

/// What a JPEG's frame header says, for the choice of decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JpegFrame {
    progressive: bool,
    /// The scaled decoder is only trusted with 1 or 3: it aborts on some
    /// other counts.
    components: u8,
}

/// The frame of a baseline, extended or progressive 8-bit Huffman JPEG
/// (`None` for anything else).
fn jpeg_frame(bytes: &[u8]) -> Option<JpegFrame> {
    if bytes.get(0..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2usize;
    loop {
        // Fill bytes (0xFF runs) may precede a marker.
        while *bytes.get(at)? == 0xFF && *bytes.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        let length = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        match marker {
            // SOF0 baseline, SOF1 extended, SOF2 progressive (Huffman).
            0xC0..=0xC2 => {
                let precision = *bytes.get(at + 4)?;
                let components = *bytes.get(at + 9)?;
                return (precision == 8).then_some(JpegFrame {
                    progressive: marker == 0xC2,
                    components,
                });
            }
            // Other frame types, or the scan began without a frame.
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xDA => return None,
            _ => at = at.checked_add(2 + length)?,
        }
    }
}

/// What ingestion records for a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoFacts {
    pub duration_ms: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Top-level box header at the start of `bytes`: its size (to the end of
/// the file when 0: `None`) and type.
pub fn box_header(bytes: &[u8]) -> Option<(Option<u64>, [u8; 4])> {
    let size = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?) as u64;
    let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let size = match size {
        0 => None,
        1 => Some(u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?)),
        n => Some(n),
    };
    Some((size, kind))
}

/// Duration and picture size from an MP4/MOV `moov` box (the whole box,
/// header included): `mvhd` gives the duration, the first video track's
/// `tkhd` the displayed size.
pub fn describe_moov(moov: &[u8]) -> Result<VideoFacts, String> {
    use mp4::ReadBox;
    let mut cursor = Cursor::new(moov);
    let header = mp4::BoxHeader::read(&mut cursor).map_err(|e| format!("damaged video: {e}"))?;
    let parsed = mp4::MoovBox::read_box(&mut cursor, header.size)
        .map_err(|e| format!("damaged video header: {e}"))?;
    let timescale = u64::from(parsed.mvhd.timescale.max(1));
    let video = parsed
        .traks
        .iter()
        .find(|t| t.mdia.hdlr.handler_type == mp4::FourCC::from(*b"vide"));
    let size = |v: u16| (v > 0).then_some(u32::from(v));
    Ok(VideoFacts {
        duration_ms: u64::try_from(u128::from(parsed.mvhd.duration) * 1000 / u128::from(timescale))
            .map_err(|_| "damaged video header: duration out of range".to_owned())?,
        width: video.and_then(|t| size(t.tkhd.width.value())),
        height: video.and_then(|t| size(t.tkhd.height.value())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let picture = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        let mut out = Cursor::new(Vec::new());
        picture
            .write_to(&mut out, image::ImageFormat::Jpeg)
            .unwrap();
        out.into_inner()
    }

    /// The JPEG with an EXIF APP1 segment right after SOI saying
    /// `Orientation = value` (little-endian TIFF, one IFD entry).
    fn with_orientation(jpeg: &[u8], value: u16) -> Vec<u8> {
        let mut tiff = Vec::new();
        tiff.extend_from_slice(b"II*\0");
        tiff.extend_from_slice(&8u32.to_le_bytes()); // IFD0 offset
        tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_le_bytes()); // count
        tiff.extend_from_slice(&value.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]); // padding of the 4-byte value
        tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec(); // SOI
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn box_headers_read_all_three_size_forms() {
        assert_eq!(
            box_header(b"\0\0\0\x18ftypisom"),
            Some((Some(24), *b"ftyp"))
        );
        assert_eq!(box_header(b"\0\0\0\0mdat"), Some((None, *b"mdat")));
        let mut large = b"\0\0\0\x01mdat".to_vec();
        large.extend_from_slice(&(5u64 << 32).to_be_bytes());
        assert_eq!(box_header(&large), Some((Some(5u64 << 32), *b"mdat")));
        assert_eq!(box_header(b"\0\0"), None);
    }

    #[test]
    fn event_keys_are_decoded_like_s3_encodes_them() {
        assert_eq!(
            decode_event_key("uploads/u-1/01J/original.png"),
            "uploads/u-1/01J/original.png"
        );
        assert_eq!(decode_event_key("a+b%2Bc%20d"), "a b+c d");
        assert_eq!(decode_event_key("Sz%C3%A8ne+1.jpg"), "Szène 1.jpg");
    }

    #[test]
    fn exif_rotation_swaps_the_displayed_dimensions() {
        let stored = jpeg(1200, 800);
        let plain = describe_image(&stored).unwrap();
        assert_eq!((plain.width, plain.height), (1200, 800));
        assert_eq!((plain.thumbnail_width, plain.thumbnail_height), (512, 341));

        let rotated = describe_image(&with_orientation(&stored, 6)).unwrap();
        assert_eq!((rotated.width, rotated.height), (800, 1200));
        assert_eq!(
            (rotated.thumbnail_width, rotated.thumbnail_height),
            (341, 512)
        );
        let thumb = image::load_from_memory(&rotated.thumbnail_jpeg).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (341, 512));
        assert_eq!(sniff(&rotated.thumbnail_jpeg), Some("image/jpeg"));
    }

    #[test]
    fn large_jpegs_shrink_on_load_and_match_a_full_decode() {
        let stored = with_orientation(&jpeg(2400, 1600), 6);
        assert_eq!(
            jpeg_frame(&stored),
            Some(JpegFrame {
                progressive: false,
                components: 3
            })
        );
        let frame = jpeg_frame(&stored).unwrap();
        let (scaled, width, height) = decode_jpeg_scaled(&stored, frame).unwrap();
        // 1/4 scale is the smallest still ≥ 512 px: 600×400, then upright.
        assert_eq!((scaled.width(), scaled.height()), (400, 600));
        assert_eq!((width, height), (1600, 2400));

        let facts = describe_image(&stored).unwrap();
        assert_eq!((facts.width, facts.height), (1600, 2400));
        assert_eq!((facts.thumbnail_width, facts.thumbnail_height), (341, 512));
        // Same picture as the full decode's (orientation applied the same
        // way): mean channel difference of the two thumbnails is small.
        let (whole, _, _) = decode_whole(&stored).unwrap();
        let whole = whole.resize_exact(341, 512, image::imageops::FilterType::Triangle);
        let fast = image::load_from_memory(&facts.thumbnail_jpeg).unwrap();
        let (a, b) = (whole.to_rgb8(), fast.to_rgb8());
        let diff: u64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        assert!(
            diff / a.as_raw().len() as u64 <= 6,
            "mean difference {diff}"
        );
    }

    #[test]
    fn a_tiny_header_claiming_a_huge_progressive_jpeg_is_refused_before_decoding() {
        // SOI, then a progressive frame header: 8-bit, 20000×20000, 3
        // components — ~2.4 GB of coefficients if the decoder believed it.
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xC2, 0, 17, 8];
        bytes.extend_from_slice(&20_000u16.to_be_bytes());
        bytes.extend_from_slice(&20_000u16.to_be_bytes());
        bytes.push(3);
        for id in 1..=3 {
            bytes.extend_from_slice(&[id, 0x11, 0]);
        }
        bytes.extend_from_slice(&[0xFF, 0xD9]);
        let frame = jpeg_frame(&bytes).unwrap();
        assert!(frame.progressive);
        let refused = decode_jpeg_scaled(&bytes, frame).unwrap_err();
        assert!(refused.contains("too large"), "{refused}");
        assert!(describe_image(&bytes).is_err());
    }

    /// A PNG header that declares `width`×`height` 8-bit RGB, with a scrap
    /// of image data: a few bytes asking for gigabytes.
    fn png_declaring(width: u32, height: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
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
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut out, b"IHDR", &ihdr);
        // A zlib stream of one stored block of zeros (a row's start).
        chunk(
            &mut out,
            b"IDAT",
            &[0x78, 0x01, 0x01, 0x04, 0x00, 0xFB, 0xFF, 0, 0, 0, 0],
        );
        chunk(&mut out, b"IEND", &[]);
        out
    }

    #[test]
    fn a_small_png_declaring_huge_dimensions_is_refused_before_any_allocation() {
        let bomb = png_declaring(19_000, 19_000);
        assert!(bomb.len() < 100);
        // 19000² RGB is ~1 GB of pixels, above the cap: the size is known
        // from the header, nothing is decoded.
        assert_eq!(
            describe_image(&bomb).unwrap_err(),
            NotDescribed::TooLarge {
                width: 19_000,
                height: 19_000
            }
        );
        // Within the cap the same scrap of data is merely damaged.
        assert!(matches!(
            describe_image(&png_declaring(2_000, 1_000)).unwrap_err(),
            NotDescribed::Unreadable(_)
        ));
    }

    #[test]
    fn frame_headers_pick_the_scaled_decoder_only_for_plain_jpegs() {
        let grey = {
            let picture = image::GrayImage::from_fn(640, 480, |x, _| image::Luma([x as u8]));
            let mut out = Cursor::new(Vec::new());
            picture
                .write_to(&mut out, image::ImageFormat::Jpeg)
                .unwrap();
            out.into_inner()
        };
        assert_eq!(jpeg_frame(&grey).map(|f| f.components), Some(1));
        let facts = describe_image(&grey).unwrap();
        assert_eq!((facts.width, facts.height), (640, 480));
        assert_eq!((facts.thumbnail_width, facts.thumbnail_height), (512, 384));
        let colour = jpeg(64, 48);
        for cut in 0..colour.len().min(700) {
            // Truncated headers never panic; most give no answer.
            let _ = jpeg_frame(&colour[..cut]);
        }
        assert_eq!(jpeg_frame(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(jpeg_frame(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
    }

    #[test]
    fn small_images_keep_their_size_and_non_images_are_refused() {
        let facts = describe_image(&jpeg(40, 30)).unwrap();
        assert_eq!((facts.thumbnail_width, facts.thumbnail_height), (40, 30));
        assert!(describe_image(b"MZ\x90\0not an image").is_err());
        assert_eq!(
            sniff(b"MZ\x90\0\x03\0\0\0"),
            Some("application/vnd.microsoft.portable-executable")
        );
    }
}
