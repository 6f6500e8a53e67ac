//! WebM/Matroska description without I/O: duration and picture size from
//! the Segment's Info and Tracks elements, which sit before the first
//! Cluster, so the caller finds them with a few small ranged reads
//! ([`element_header`] on 12-byte windows) and never downloads the video.
//!
//! EBML (RFC 8794) is read by hand: a handful of lines, where a crate would
//! want the whole file or a `Read + Seek` over it.

/// EBML header, first in every WebM/Matroska file.
pub const EBML_ID: u32 = 0x1A45_DFA3;
/// Segment: everything after the EBML header (Info, Tracks, Clusters…).
pub const SEGMENT_ID: u32 = 0x1853_8067;
/// Segment Info: TimestampScale and Duration.
pub const INFO_ID: u32 = 0x1549_A966;
/// Tracks: one TrackEntry per track.
pub const TRACKS_ID: u32 = 0x1654_AE6B;
/// Cluster: media data; what is needed lies before the first one.
pub const CLUSTER_ID: u32 = 0x1F43_B675;
/// An element header never takes more than this: a 4-byte ID and an
/// 8-byte size. A read of this many bytes always holds a whole header.
pub const MAX_HEADER_LEN: usize = 12;

const TIMESTAMP_SCALE_ID: u32 = 0x2A_D7B1;
const DURATION_ID: u32 = 0x4489;
const TRACK_ENTRY_ID: u32 = 0xAE;
const TRACK_TYPE_ID: u32 = 0x83;
const VIDEO_ID: u32 = 0xE0;
const PIXEL_WIDTH_ID: u32 = 0xB0;
const PIXEL_HEIGHT_ID: u32 = 0xBA;
/// TrackType of video tracks (2 is audio, 17 subtitles…).
const TRACK_TYPE_VIDEO: u64 = 1;
/// Nanoseconds per tick when Info does not say (the spec's default: ms).
const DEFAULT_TIMESTAMP_SCALE: u64 = 1_000_000;
/// 2^64, exactly: durations from here on do not fit in a `u64`.
const U64_LIMIT: f64 = 18_446_744_073_709_551_616.0;

/// An element's header: what the caller needs to enter or skip it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementHeader {
    /// With its length marker kept, as the spec writes IDs (Segment is
    /// `0x18538067`).
    pub id: u32,
    /// Bytes taken by the ID and the size: the payload starts here.
    pub header_len: u64,
    /// Payload length; `None` for "unknown size" (all value bits set), as
    /// live recorders write the Segment and Clusters: such an element runs
    /// to the end of its parent.
    pub size: Option<u64>,
}

/// The header of the element at the start of `bytes`, or `None` when the
/// bytes are too short or not a header (an ID longer than 4 bytes, a size
/// longer than 8 — a first byte of 0).
pub fn element_header(bytes: &[u8]) -> Option<ElementHeader> {
    let (id_len, id) = vint(bytes, 4)?;
    let (size_len, raw_size) = vint(bytes.get(id_len..)?, 8)?;
    // The length marker: the bit just above the value bits.
    let marker = 1u64 << (7 * size_len);
    let value = raw_size ^ marker;
    Some(ElementHeader {
        id: u32::try_from(id).ok()?,
        header_len: (id_len + size_len) as u64,
        size: (value != marker - 1).then_some(value),
    })
}

/// A variable-length integer of at most `max_len` bytes at the start of
/// `bytes`: its length and raw value, length marker included.
fn vint(bytes: &[u8], max_len: usize) -> Option<(usize, u64)> {
    let first = *bytes.first()?;
    // The count of leading zeros gives the length; a first byte of 0 would
    // mean 9 bytes or more, which EBML does not allow.
    let len = first.leading_zeros() as usize + 1;
    if len > max_len {
        return None;
    }
    let raw = bytes
        .get(..len)?
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    Some((len, raw))
}

