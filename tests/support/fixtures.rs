//! Test data: deterministic bytes, real media, multipart forms.

/// Deterministic bytes that differ per seed and position (no two parts alike).
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// Real media made in the test: a PNG, a JPEG (gradients that differ per
/// seed) and an MP4 (an H.264 track of `frames` samples at 25 fps).
pub mod media {
    use std::io::Cursor;

    fn picture(width: u32, height: u32, seed: u8) -> image::RgbImage {
        image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([
                (x * 255 / width.max(1)) as u8,
                (y * 255 / height.max(1)) as u8,
                seed,
            ])
        })
    }

    /// A PNG whose header declares `width`×`height` 8-bit RGB and whose
    /// data is a few rows of zeros: a small file asking for gigabytes (a
    /// decompression bomb as far as any decoder can tell before decoding).
    pub fn png_declaring(width: u32, height: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            out.extend_from_slice(&crc.sum().to_be_bytes());
        }
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let rows = vec![0u8; 4 * (1 + 3 * width as usize)];
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut zlib, &rows).expect("compress");
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &zlib.finish().expect("compress"));
        chunk(&mut out, b"IEND", &[]);
        out
    }

    pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        picture(width, height, seed)
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("encode PNG");
        out.into_inner()
    }

    pub fn jpeg(width: u32, height: u32, seed: u8) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        picture(width, height, seed)
            .write_to(&mut out, image::ImageFormat::Jpeg)
            .expect("encode JPEG");
        out.into_inner()
    }

    /// A camera-like JPEG: a gradient under per-pixel noise, so it
    /// compresses like a photo (a 20 MP one is several MiB, several parts).
    pub fn photo_jpeg(width: u32, height: u32, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        let picture = image::RgbImage::from_fn(width, height, |x, y| {
            // xorshift64: cheap, deterministic noise.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state & 0x3f) as u32;
            image::Rgb([
                ((x * 191 / width.max(1)) + noise) as u8,
                ((y * 191 / height.max(1)) + noise) as u8,
                (noise * 3) as u8,
            ])
        });
        let mut out = Cursor::new(Vec::new());
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&picture)
            .expect("encode JPEG");
        out.into_inner()
    }

    /// A JPEG with an EXIF APP1 segment after SOI saying `Orientation = value`
    /// (as cameras write a portrait shot stored landscape: 6).
    pub fn with_exif_orientation(jpeg: &[u8], value: u16) -> Vec<u8> {
        let mut tiff = b"II*\0".to_vec();
        tiff.extend_from_slice(&8u32.to_le_bytes());
        tiff.extend_from_slice(&1u16.to_le_bytes());
        tiff.extend_from_slice(&0x0112u16.to_le_bytes());
        tiff.extend_from_slice(&3u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_le_bytes());
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    pub fn mp4(frames: u32, seed: u8) -> Vec<u8> {
        // The stand-in provider's own video maker: a real H.264 MP4.
        assetbox_local::standin::media::mp4(frames, 64, 48, seed)
    }

    /// A structurally valid WebM of `width`×`height` VP8 video, as a muxer
    /// lays it out: an EBML header (DocType "webm", which `infer` looks for
    /// to say `video/webm`), then a Segment of known size holding a 100-byte
    /// Void (where a SeekHead would be), Info (TimestampScale 1 ms and, if
    /// given, Duration — live recordings have none), Tracks (one video
    /// track) and one Cluster: a Timestamp and a SimpleBlock carrying
    /// `cluster_bytes` pseudo-random bytes, which ingestion must not read.
    /// Always longer than the 256 bytes `infer` needs to recognise it.
    pub fn webm(
        width: u32,
        height: u32,
        duration_ms: Option<u64>,
        cluster_bytes: usize,
    ) -> Vec<u8> {
        /// ID bytes (marker kept), shortest size vint, payload.
        fn el(id: u32, payload: &[u8]) -> Vec<u8> {
            let mut out: Vec<u8> = id
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            let size = payload.len() as u64;
            let len = (1..=8).find(|&n| size < (1u64 << (7 * n)) - 1).unwrap();
            out.extend_from_slice(&(size | 1u64 << (7 * len)).to_be_bytes()[8 - len..]);
            out.extend_from_slice(payload);
            out
        }
        fn uint(id: u32, value: u64) -> Vec<u8> {
            let bytes: Vec<u8> = value
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            el(id, if bytes.is_empty() { &[0] } else { &bytes })
        }
        let header = [
            uint(0x4286, 1),     // EBMLVersion
            uint(0x42F7, 1),     // EBMLReadVersion
            uint(0x42F2, 4),     // EBMLMaxIDLength
            uint(0x42F3, 8),     // EBMLMaxSizeLength
            el(0x4282, b"webm"), // DocType
            uint(0x4287, 4),     // DocTypeVersion
            uint(0x4285, 2),     // DocTypeReadVersion
        ]
        .concat();
        let mut info = uint(0x2AD7B1, 1_000_000); // TimestampScale: ticks of 1 ms
        info.extend(el(0x4D80, b"assetbox-e2e")); // MuxingApp
        info.extend(el(0x5741, b"assetbox-e2e tests/support media::webm")); // WritingApp
        if let Some(ms) = duration_ms {
            info.extend(el(0x4489, &(ms as f64).to_be_bytes())); // Duration
        }
        let video = [uint(0xB0, width.into()), uint(0xBA, height.into())].concat();
        let entry = [
            uint(0xD7, 1),      // TrackNumber
            uint(0x73C5, 1),    // TrackUID
            uint(0x83, 1),      // TrackType: video
            el(0x86, b"V_VP8"), // CodecID
            el(0xE0, &video),   // Video
        ]
        .concat();
        let tracks = el(0xAE, &entry); // TrackEntry
        let mut block = vec![0x81, 0, 0, 0x80]; // track 1, timestamp 0, keyframe
        let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ cluster_bytes as u64;
        block.extend((0..cluster_bytes).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        }));
        let cluster = [uint(0xE7, 0), el(0xA3, &block)].concat(); // Timestamp, SimpleBlock
        let segment = [
            el(0xEC, &[0; 100]),      // Void
            el(0x1549A966, &info),    // Info
            el(0x1654AE6B, &tracks),  // Tracks
            el(0x1F43B675, &cluster), // Cluster
        ]
        .concat();
        let mut out = el(0x1A45DFA3, &header); // EBML header
        // Segment, with an 8-byte size as muxers reserve it.
        out.extend_from_slice(&0x18538067u32.to_be_bytes());
        out.extend_from_slice(&(segment.len() as u64 | 1 << 56).to_be_bytes());
        out.extend(segment);
        out
    }
}

/// A multipart/form-data body of `(name, file name, bytes)` fields; its
/// content type (with the boundary) and bytes.
pub fn form(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("assetbox-{}", ulid::Ulid::new());
    let mut body = Vec::new();
    for (name, file_name, bytes) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
