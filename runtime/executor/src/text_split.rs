//! Reading a text split: the lines whose first byte lies in it, a chunk of whole lines at a
//! time, and the fixed chunks a task that shares its split among threads cuts it into
//! (`morsels.rs`).

use crate::error::ExecutorError;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use tessera_plan::FileSplit;

/// How much of a text split is read (and decoded into lines) at a time: a split is streamed,
/// so a task's memory does not grow with the size of its split. A caching task notes how far
/// it got after each chunk, so a chunk is also what a task carried on from another executor
/// may read again: 256 KiB, a few thousand lines, about the records of a batch. It is also the
/// size of the chunks a task that shares its split hands out ([`line_chunk`]): a millisecond or
/// two of parsing, so that the threads sharing a split end within a chunk of each other.
pub(crate) const SPLIT_CHUNK_BYTES: usize = 256 << 10;

/// Hands `each` the lines whose first byte lies in `split`, about `chunk` bytes of whole lines
/// at a time, each line ended by '\n' (the file's last perhaps not), with the offset in the file
/// just past them, until `each` says stop. A split that starts mid-line leaves that line to the
/// previous one.
fn read_split(
    split: &FileSplit,
    chunk: usize,
    mut each: impl FnMut(&[u8], u64) -> bool,
) -> std::io::Result<()> {
    let mut file = BufReader::new(std::fs::File::open(&split.path)?);
    let mut position = split.start;
    if position > 0 {
        file.seek(SeekFrom::Start(position - 1))?;
        let mut skipped = Vec::new();
        position = position - 1 + file.read_until(b'\n', &mut skipped)? as u64;
    }
    let mut lines = Vec::with_capacity(chunk);
    while position < split.end {
        lines.clear();
        let wanted = (split.end - position).min(chunk as u64);
        file.by_ref().take(wanted).read_to_end(&mut lines)?;
        if lines.is_empty() {
            break; // the file ends before the split does
        }
        if lines.last() != Some(&b'\n') {
            file.read_until(b'\n', &mut lines)?;
        }
        position += lines.len() as u64;
        if !each(&lines, position) {
            break;
        }
    }
    Ok(())
}

/// As [`read_split`], for `part` of a task's split `split` (all of it, or what is left, or one
/// of its chunks), in chunks of [`SPLIT_CHUNK_BYTES`]: a failure to read names the split and
/// this host.
pub(crate) fn read_part(
    split: &FileSplit,
    part: &FileSplit,
    each: impl FnMut(&[u8], u64) -> bool,
) -> Result<(), ExecutorError> {
    read_split(part, SPLIT_CHUNK_BYTES, each).map_err(|source| ExecutorError::SplitRead {
        path: split.path.clone(),
        host: tessera_wire::hostname(),
        start: split.start,
        end: split.end,
        source,
    })
}

/// How many chunks a task that shares its split among threads cuts the lines from `from` to
/// `end` into ([`line_chunk`]).
pub(crate) fn line_chunk_count(from: u64, end: u64) -> usize {
    usize::try_from(end.saturating_sub(from).div_ceil(SPLIT_CHUNK_BYTES as u64)).unwrap_or(0)
}