/// What ingestion learns from a WebM. Unlike [`crate::describe::VideoFacts`]
/// the duration is optional: live recordings (browsers' `MediaRecorder`)
/// are written as they are made and carry no Duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebmFacts {
    /// Rounded down.
    pub duration_ms: Option<u64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Duration and picture size from the payloads (headers excluded) of the
/// Segment's Info and Tracks elements, either of which may be missing. The
/// size is the first video track's. The reason, in words, when they are
/// damaged.
///
/// The size is PixelWidth × PixelHeight, the coded picture, not
/// DisplayWidth × DisplayHeight: those are in DisplayUnit, which may be
/// centimetres, inches or a bare aspect ratio (16 × 9) rather than pixels,
/// and recorders rarely write them. Only anamorphic video (non-square
/// pixels, rare in WebM) is reported at a size other than its displayed one.
pub fn describe(info: Option<&[u8]>, tracks: Option<&[u8]>) -> Result<WebmFacts, String> {
    let duration_ms = match info {
        Some(info) => duration_ms(info).map_err(|e| format!("damaged WebM Info: {e}"))?,
        None => None,
    };
    let (width, height) = match tracks {
        Some(tracks) => picture_size(tracks).map_err(|e| format!("damaged WebM Tracks: {e}"))?,
        None => (None, None),
    };
    Ok(WebmFacts {
        duration_ms,
        width,
        height,
    })
}

/// Info's Duration in milliseconds, `None` when it has none.
fn duration_ms(info: &[u8]) -> Result<Option<u64>, String> {
    let mut scale = None;
    let mut duration = None;
    for child in Children(info) {
        let (id, payload) = child?;
        match id {
            TIMESTAMP_SCALE_ID if scale.is_none() => scale = Some(uint(payload)?),
            DURATION_ID if duration.is_none() => duration = Some(float(payload)?),
            _ => {}
        }
    }
    // Nanoseconds per tick: Duration counts ticks.
    let scale = scale.unwrap_or(DEFAULT_TIMESTAMP_SCALE);
    if scale == 0 {
        return Err("TimestampScale is 0".into());
    }
    let Some(duration) = duration else {
        return Ok(None);
    };
    if !(duration.is_finite() && duration >= 0.0) {
        return Err(format!("Duration {duration} is not a length"));
    }
    // Exact for whole durations: integers below 2^53 multiply exactly and a
    // correctly rounded division by 10^6 of a multiple of 10^6 is exact.
    let ms = (duration * scale as f64 / 1_000_000.0).floor();
    if ms >= U64_LIMIT {
        return Err(format!("Duration {duration} is out of range"));
    }
    Ok(Some(ms as u64))
}

/// PixelWidth and PixelHeight of the first video TrackEntry; `None` for
/// what is missing (or 0), both when there is no video track.
fn picture_size(tracks: &[u8]) -> Result<(Option<u32>, Option<u32>), String> {
    for child in Children(tracks) {
        let (id, entry) = child?;
        if id != TRACK_ENTRY_ID {
            continue;
        }
        let mut kind = None;
        let mut video = None;
        for child in Children(entry) {
            let (id, payload) = child?;
            match id {
                TRACK_TYPE_ID if kind.is_none() => kind = Some(uint(payload)?),
                VIDEO_ID if video.is_none() => video = Some(payload),
                _ => {}
            }
        }
        if kind != Some(TRACK_TYPE_VIDEO) {
            continue;
        }
        let (mut width, mut height) = (None, None);
        for child in Children(video.unwrap_or_default()) {
            let (id, payload) = child?;
            match id {
                PIXEL_WIDTH_ID if width.is_none() => width = Some(pixels(uint(payload)?)?),
                PIXEL_HEIGHT_ID if height.is_none() => height = Some(pixels(uint(payload)?)?),
                _ => {}
            }
        }
        return Ok((width.flatten(), height.flatten()));
    }
    Ok((None, None))
}

