//! Where the record that made a closure panic came from, when it is a line of a text file.
//!
//! Records cross a chain in batches, and `filter` or `flat_map` change how records line up
//! with the lines they came from, so a task cannot tell which line a panicking record was made
//! from without carrying an origin with every record. It does not: nothing is tracked while a
//! task runs. When a task over a text split fails because a closure panicked, the executor runs
//! the same chain again (with its action when that is a fold, such as `reduce`, whose closures
//! may be the ones that panicked) over halves of the split (the lines whose first byte lies in
//! a byte range, as splits are cut) and keeps the half that fails with the same message, until
//! one line is left; that line alone must fail with that message, else nothing is said. The
//! file is read again only then, to number the line and show it. A chain whose steps look at
//! each record on its own (`map`, `filter`, `flat_map`, ...) is located exactly; for one whose
//! failure depends on several records together (a `map_partitions` that folds), either a line
//! that fails alone is named or nothing is.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

/// Characters of the record shown with the panic message; a longer one is cut, with "…".
pub const RECORD_CHARS: usize = 200;

/// Bytes of a line read to show it: enough for [`RECORD_CHARS`] characters of UTF-8.
const RECORD_READ_BYTES: u64 = 4 * RECORD_CHARS as u64 + 4;

/// A line of a file that makes a task's closures panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub path: String,
    /// Counted from 1.
    pub line: u64,
    /// The line, without its line end, cut at [`RECORD_CHARS`] characters.
    pub record: String,
}

impl std::fmt::Display for BadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "while processing line {} of {}: {:?}",
            self.line, self.path, self.record
        )
    }
}

/// A task's failure message with where its bad record is, when that is known.
pub fn with_place(message: String, place: Option<&BadRecord>) -> String {
    match place {
        Some(place) => format!("{message} ({place})"),
        None => message,
    }
}

/// The first byte of the first line in `range` for which `fails` holds, found by halving:
/// `fails(r)` says whether the lines whose first byte lies in `r` make the chain fail as the
/// task did. `None` when the line found does not fail on its own (the failure depends on other
/// records, or does not happen every time): then no line is to blame.
pub fn first_failing_line(
    range: Range<u64>,
    mut fails: impl FnMut(Range<u64>) -> bool,
) -> Option<u64> {
    let (mut low, mut high) = (range.start, range.end);
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if fails(low..middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    (high > low && fails(low..low + 1)).then_some(low)
}

/// How many line ends `reader` holds before byte `offset`.
fn line_ends_before(reader: impl Read, offset: u64) -> std::io::Result<u64> {
    let mut reader = BufReader::new(reader.take(offset));
    let mut ends = 0;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(ends);
        }
        ends += buffer.iter().filter(|&&b| b == b'\n').count() as u64;
        let consumed = buffer.len();
        reader.consume(consumed);
    }
}

/// `line` (without its line end) as text of at most [`RECORD_CHARS`] characters.
pub fn shown_record(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = String::from_utf8_lossy(line);
    match text.char_indices().nth(RECORD_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

/// The line of `path` that starts at byte `start`, numbered and shown.
pub fn read_bad_record(path: &str, start: u64) -> std::io::Result<BadRecord> {
    let mut file = std::fs::File::open(Path::new(path))?;
    let line = line_ends_before(&mut file, start)? + 1;
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    BufReader::new(file.take(RECORD_READ_BYTES)).read_until(b'\n', &mut bytes)?;
    let record = shown_record(bytes.strip_suffix(b"\n").unwrap_or(&bytes));
    Ok(BadRecord {
        path: path.to_string(),
        line,
        record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "1\n2\nx3\n4\nx5\n66\n";

    /// Whether a line starting in `range` of `TEXT` is bad (starts with 'x'), as a task over
    /// that range would fail.
    fn bad_in(range: Range<u64>) -> bool {
        let mut start = 0u64;
        TEXT.split_inclusive('\n').any(|line| {
            let here = start;
            start += line.len() as u64;
            range.contains(&here) && line.starts_with('x')
        })
    }

    #[test]
    fn halving_finds_the_first_bad_line_from_any_range_that_holds_it() {
        let first_bad = TEXT.find("x3").unwrap() as u64;
        for start in 0..=first_bad {
            assert_eq!(
                first_failing_line(start..TEXT.len() as u64, bad_in),
                Some(first_bad),
                "from byte {start}"
            );
        }
        // Past the first bad line, the next one is found.
        let second_bad = TEXT.find("x5").unwrap() as u64;
        assert_eq!(
            first_failing_line(first_bad + 1..TEXT.len() as u64, bad_in),
            Some(second_bad)
        );
    }

    #[test]
    fn no_line_is_blamed_when_none_fails_alone() {
        assert_eq!(first_failing_line(0..4, bad_in), None);
        assert_eq!(first_failing_line(3..3, |_| true), None);
        // A failure that needs two lines together: the last line left does not fail alone.
        let together = |r: Range<u64>| r.start <= 2 && r.end > 4;
        assert_eq!(first_failing_line(0..TEXT.len() as u64, together), None);
    }

    #[test]
    fn a_bad_line_is_numbered_and_shown_cut() {
        let dir = std::env::temp_dir().join(format!("tessera-bad-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data.txt");
        let long = "é".repeat(RECORD_CHARS + 5);
        std::fs::write(&path, format!("a\r\nbb\n{long}\nlast")).unwrap();
        let path = path.to_string_lossy().into_owned();
        let record = read_bad_record(&path, 3).unwrap();
        assert_eq!((record.line, record.record.as_str()), (2, "bb"));
        assert_eq!(read_bad_record(&path, 0).unwrap().record, "a");
        let cut = read_bad_record(&path, 6).unwrap();
        assert_eq!(cut.line, 3);
        assert_eq!(cut.record, format!("{}…", "é".repeat(RECORD_CHARS)));
        let last = read_bad_record(&path, 6 + long.len() as u64 + 1).unwrap();
        assert_eq!((last.line, last.record.as_str()), (4, "last"));
        assert_eq!(
            with_place("closure panicked: no".into(), Some(&record)),
            format!("closure panicked: no (while processing line 2 of {path}: \"bb\")")
        );
        assert_eq!(with_place("failed".into(), None), "failed");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
