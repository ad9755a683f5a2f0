//! A test of each row anded into the words of a mask (bit `i % 64` of word `i / 64` for row
//! `i`), 64 rows at a time in a loop LLVM vectorizes: the kernels that a filter's comparisons
//! (`mask`) and a broadcast join's runtime filter both run. A file of their own, so
//! that neither of the two reaches into the other for them.

/// Ands `test` of each of `values` into the bit of its row in `words`, the bits past the
/// values in the last word `words` has for them cleared.
#[inline(always)]
pub(crate) fn and_words<T: Copy>(values: &[T], words: &mut [u64], mut test: impl FnMut(T) -> bool) {
    let (whole, tail) = values.as_chunks::<64>();
    for (word, chunk) in words.iter_mut().zip(whole) {
        // One byte an outcome first, which LLVM vectorizes (a comparison and a pack), then
        // eight bytes at a time into their bits.
        let mut outcomes = [0u8; 64];
        for (outcome, &value) in outcomes.iter_mut().zip(chunk) {
            *outcome = u8::from(test(value));
        }
        *word &= packed(&outcomes);
    }
    if let Some(last) = words.get_mut(whole.len()) {
        let mut outcomes = [0u8; 64];
        for (outcome, &value) in outcomes.iter_mut().zip(tail) {
            *outcome = u8::from(test(value));
        }
        *last &= packed(&outcomes);
    }
}

/// 64 bytes of 0 or 1 as the bits of a word, the first byte lowest.
#[inline(always)]
fn packed(outcomes: &[u8; 64]) -> u64 {
    let (eights, _) = outcomes.as_chunks::<8>();
    let mut bits = 0u64;
    for (i, eight) in eights.iter().enumerate() {
        // Byte k (0 or 1, at bit 8k) times 2^(56 - 7k) lands on bit 56 + k, and no two
        // products share a bit: the top byte is the eight outcomes.
        let gathered = u64::from_le_bytes(*eight).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        bits |= gathered << (8 * i);
    }
    bits
}

/// Clears the bit in `words` of each row of `large` (a column's chunks) that `test`, called
/// on the rows in order, fails, and the bits past its rows. Whole words of 64 rows go through
/// the mask's kernel, the rows of a chunk before its first whole word and after its last one
/// row by row.
pub(crate) fn and_tested<T: Copy>(
    large: &[&[T]],
    words: &mut [u64],
    mut test: impl FnMut(T) -> bool,
) {
    let mut rows = RowBits::default();
    for chunk in large {
        let (lead, rest) = chunk.split_at(((64 - rows.row % 64) % 64).min(chunk.len()));
        let (whole, tail) = rest.split_at(rest.len() / 64 * 64);
        for &key in lead {
            rows.push(test(key), words);
        }
        let first = rows.row / 64;
        and_words(
            whole,
            &mut words[first..first + whole.len() / 64],
            &mut test,
        );
        rows.row += whole.len();
        for &key in tail {
            rows.push(test(key), words);
        }
    }
    if rows.row % 64 != 0 {
        words[rows.row / 64] &= rows.found;
    }
    for word in words.iter_mut().skip(rows.row.div_ceil(64)) {
        *word = 0;
    }
}

/// Outcomes tested row by row, anded into `words` a whole word at a time.
#[derive(Default)]
struct RowBits {
    /// The rows tested so far.
    row: usize,
    /// The outcomes of the rows of the word `row` is in.
    found: u64,
}

impl RowBits {
    fn push(&mut self, kept: bool, words: &mut [u64]) {
        self.found |= u64::from(kept) << (self.row % 64);
        self.row += 1;
        if self.row.is_multiple_of(64) {
            words[self.row / 64 - 1] &= self.found;
            self.found = 0;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    /// The rows of the first `rows` whose bit is set.
    pub(crate) fn kept(words: &[u64], rows: u32) -> Vec<u32> {
        (0..rows)
            .filter(|&row| words[row as usize / 64] >> (row % 64) & 1 == 1)
            .collect()
    }
}
