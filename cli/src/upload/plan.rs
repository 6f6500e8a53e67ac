//! How a file is cut into parts, within S3's rules: every part but the last
//! at least 5 MiB, at most 5 GiB, at most 10,000 parts.

pub const MIB: u64 = 1 << 20;
pub const MIN_PART: u64 = 5 * MIB;
pub const MAX_PART: u64 = 5 << 30;
pub const MAX_PARTS: u64 = 10_000;
/// Big enough that a part's request overhead is small, small enough that a
/// retry or an interruption loses little.
pub const DEFAULT_PART: u64 = 8 * MIB;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub size: u64,
    pub part_size: u64,
    pub num_parts: u32,
}

impl Plan {
    /// `requested_mib` is `--part-size`; without it 8 MiB, grown (whole
    /// MiB) for files that would otherwise need more than 10,000 parts.
    pub fn new(size: u64, requested_mib: Option<u64>) -> Result<Self, String> {
        let part = match requested_mib {
            Some(mib) => {
                let part = mib.saturating_mul(MIB);
                if part < MIN_PART {
                    return Err("--part-size must be at least 5 (MiB): S3's smallest part".into());
                }
                if part > MAX_PART {
                    return Err("--part-size must be at most 5120 (MiB): S3's largest part".into());
                }
                if size.div_ceil(part) > MAX_PARTS {
                    let least = size.div_ceil(MAX_PARTS).div_ceil(MIB);
                    return Err(format!(
                        "{mib} MiB parts cut this file into more than 10,000 parts (S3's limit): use --part-size {least} or more"
                    ));
                }
                part
            }
            None => DEFAULT_PART.max(size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB),
        };
        if part > MAX_PART {
            return Err("the file is larger than S3 can hold in 10,000 parts of 5 GiB".into());
        }
        let num_parts = size.div_ceil(part).max(1);
        Ok(Self {
            size,
            // One part is the whole file (a small file declares its own size).
            part_size: if num_parts == 1 { size.max(1) } else { part },
            num_parts: num_parts as u32,
        })
    }

    /// Part `n`'s (1-based) offset and length.
    pub fn range(&self, n: u32) -> (u64, u64) {
        let offset = u64::from(n - 1) * self.part_size;
        (
            offset,
            self.part_size.min(self.size - offset.min(self.size)),
        )
    }
}

/// Part numbers as the API reads them: `1-3,7,9-10`.
pub fn ranges(numbers: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end + 1 {
            i += 1;
            end = numbers[i];
        }
        out.push(match start == end {
            true => start.to_string(),
            false => format!("{start}-{end}"),
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_are_one_part_of_their_own_size() {
        let plan = Plan::new(1000, None).unwrap();
        assert_eq!((plan.num_parts, plan.part_size), (1, 1000));
        assert_eq!(plan.range(1), (0, 1000));
        let exact = Plan::new(DEFAULT_PART, None).unwrap();
        assert_eq!((exact.num_parts, exact.part_size), (1, DEFAULT_PART));
    }

    #[test]
    fn parts_cover_the_file_and_only_the_last_is_short() {
        let size = 20 * MIB + 3;
        let plan = Plan::new(size, None).unwrap();
        assert_eq!((plan.num_parts, plan.part_size), (3, 8 * MIB));
        assert_eq!(plan.range(3), (16 * MIB, 4 * MIB + 3));
        let total: u64 = (1..=plan.num_parts).map(|n| plan.range(n).1).sum();
        assert_eq!(total, size);
        // The API's rule.
        let (n, ps) = (u64::from(plan.num_parts), plan.part_size);
        assert!((n - 1) * ps < size && size <= n * ps);
    }

    #[test]
    fn huge_files_grow_the_part_to_stay_within_ten_thousand() {
        let size = 200 << 30; // 200 GiB: 8 MiB parts would be 25,600
        let plan = Plan::new(size, None).unwrap();
        assert!(u64::from(plan.num_parts) <= MAX_PARTS);
        assert_eq!(plan.part_size % MIB, 0);
        assert_eq!(plan.part_size, 21 * MIB);
        assert!(Plan::new(60 << 40, None).is_err());
    }

    #[test]
    fn requested_sizes_follow_s3s_rules() {
        assert!(Plan::new(100 * MIB, Some(4)).is_err());
        assert!(Plan::new(100 * MIB, Some(5121)).is_err());
        let err = Plan::new(100 << 30, Some(5)).unwrap_err();
        assert!(err.contains("--part-size 11"), "{err}");
        let plan = Plan::new(12 * MIB, Some(5)).unwrap();
        assert_eq!((plan.num_parts, plan.part_size), (3, 5 * MIB));
    }

    #[test]
    fn part_numbers_are_compressed_into_ranges() {
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3,5,7-8");
        assert_eq!(ranges(&[4]), "4");
        assert_eq!(ranges(&[]), "");
    }
}