/// Chunk `index` of the lines of `split` from `from`: those whose first byte lies in the
/// `index`th [`SPLIT_CHUNK_BYTES`] from `from` (the last perhaps shorter). The chunks depend on
/// `from` and the split alone, not on which thread reads them, so a task's result does not
/// either; and each ends where a task carrying it on would read from.
pub(crate) fn line_chunk(split: &FileSplit, from: u64, index: usize) -> FileSplit {
    let size = SPLIT_CHUNK_BYTES as u64;
    let start = from.saturating_add(size.saturating_mul(index as u64));
    FileSplit {
        path: split.path.clone(),
        start: start.min(split.end),
        end: start.saturating_add(size).min(split.end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_read_in_chunks_give_every_line_once() {
        let text = "alpha\nbe\n\ngamma delta\nepsilon\nz";
        let path = std::env::temp_dir().join(format!("tessera-split-{}.txt", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let len = text.len() as u64;
        for cut in [1, 5, 6, 9, 14, 20, len] {
            for chunk in [1, 3, 64] {
                let mut lines = String::new();
                for (start, end) in [(0, cut), (cut, len)] {
                    let split = FileSplit {
                        path: path.to_string_lossy().into_owned(),
                        start,
                        end,
                    };
                    read_split(&split, chunk, |bytes, consumed_to| {
                        assert!(bytes.ends_with(b"\n") || bytes.ends_with(b"z"));
                        assert!(text.as_bytes()[..consumed_to as usize].ends_with(bytes));
                        lines.push_str(std::str::from_utf8(bytes).unwrap());
                        true
                    })
                    .unwrap();
                }
                assert_eq!(lines, text, "cut at {cut}, chunks of {chunk}");
                // A task carrying on from where a chunk ended reads the rest of its split.
                let first = FileSplit {
                    path: path.to_string_lossy().into_owned(),
                    start: 0,
                    end: cut,
                };
                let mut ends = Vec::new();
                read_split(&first, chunk, |_, consumed_to| {
                    ends.push(consumed_to);
                    true
                })
                .unwrap();
                for from in ends {
                    let mut rest = String::new();
                    let on = FileSplit {
                        start: from,
                        ..first.clone()
                    };
                    read_split(&on, chunk, |bytes, _| {
                        rest.push_str(std::str::from_utf8(bytes).unwrap());
                        true
                    })
                    .unwrap();
                    // The first split's lines end at the end of the line holding its last byte.
                    let cut = cut as usize;
                    let first_end = if cut == 0 || text.as_bytes()[cut - 1] == b'\n' {
                        cut
                    } else {
                        text[cut..].find('\n').map_or(text.len(), |i| cut + i + 1)
                    };
                    let expected = &text[(from as usize).min(first_end)..first_end];
                    assert_eq!(
                        rest, expected,
                        "cut at {cut}, chunks of {chunk}, from {from}"
                    );
                }
            }
        }
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_split_s_chunks_give_every_line_once_whatever_the_cut() {
        let text: String = (0..400_000).map(|i| format!("line {i}\n")).collect();
        let path = std::env::temp_dir().join(format!("tessera-chunks-{}.txt", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let len = text.len() as u64;
        // A split from the middle of a line to the middle of another, and one to the end; read
        // from its start, and from a chunk's end, as a task carrying it on does.
        for (start, end) in [(1_000_003, 4_000_017), (0, len)] {
            let split = FileSplit {
                path: path.to_string_lossy().into_owned(),
                start,
                end,
            };
            let mut whole = String::new();
            read_split(&split, SPLIT_CHUNK_BYTES, |lines, _| {
                whole.push_str(std::str::from_utf8(lines).unwrap());
                true
            })
            .unwrap();
            let second = line_chunk(&split, start, 1).start;
            for from in [start, second] {
                let count = line_chunk_count(from, end);
                assert!(count > 5, "{count} chunks");
                let mut chunked = String::new();
                for index in 0..count {
                    let chunk = line_chunk(&split, from, index);
                    assert!(chunk.end - chunk.start <= SPLIT_CHUNK_BYTES as u64);
                    read_split(&chunk, SPLIT_CHUNK_BYTES, |lines, _| {
                        chunked.push_str(std::str::from_utf8(lines).unwrap());
                        true
                    })
                    .unwrap();
                }
                let expected = if from == start {
                    whole.as_str()
                } else {
                    // Carrying on from a chunk's end reads what the chunks after it hold.
                    let mut first = String::new();
                    read_split(
                        &line_chunk(&split, start, 0),
                        SPLIT_CHUNK_BYTES,
                        |lines, _| {
                            first.push_str(std::str::from_utf8(lines).unwrap());
                            true
                        },
                    )
                    .unwrap();
                    whole.strip_prefix(first.as_str()).unwrap()
                };
                assert_eq!(chunked, expected, "split {start}..{end} from {from}");
            }
            assert_eq!(
                line_chunk(&split, start, line_chunk_count(start, end)).start,
                end
            );
        }
        std::fs::remove_file(path).unwrap();
    }
}