/// A picture side: 0 (invalid, but seen) as unknown.
fn pixels(value: u64) -> Result<Option<u32>, String> {
    if value == 0 {
        return Ok(None);
    }
    u32::try_from(value)
        .map(Some)
        .map_err(|_| format!("picture size {value} is out of range"))
}

/// An EBML unsigned integer: 0 to 8 big-endian bytes (none means 0).
fn uint(payload: &[u8]) -> Result<u64, String> {
    if payload.len() > 8 {
        return Err(format!("integer of {} bytes", payload.len()));
    }
    Ok(payload
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// An EBML float: 4 or 8 big-endian bytes. (The spec also allows 0 bytes
/// for 0.0, which no Duration may be.)
fn float(payload: &[u8]) -> Result<f64, String> {
    if let Ok(bytes) = <[u8; 8]>::try_from(payload) {
        Ok(f64::from_be_bytes(bytes))
    } else if let Ok(bytes) = <[u8; 4]>::try_from(payload) {
        Ok(f64::from(f32::from_be_bytes(bytes)))
    } else {
        Err(format!("float of {} bytes", payload.len()))
    }
}

/// The child elements of a payload, as `(id, payload)`; stops after the
/// first error. Children must have a known size that fits in the parent:
/// an unknown size is only meant for the Segment and Clusters.
struct Children<'a>(&'a [u8]);

impl<'a> Iterator for Children<'a> {
    type Item = Result<(u32, &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let item = split_child(self.0);
        self.0 = match &item {
            Ok((_, _, rest)) => rest,
            Err(_) => &[],
        };
        Some(item.map(|(id, payload, _)| (id, payload)))
    }
}

/// The element at the start of `bytes`: its ID, its payload and the bytes
/// after it.
fn split_child(bytes: &[u8]) -> Result<(u32, &[u8], &[u8]), String> {
    let header = element_header(bytes).ok_or("truncated or invalid element header")?;
    let size = header
        .size
        .ok_or_else(|| format!("element {:#X} of unknown size", header.id))?;
    let end = header
        .header_len
        .checked_add(size)
        .and_then(|end| usize::try_from(end).ok())
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| format!("element {:#X} runs past its parent", header.id))?;
    let (element, rest) = bytes.split_at(end);
    let payload = usize::try_from(header.header_len)
        .ok()
        .and_then(|start| element.get(start..))
        .unwrap_or_default();
    Ok((header.id, payload, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element: its ID's bytes (marker included, leading zero bytes
    /// dropped), its size in the shortest vint, its payload.
    fn el(id: u32, payload: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = id
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.extend(size_vint(payload.len() as u64));
        out.extend_from_slice(payload);
        out
    }

    /// The shortest vint for `size` (all value bits set would mean unknown).
    fn size_vint(size: u64) -> Vec<u8> {
        let len = (1..=8).find(|&n| size < (1u64 << (7 * n)) - 1).unwrap();
        let raw = size | (1u64 << (7 * len));
        raw.to_be_bytes()[8 - len..].to_vec()
    }

    fn uint_el(id: u32, value: u64) -> Vec<u8> {
        let bytes: Vec<u8> = value
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        el(id, if bytes.is_empty() { &[0] } else { &bytes })
    }

    fn f64_el(id: u32, value: f64) -> Vec<u8> {
        el(id, &value.to_be_bytes())
    }

    fn f32_el(id: u32, value: f32) -> Vec<u8> {
        el(id, &value.to_be_bytes())
    }

    fn info(scale: Option<u64>, duration: Option<Vec<u8>>) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(scale) = scale {
            out.extend(uint_el(TIMESTAMP_SCALE_ID, scale));
        }
        out.extend(el(0x4D80, b"assetbox-test")); // MuxingApp
        if let Some(duration) = duration {
            out.extend(duration);
        }
        out.extend(el(0x5741, b"assetbox-test")); // WritingApp
        out
    }

    fn track(number: u64, kind: u64, codec: &str, size: Option<(u64, u64)>) -> Vec<u8> {
        let mut entry = uint_el(0xD7, number); // TrackNumber
        entry.extend(uint_el(0x73C5, number)); // TrackUID
        entry.extend(uint_el(TRACK_TYPE_ID, kind));
        entry.extend(el(0x86, codec.as_bytes())); // CodecID
        match size {
            Some((w, h)) => {
                let mut video = uint_el(PIXEL_WIDTH_ID, w);
                video.extend(uint_el(PIXEL_HEIGHT_ID, h));
                entry.extend(el(VIDEO_ID, &video));
            }
            None => {
                let mut audio = f64_el(0xB5, 48_000.0); // SamplingFrequency
                audio.extend(uint_el(0x9F, 2)); // Channels
                entry.extend(el(0xE1, &audio)); // Audio
            }
        }
        el(TRACK_ENTRY_ID, &entry)
    }

    fn vp8_tracks() -> Vec<u8> {
        track(1, 1, "V_VP8", Some((640, 360)))
    }

    /// A whole WebM: EBML header, then a Segment (8-byte size, as muxers
    /// reserve it) holding a Void, Info, Tracks and one Cluster.
    fn webm(info: &[u8], tracks: &[u8]) -> Vec<u8> {
        let mut header = uint_el(0x4286, 1); // EBMLVersion
        header.extend(uint_el(0x42F7, 1)); // EBMLReadVersion
        header.extend(uint_el(0x42F2, 4)); // EBMLMaxIDLength
        header.extend(uint_el(0x42F3, 8)); // EBMLMaxSizeLength
        header.extend(el(0x4282, b"webm")); // DocType
        header.extend(uint_el(0x4287, 4)); // DocTypeVersion
        header.extend(uint_el(0x4285, 2)); // DocTypeReadVersion
        let mut cluster = uint_el(0xE7, 0); // Timestamp
        let mut block = vec![0x81, 0, 0, 0x80]; // track 1, at 0, keyframe
        block.extend((0..300u32).map(|i| (i * 37 % 251) as u8));
        cluster.extend(el(0xA3, &block)); // SimpleBlock
        let mut segment = el(0xEC, &[0; 100]); // Void
        segment.extend(el(INFO_ID, info));
        segment.extend(el(TRACKS_ID, tracks));
        segment.extend(el(CLUSTER_ID, &cluster));
        let mut out = el(EBML_ID, &header);
        out.extend(SEGMENT_ID.to_be_bytes());
        out.extend((segment.len() as u64 | 1 << 56).to_be_bytes());
        out.extend(segment);
        out
    }

    /// Info's and Tracks' payloads, found as ingestion does: one
    /// [`MAX_HEADER_LEN`]-byte window per element header.
    fn sections(file: &[u8]) -> (Option<&[u8]>, Option<&[u8]>) {
        let window = |at: u64| {
            let at = usize::try_from(at).unwrap();
            let end = file.len().min(at + MAX_HEADER_LEN);
            &file[at..end]
        };
        let ebml = element_header(window(0)).unwrap();
        assert_eq!(ebml.id, EBML_ID);
        let mut at = ebml.header_len + ebml.size.unwrap();
        let segment = element_header(window(at)).unwrap();
        assert_eq!(segment.id, SEGMENT_ID);
        at += segment.header_len;
        let (mut info, mut tracks) = (None, None);
        while (at as usize) < file.len() && (info.is_none() || tracks.is_none()) {
            let child = element_header(window(at)).unwrap();
            let start = (at + child.header_len) as usize;
            let payload = &file[start..start + child.size.unwrap() as usize];
            match child.id {
                INFO_ID => info = Some(payload),
                TRACKS_ID => tracks = Some(payload),
                CLUSTER_ID => break,
                _ => {}
            }
            at += child.header_len + child.size.unwrap();
        }
        (info, tracks)
    }

    #[test]
    fn headers_read_ids_of_each_length_and_sizes_of_each_length() {
        // 1-byte ID (Void), 1-byte size.
        assert_eq!(
            element_header(&[0xEC, 0x85]),
            Some(ElementHeader {
                id: 0xEC,
                header_len: 2,
                size: Some(5)
            })
        );
        // 2-byte ID (Duration), 2-byte size.
        assert_eq!(
            element_header(&[0x44, 0x89, 0x41, 0x02]),
            Some(ElementHeader {
                id: DURATION_ID,
                header_len: 4,
                size: Some(0x102)
            })
        );
        // 3-byte ID (TimestampScale).
        assert_eq!(
            element_header(&[0x2A, 0xD7, 0xB1, 0x83]),
            Some(ElementHeader {
                id: TIMESTAMP_SCALE_ID,
                header_len: 4,
                size: Some(3)
            })
        );
        // 4-byte ID (Segment), 8-byte size.
        let mut segment = SEGMENT_ID.to_be_bytes().to_vec();
        segment.extend((0x0123_4567_89ABu64 | 1 << 56).to_be_bytes());
        assert_eq!(
            element_header(&segment),
            Some(ElementHeader {
                id: SEGMENT_ID,
                header_len: 12,
                size: Some(0x0123_4567_89AB)
            })
        );
        // A size of all ones but not all value bits is a size.
        assert_eq!(
            element_header(&[0xEC, 0x40, 0xFF]).unwrap().size,
            Some(0xFF)
        );
        assert_eq!(element_header(&[0xEC, 0x80]).unwrap().size, Some(0));
    }

    #[test]
    fn all_value_bits_set_is_an_unknown_size() {
        let mut live = SEGMENT_ID.to_be_bytes().to_vec();
        live.push(0xFF);
        assert_eq!(
            element_header(&live),
            Some(ElementHeader {
                id: SEGMENT_ID,
                header_len: 5,
                size: None
            })
        );
        let mut long = CLUSTER_ID.to_be_bytes().to_vec();
        long.extend([0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(element_header(&long).unwrap().size, None);
        assert_eq!(element_header(&[0xEC, 0x7F, 0xFF]).unwrap().size, None);
    }

    #[test]
    fn invalid_or_short_headers_are_none() {
        assert_eq!(element_header(&[]), None);
        assert_eq!(element_header(&[0x00, 0x81]), None); // ID vint byte 0
        assert_eq!(element_header(&[0x08, 0, 0, 0, 0, 0x81]), None); // 5-byte ID
        assert_eq!(element_header(&[0xEC, 0x00, 0, 0, 0, 0, 0, 0, 0, 1]), None); // size byte 0
        assert_eq!(element_header(&[0xEC]), None); // no size
        assert_eq!(element_header(&[0x1A, 0x45, 0xDF]), None); // ID cut short
        assert_eq!(element_header(&[0xEC, 0x01, 0, 0]), None); // size cut short
    }

    #[test]
    fn a_webm_gives_its_duration_and_picture_size() {
        let file = webm(
            &info(Some(1_000_000), Some(f64_el(DURATION_ID, 2500.0))),
            &vp8_tracks(),
        );
        assert_eq!(crate::describe::sniff(&file), Some("video/webm"));
        let (info, tracks) = sections(&file);
        assert_eq!(
            describe(info, tracks),
            Ok(WebmFacts {
                duration_ms: Some(2500),
                width: Some(640),
                height: Some(360)
            })
        );
    }

    #[test]
    fn durations_are_in_timestamp_scale_ticks_and_may_be_f32() {
        let facts = describe(Some(&info(None, Some(f32_el(DURATION_ID, 1234.5)))), None).unwrap();
        assert_eq!(facts.duration_ms, Some(1234));
        // Microsecond ticks.
        let micro = info(Some(1_000), Some(f64_el(DURATION_ID, 2_500_999.0)));
        assert_eq!(
            describe(Some(&micro), None).unwrap().duration_ms,
            Some(2500)
        );
    }

    #[test]
    fn live_recordings_have_no_duration() {
        let file = webm(&info(Some(1_000_000), None), &vp8_tracks());
        let (info, tracks) = sections(&file);
        assert_eq!(
            describe(info, tracks),
            Ok(WebmFacts {
                duration_ms: None,
                width: Some(640),
                height: Some(360)
            })
        );
        let nothing = WebmFacts {
            duration_ms: None,
            width: None,
            height: None,
        };
        assert_eq!(describe(None, None), Ok(nothing));
    }

    #[test]
    fn the_size_is_the_first_video_tracks() {
        let mut tracks = track(1, 2, "A_OPUS", None);
        tracks.extend(track(2, 1, "V_VP9", Some((1920, 1080))));
        tracks.extend(track(3, 1, "V_VP8", Some((320, 240))));
        let facts = describe(None, Some(&tracks)).unwrap();
        assert_eq!((facts.width, facts.height), (Some(1920), Some(1080)));
        let audio_only = track(1, 2, "A_OPUS", None);
        let facts = describe(None, Some(&audio_only)).unwrap();
        assert_eq!((facts.width, facts.height), (None, None));
    }

    #[test]
    fn damaged_values_are_errors() {
        let bad = [
            info(Some(0), Some(f64_el(DURATION_ID, 1.0))),
            info(None, Some(f64_el(DURATION_ID, f64::NAN))),
            info(None, Some(f64_el(DURATION_ID, -1.0))),
            info(None, Some(f64_el(DURATION_ID, f64::INFINITY))),
            info(None, Some(f64_el(DURATION_ID, 1e300))),
            info(None, Some(el(DURATION_ID, &[0x40, 0, 0]))),
            info(None, Some(el(TIMESTAMP_SCALE_ID, &[1; 9]))),
        ];
        for info in &bad {
            let error = describe(Some(info), None).unwrap_err();
            assert!(error.starts_with("damaged WebM Info: "), "{error}");
        }
        let wide = track(1, 1, "V_VP8", Some((1 << 32, 360)));
        assert!(describe(None, Some(&wide)).is_err());
    }

    #[test]
    fn unknown_sizes_inside_info_or_tracks_are_errors() {
        let mut info = info(Some(1_000_000), None);
        info.extend([0x44, 0x89, 0xFF]);
        info.extend(2500.0f64.to_be_bytes());
        assert_eq!(
            describe(Some(&info), None),
            Err("damaged WebM Info: element 0x4489 of unknown size".into())
        );
        let tracks = [&[TRACK_ENTRY_ID as u8, 0xFF][..], &vp8_tracks()].concat();
        assert!(describe(None, Some(&tracks)).is_err());
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error_not_a_panic() {
        let info = info(Some(1_000_000), Some(f64_el(DURATION_ID, 2500.0)));
        let mut tracks = track(1, 2, "A_OPUS", None);
        tracks.extend(vp8_tracks());
        for cut in 0..info.len() {
            let _ = describe(Some(&info[..cut]), None);
        }
        for cut in 0..tracks.len() {
            let _ = describe(None, Some(&tracks[..cut]));
        }
        // Cut inside the last element: always an error.
        assert!(describe(Some(&info[..info.len() - 1]), None).is_err());
        assert!(describe(None, Some(&tracks[..tracks.len() - 1])).is_err());
        // A child claiming more than its parent holds, sizes near u64::MAX.
        let huge = [0xEC, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE];
        assert!(describe(Some(&huge), Some(&huge)).is_err());
        assert!(describe(Some(&[0; 16]), None).is_err());
        // Pseudo-random bytes, and the valid payloads with one byte changed.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for len in 0..2000 {
            let garbage: Vec<u8> = (0..len % 64)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = describe(Some(&garbage), Some(&garbage));
            let _ = element_header(&garbage);
        }
        for at in 0..tracks.len() {
            for value in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
                let mut changed = tracks.clone();
                changed[at] = value;
                let _ = describe(Some(&changed), Some(&changed));
            }
        }
    }
}
